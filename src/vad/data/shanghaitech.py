"""Reader for the `shanghaitech` layout: the ShanghaiTech Campus dataset as distributed (Luo et al., 2017).

    <root>/                                  e.g. shanghaitech/
      training/videos/01_001.avi ...           normal videos (SS_VVV: scene, video)
      testing/frames/01_0014/000.jpg ...       videos to score, one folder of numbered frames each
      testing/test_frame_mask/01_0014.npy      optional: per-frame 0/1 labels, one file per test video
      testing/test_pixel_mask/                 ignored (pixel-level masks)

When `testing/test_frame_mask/` exists every test video needs its .npy; without the folder test videos
are scored, not evaluated. Video ids are `train_01_001`, `test_01_0014`, ...
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vad.data.avenue import video_files
from vad.data.base import Split, VideoRecord
from vad.data.frames import IMAGE_SUFFIXES, image_files, require_root, subfolders
from vad.errors import DataError, DataLayoutError

__all__ = ["index_shanghaitech", "MASK_DIR"]

MASK_DIR = Path("testing") / "test_frame_mask"


def _frame_mask(path: Path) -> np.ndarray:
    try:
        labels = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise DataError(f"cannot read frame mask {path}: {error}; replace it with the dataset's original") from None
    if labels.ndim != 1:
        raise DataError(f"{path}: expected a 1-D array of per-frame 0/1 labels, got shape {labels.shape}")
    return labels


def index_shanghaitech(root: Path) -> list[VideoRecord]:
    """Index a ShanghaiTech folder: training videos, then test frame folders, each in numeric order.

    Raises:
        DataLayoutError: `root` is missing or holds no training/videos/*.avi or testing/frames/<video>/.
        DataError: a test folder without frames, or a missing or unreadable frame mask.
    """
    root = require_root(root)
    train = video_files(root / "training" / "videos")
    test = subfolders(root / "testing" / "frames")
    if not train and not test:
        raise DataLayoutError(f"{root} does not match the 'shanghaitech' layout: expected training/videos/SS_VVV.avi "
                              f"and testing/frames/SS_VVVV/*.jpg (optional {MASK_DIR.as_posix()}/SS_VVVV.npy)")
    records = [VideoRecord(f"train_{p.stem}", Split.TRAIN, p) for p in train]
    masks = root / MASK_DIR
    for folder in test:
        frames = image_files(folder)
        if not frames:
            raise DataError(f"{folder} holds no frame images ({', '.join(sorted(IMAGE_SUFFIXES))}); "
                            f"add its frames or remove the folder")
        labels, source = None, None
        if masks.is_dir():
            source = masks / f"{folder.name}.npy"
            if not source.is_file():
                raise DataError(f"test video {folder.name} has no frame mask {source}; restore it from the "
                                f"dataset, or remove {masks} to score without labels")
            labels = _frame_mask(source)
        records.append(VideoRecord(f"test_{folder.name}", Split.TEST, folder, tuple(frames),
                                   frame_labels=labels, labels_source=source))
    return records
