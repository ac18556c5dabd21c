"""Reader for the `ucsd` layout: the UCSD Anomaly Detection Dataset as distributed (Ped1, Ped2).

    <root>/                            the UCSDped2 folder itself, or its parent
      UCSDped2/                          (UCSD_Anomaly_Dataset.v1p2/) holding one UCSDped*
        Train/
          Train001/001.tif ...           normal videos, one folder of numbered frames each
        Test/
          Test001/001.tif ...            videos to score
          Test001_gt/001.bmp ...         optional masks: a frame is abnormal iff any pixel is set
          UCSDped2.m                     optional: one line per test video, in order,
                                         `TestVideoFile{end+1}.gt_frame = [61:180];`
                                         (1-based inclusive; several ranges as [1:40, 70:120])

Labels come from the .m file; where it is missing, from the `_gt` mask folders (test videos without
one are then unlabelled). `.DS_Store`, `._*` and `Thumbs.db` are ignored. Video ids keep the source's
zero padding: Train001 -> train_001, Test012 -> test_012.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from vad.data.base import Split, VideoRecord
from vad.data.frames import IMAGE_SUFFIXES, image_files, is_junk, one_based_intervals, require_root, subfolders
from vad.errors import DataError, DataLayoutError

__all__ = ["index_ucsd", "find_ucsd_root"]

_VIDEO = re.compile(r"^(Train|Test)(\d+)$")
_GT_LINE = re.compile(r"gt_frame\s*=\s*\[([^\]]*)\]")
_RANGE = re.compile(r"^(\d+)(?:\s*:\s*(\d+))?$")


def _video_folders(folder: Path, prefix: str) -> list[Path]:
    return [p for p in subfolders(folder) if (match := _VIDEO.match(p.name)) and match.group(1) == prefix]


def find_ucsd_root(root: Path) -> Path | None:
    """The UCSDped* folder at or under `root` (the one holding Train/ and Test/), or None.

    Raises:
        DataLayoutError: `root` holds several UCSD datasets (e.g. both UCSDped1 and UCSDped2).
    """
    root = Path(root)
    if _video_folders(root / "Train", "Train") or _video_folders(root / "Test", "Test"):
        return root
    found = [p for p in subfolders(root) if p.name.lower().startswith("ucsdped")
             and (_video_folders(p / "Train", "Train") or _video_folders(p / "Test", "Test"))]
    if len(found) > 1:
        raise DataLayoutError(f"{root} holds several UCSD datasets ({', '.join(p.name for p in found)}); "
                              f"pass --source {found[0]} (one dataset per frame store)")
    return found[0] if found else None


def _parse_m(path: Path) -> list[tuple[tuple[int, int], ...]]:
    videos = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        match = _GT_LINE.search(line.split("%", 1)[0])
        if match is None:
            continue
        where = f"{path}, line {number}"
        pairs = []
        for token in filter(None, (t.strip() for t in re.split(r"[,;]", match.group(1)))):
            spans = _RANGE.match(token)
            if spans is None:
                raise DataError(f"{where}: cannot read range '{token}'; expected start:end, e.g. [61:180] or "
                                f"[1:40, 70:120]")
            start = int(spans.group(1))
            pairs.append((start, int(spans.group(2) or start)))
        videos.append(one_based_intervals(pairs, where))
    if not videos:
        raise DataError(f"{path}: no line 'TestVideoFile{{end+1}}.gt_frame = [start:end];' found; "
                        f"restore the dataset's original .m file or remove it to use the _gt masks")
    return videos


def _mask_labels(folder: Path) -> np.ndarray:
    import cv2

    masks = image_files(folder)
    if not masks:
        raise DataError(f"{folder} holds no mask images; restore them or remove the folder")
    labels = np.zeros(len(masks), dtype=np.uint8)
    for index, path in enumerate(masks):
        mask = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if mask is None:
            raise DataError(f"cannot read ground-truth mask {path}: corrupt or not an image; replace it")
        labels[index] = np.any(mask)
    return labels


def _frames(folder: Path) -> tuple[Path, ...]:
    frames = image_files(folder)
    if not frames:
        raise DataError(f"{folder} holds no frame images ({', '.join(sorted(IMAGE_SUFFIXES))}); "
                        f"add its frames or remove the folder")
    return tuple(frames)


def _video_id(split: Split, folder: Path) -> str:
    return f"{split.value}_{_VIDEO.match(folder.name).group(2)}"


def index_ucsd(root: Path) -> list[VideoRecord]:
    """Index a UCSD Ped1/Ped2 folder: training videos, then test videos, each in numeric order.

    Raises:
        DataLayoutError: `root` is missing or holds no Train/TrainNNN or Test/TestNNN folder.
        DataError: a video folder without frames, or labels that do not fit the test videos.
    """
    root = require_root(root)
    dataset = find_ucsd_root(root)
    if dataset is None:
        raise DataLayoutError(f"{root} does not match the 'ucsd' layout: expected UCSDped*/Train/Train001/*.tif "
                              f"and UCSDped*/Test/Test001/*.tif (root may be UCSDped* itself)")
    train = _video_folders(dataset / "Train", "Train")
    test = _video_folders(dataset / "Test", "Test")
    records = [VideoRecord(_video_id(Split.TRAIN, p), Split.TRAIN, p, _frames(p)) for p in train]
    scripts = sorted(p for p in (dataset / "Test").glob("*.m") if p.is_file() and not is_junk(p))
    if len(scripts) > 1:
        preferred = [p for p in scripts if p.stem == dataset.name]
        if len(preferred) != 1:
            raise DataError(f"{dataset / 'Test'}: several .m files ({', '.join(p.name for p in scripts)}); "
                            f"keep only the labels file, e.g. {dataset.name}.m")
        scripts = preferred
    if scripts:
        intervals = _parse_m(scripts[0])
        if len(intervals) != len(test):
            raise DataError(f"{scripts[0]}: {len(intervals)} gt_frame lines for {len(test)} test videos in "
                            f"{dataset / 'Test'}; the file must have one line per test video")
        for folder, spans in zip(test, intervals, strict=True):
            records.append(VideoRecord(_video_id(Split.TEST, folder), Split.TEST, folder, _frames(folder),
                                       intervals=spans, labels_source=scripts[0]))
        return records
    for folder in test:
        gt = folder.with_name(f"{folder.name}_gt")
        records.append(VideoRecord(_video_id(Split.TEST, folder), Split.TEST, folder, _frames(folder),
                                   frame_labels=_mask_labels(gt) if gt.is_dir() else None,
                                   labels_source=gt if gt.is_dir() else None))
    return records
