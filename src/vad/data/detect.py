"""Recognise a dataset folder's layout from its marker files and folders (no file is read or decoded).

ucsd           UCSDped*/Train/Train001/  or  Train/Train001/ (root is UCSDped* itself)
frames         training/frames/<video>/  or  testing/frames/<video>/
avenue         training_videos/*.avi     or  testing_videos/*.avi
shanghaitech   training/videos/*.avi     or  testing/test_frame_mask/
(its testing/frames/ alone would also look like `frames`; the markers win)
videos         train/*.mp4|avi|...       or  test/*.mp4|avi|...  or  *.mp4|avi|... (normal footage only)
"""

from __future__ import annotations

from pathlib import Path

from vad.config import Layout
from vad.data.avenue import video_files
from vad.data.frames import subfolders
from vad.data.ucsd import find_ucsd_root
from vad.errors import DataLayoutError

__all__ = ["detect_layout", "EXPECTED"]

EXPECTED = {
    Layout.UCSD: "UCSDped*/Train/Train001/*.tif",
    Layout.FRAMES: "training/frames/<video>/*.jpg",
    Layout.AVENUE: "training_videos/NN.avi",
    Layout.SHANGHAITECH: "training/videos/SS_VVV.avi + testing/frames/SS_VVVV/*.jpg",
    Layout.VIDEOS: "train/*.mp4|avi|... + test/*, or a folder of videos",
}


def _flat_videos(root: Path) -> bool:
    """Videos in `root` itself and no train/ or test/ folder: one camera's recordings."""
    from vad.data.videos import VIDEO_SUFFIXES

    return (not (root / "train").exists() and not (root / "test").exists()
            and any(p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES for p in root.iterdir()))


def _matches(root: Path) -> list[Layout]:
    found = []
    if find_ucsd_root(root) is not None:
        found.append(Layout.UCSD)
    shanghaitech = bool(video_files(root / "training" / "videos")) or (root / "testing" / "test_frame_mask").is_dir()
    if not shanghaitech and (subfolders(root / "training" / "frames") or subfolders(root / "testing" / "frames")):
        found.append(Layout.FRAMES)
    if video_files(root / "training_videos") or video_files(root / "testing_videos"):
        found.append(Layout.AVENUE)
    if shanghaitech:
        found.append(Layout.SHANGHAITECH)
    if video_files(root / "train") or video_files(root / "test") or (not found and _flat_videos(root)):
        found.append(Layout.VIDEOS)
    return found


def detect_layout(root: Path) -> Layout:
    """The layout of the dataset folder `root` (never `Layout.AUTO`).

    Raises:
        DataLayoutError: `root` is missing, matches no layout, or matches several.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataLayoutError(f"dataset folder {root} does not exist; pass --source PATH to an existing folder")
    found = _matches(root)
    if len(found) == 1:
        return found[0]
    if not found:
        expected = "; ".join(f"{layout.value}: {marker}" for layout, marker in EXPECTED.items())
        raise DataLayoutError(f"cannot detect the layout of {root}; expected one of {expected}; "
                              f"fix the folder or pass --format")
    raise DataLayoutError(f"{root} matches several layouts ({', '.join(layout.value for layout in found)}); "
                          f"pass --format to choose one")
