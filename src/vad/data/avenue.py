"""Reader for the `avenue` layout: CUHK Avenue as distributed (Lu et al., ICCV 2013).

    <root>/                                  e.g. Avenue Dataset/
      training_videos/01.avi ... 16.avi        normal videos
      testing_videos/01.avi ... 21.avi         videos to score
      ground_truth_demo/testing_label_mask/
        1_label.mat ... 21_label.mat           optional: `volLabel`, a 1xF cell of HxW masks, one per
                                               frame; a frame is abnormal iff any mask pixel is set
                                               (N is the video number without zero padding)

When `ground_truth_demo/testing_label_mask/` exists every test video needs its label file; without the
folder test videos are scored, not evaluated. Video ids are `train_01`, `test_01`, ...
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vad.data.base import Split, VideoRecord
from vad.data.frames import is_junk, load_mat, numeric_key, require_root
from vad.data.videos import VIDEO_SUFFIXES
from vad.errors import DataError, DataLayoutError

__all__ = ["index_avenue", "video_files", "LABEL_DIR"]

LABEL_DIR = Path("ground_truth_demo") / "testing_label_mask"


def video_files(folder: Path) -> list[Path]:
    """The video files of `folder` in numeric order (none when it is missing), junk left out."""
    if not folder.is_dir():
        return []
    videos = sorted((p for p in folder.iterdir() if p.is_file() and not is_junk(p)
                     and p.suffix.lower() in VIDEO_SUFFIXES), key=numeric_key)
    stems = [p.stem for p in videos]
    if len(set(stems)) != len(stems):
        raise DataLayoutError(f"{folder}: two videos share a name without extension; rename one")
    return videos


def _label_file(folder: Path, video: Path) -> Path:
    number = str(int(video.stem)) if video.stem.isdigit() else video.stem
    return folder / f"{number}_label.mat"


def _mask_labels(path: Path) -> np.ndarray:
    cells = np.asarray(load_mat(path, "volLabel", "a 1xF cell of HxW masks, one per frame"))
    if cells.dtype != object:
        raise DataError(f"{path}: 'volLabel' must be a cell array of HxW masks (one per frame), "
                        f"got a {cells.dtype} array of shape {cells.shape}")
    return np.array([np.any(np.asarray(mask)) for mask in cells.ravel()], dtype=np.uint8)


def index_avenue(root: Path) -> list[VideoRecord]:
    """Index a CUHK Avenue folder: training videos, then test videos, each in numeric order.

    Raises:
        DataLayoutError: `root` is missing or holds no training_videos/ or testing_videos/ video.
        DataError: a test video without its label file, or a label file without `volLabel`.
    """
    root = require_root(root)
    train, test = video_files(root / "training_videos"), video_files(root / "testing_videos")
    if not train and not test:
        raise DataLayoutError(f"{root} does not match the 'avenue' layout: expected training_videos/NN.avi and "
                              f"testing_videos/NN.avi (optional {LABEL_DIR.as_posix()}/<N>_label.mat)")
    records = [VideoRecord(f"train_{p.stem}", Split.TRAIN, p) for p in train]
    labels_dir = root / LABEL_DIR
    for video in test:
        if not labels_dir.is_dir():
            records.append(VideoRecord(f"test_{video.stem}", Split.TEST, video))
            continue
        path = _label_file(labels_dir, video)
        if not path.is_file():
            raise DataError(f"test video {video.name} has no label file {path}; restore it from the dataset's "
                            f"ground_truth_demo, or remove {labels_dir} to score without labels")
        records.append(VideoRecord(f"test_{video.stem}", Split.TEST, video, frame_labels=_mask_labels(path),
                                   labels_source=path))
    return records
