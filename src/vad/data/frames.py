"""Reader for the `frames` layout: the frame-folder release of Liu et al. (CVPR 2018) used by most papers.

    <root>/                          e.g. ped2/ or avenue/
      training/frames/<video>/<n>.jpg   normal videos, one folder of numbered frames each
      testing/frames/<video>/<n>.jpg    videos to score
      <name>.mat                        optional: variable `gt`, a 1xV cell (one per test video, in
                                        sorted order); gt{v} is a 2xK array [start; end] of abnormal
                                        intervals, 1-based inclusive

Frames sort by the number in their name (2.jpg before 10.jpg); .jpg, .jpeg, .png, .tif and .bmp are read.
The labels file is `<root name>.mat` (ped2/ped2.mat) or else the only .mat in the root. Without one,
test videos are scored, not evaluated. Video ids are `train_<video>` and `test_<video>`.

The helpers here (junk files, numeric sort, .mat loading) are shared by the other image-sequence readers.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from vad.data.base import Split, VideoRecord
from vad.errors import DataError, DataLayoutError

__all__ = ["index_frames", "IMAGE_SUFFIXES", "is_junk", "numeric_key", "image_files", "subfolders",
           "load_mat", "one_based_intervals", "require_root"]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp"})
_NUMBER = re.compile(r"(\d+)")


def is_junk(path: Path) -> bool:
    """Whether `path` is an OS artefact (.DS_Store, ._* AppleDouble files, Thumbs.db), never data."""
    return path.name.startswith(".") or path.name.lower() in {"thumbs.db", "desktop.ini"}


def numeric_key(path: Path) -> tuple[list[tuple[int, int, str]], str]:
    """Natural sort key: numbers in the name compare as numbers (2.jpg before 10.jpg, 01_002 before 02_001)."""
    parts = [(0, int(part), "") if part.isdigit() else (1, 0, part.lower())
             for part in _NUMBER.split(path.stem)]
    return parts, path.name


def image_files(folder: Path) -> list[Path]:
    """The frame images of `folder` in numeric order, junk files left out."""
    return sorted((p for p in folder.iterdir()
                   if p.is_file() and not is_junk(p) and p.suffix.lower() in IMAGE_SUFFIXES), key=numeric_key)


def subfolders(folder: Path) -> list[Path]:
    """The sub-folders of `folder` in numeric order (none when it is missing), junk left out."""
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if p.is_dir() and not is_junk(p)), key=numeric_key)


def require_root(root: Path) -> Path:
    """Return `root` as a Path, raising DataLayoutError when the folder does not exist."""
    root = Path(root)
    if not root.is_dir():
        raise DataLayoutError(f"dataset folder {root} does not exist; pass --source PATH to an existing folder")
    return root


def load_mat(path: Path, variable: str, expected: str) -> Any:
    """Read `variable` from the MATLAB file `path`.

    Args:
        path: A MATLAB v4-v7.2 .mat file.
        variable: The variable to return.
        expected: What the variable should hold, for the error message.

    Raises:
        DataError: the file is unreadable or has no such variable, naming both.
    """
    import scipy.io

    try:
        contents = scipy.io.loadmat(str(path))
    except NotImplementedError:
        raise DataError(f"{path}: MATLAB v7.3 (HDF5) files are not supported; re-save it in MATLAB with "
                        f"save(..., '-v7')") from None
    except Exception as error:  # scipy raises several unrelated types for corrupt files
        raise DataError(f"cannot read labels file {path}: {error}; replace it with the dataset's original") from None
    if variable not in contents:
        have = sorted(key for key in contents if not key.startswith("__"))
        raise DataError(f"{path}: no variable '{variable}' (has: {', '.join(have) or 'none'}); expected "
                        f"'{variable}', {expected}")
    return contents[variable]


def one_based_intervals(pairs: list[tuple[int, int]], where: str) -> tuple[tuple[int, int], ...]:
    """Turn 1-based inclusive [start, end] pairs into 0-based inclusive ones.

    Raises:
        DataError: a start below 1 or an end before its start.
    """
    for start, end in pairs:
        if start < 1 or end < start:
            raise DataError(f"{where}: interval [{start}, {end}] is invalid; intervals are 1-based inclusive, "
                            f"start >= 1 and start <= end")
    return tuple((start - 1, end - 1) for start, end in pairs)


def _find_mat(root: Path) -> Path | None:
    named = root / f"{root.name}.mat"
    if named.is_file():
        return named
    mats = sorted(p for p in root.glob("*.mat") if p.is_file() and not is_junk(p))
    if len(mats) > 1:
        raise DataError(f"{root}: several .mat files ({', '.join(p.name for p in mats)}) and none named "
                        f"{named.name}; keep only the labels file or rename it {named.name}")
    return mats[0] if mats else None


def _read_gt(path: Path, test: list[Path]) -> list[tuple[tuple[int, int], ...]]:
    cells = np.asarray(load_mat(path, "gt", "a 1xV cell of 2xK [start; end] arrays, one per test video"))
    if cells.dtype != object:
        raise DataError(f"{path}: 'gt' must be a cell array (one per test video), got a {cells.dtype} array")
    cells = cells.ravel()
    if len(cells) != len(test):
        raise DataError(f"{path}: 'gt' has {len(cells)} cells for {len(test)} test videos in testing/frames; "
                        f"the labels file must have one cell per test video")
    intervals = []
    for cell, folder in zip(cells, test, strict=True):
        array = np.asarray(cell)
        where = f"{path}, cell of test video '{folder.name}'"
        if array.size == 0:
            intervals.append(())
            continue
        if array.ndim != 2 or 2 not in array.shape:
            raise DataError(f"{where}: expected a 2xK array [start; end], got shape {array.shape}")
        array = array if array.shape[0] == 2 else array.T
        intervals.append(one_based_intervals([(int(s), int(e)) for s, e in array.T], where))
    return intervals


def _records(folders: list[Path], split: Split) -> list[VideoRecord]:
    records = []
    for folder in folders:
        frames = image_files(folder)
        if not frames:
            raise DataError(f"{folder} holds no frame images ({', '.join(sorted(IMAGE_SUFFIXES))}); "
                            f"add its frames or remove the folder")
        records.append(VideoRecord(f"{split.value}_{folder.name}", split, folder, tuple(frames)))
    return records


def index_frames(root: Path) -> list[VideoRecord]:
    """Index a `frames` layout folder: training videos, then test videos, each in numeric order.

    Raises:
        DataLayoutError: `root` is missing or holds no training/frames or testing/frames video folder.
        DataError: a video folder without images, or a labels file that does not fit the test videos.
    """
    root = require_root(root)
    train = subfolders(root / "training" / "frames")
    test = subfolders(root / "testing" / "frames")
    if not train and not test:
        raise DataLayoutError(f"{root} does not match the 'frames' layout: expected training/frames/<video>/*.jpg "
                              f"and testing/frames/<video>/*.jpg (optional <name>.mat with 'gt')")
    records, test_records = _records(train, Split.TRAIN), _records(test, Split.TEST)
    mat = _find_mat(root)
    intervals = _read_gt(mat, test) if mat is not None else [None] * len(test)
    for record, spans in zip(test_records, intervals, strict=True):
        records.append(VideoRecord(record.video_id, Split.TEST, record.source, record.frame_paths,
                                   intervals=spans, labels_source=mat))
    return records
