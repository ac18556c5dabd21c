"""Reader for the `videos` layout (own footage, and the synthetic dataset).

    <root>/
      train/<name>.{mp4,avi,mkv,mov,...}   normal videos
      test/<name>.{...}                    videos to score
      labels.csv                           optional: video,start,end (abnormal intervals,
                                           0-based inclusive; video = file name without extension)

With labels.csv every test video is labelled (no row: no abnormal frame); without it test videos are
scored, not evaluated. A folder holding videos and neither train/ nor test/ (a camera's recordings) is
all normal footage: every video trains.
"""

from __future__ import annotations

import csv
from pathlib import Path

from vad.data.base import Split, VideoRecord
from vad.errors import DataError, DataLayoutError

__all__ = ["index_videos", "footage", "VIDEO_SUFFIXES"]

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm", ".mpg", ".mpeg", ".wmv"})


def _is_junk(path: Path) -> bool:
    return path.name.startswith(".") or path.name.lower() in {"thumbs.db", "desktop.ini"}


def _videos_in(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not _is_junk(p) and p.suffix.lower() in VIDEO_SUFFIXES)


def _read_labels(path: Path, test_ids: set[str]) -> dict[str, list[tuple[int, int]]]:
    intervals: dict[str, list[tuple[int, int]]] = {video: [] for video in test_ids}
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not {"video", "start", "end"} <= set(reader.fieldnames):
            raise DataError(f"{path}: expected a header 'video,start,end', got {reader.fieldnames}")
        for line, row in enumerate(reader, start=2):
            video = (row["video"] or "").strip()
            if video not in test_ids:
                raise DataError(
                    f"{path}, line {line}: video '{video}' is not a test video (have: "
                    f"{', '.join(sorted(test_ids)) or 'none'}); fix the name or add test/{video}.<ext>"
                )
            try:
                start, end = int(row["start"]), int(row["end"])
            except (TypeError, ValueError):
                raise DataError(f"{path}, line {line}: start/end must be integers, got "
                                f"{row['start']!r}, {row['end']!r}") from None
            intervals[video].append((start, end))
    return intervals


def index_videos(root: Path) -> list[VideoRecord]:
    """Index a `videos` layout folder: train videos, then test videos, each sorted by name."""
    root = Path(root)
    if not root.is_dir():
        raise DataLayoutError(f"dataset folder {root} does not exist; pass --source PATH to an existing folder")
    train, test = _videos_in(root / "train"), _videos_in(root / "test")
    if not train and not test and not (root / "train").is_dir() and not (root / "test").is_dir():
        train = _videos_in(root)  # a flat folder of recordings: normal footage
    if not train and not test:
        raise DataLayoutError(
            f"{root} does not match the 'videos' layout: expected train/*.mp4|avi|... and test/*.mp4|avi|... "
            f"(optional labels.csv with video,start,end), or a folder of normal videos"
        )
    for split, paths in (("train", train), ("test", test)):
        stems = [p.stem for p in paths]
        if len(set(stems)) != len(stems):
            raise DataLayoutError(f"{root / split}: two videos share a name without extension; rename one")
    labels_path = root / "labels.csv"
    intervals = _read_labels(labels_path, {p.stem for p in test}) if labels_path.is_file() else None
    records = [VideoRecord(f"train_{p.stem}", Split.TRAIN, p) for p in train]
    records += [
        VideoRecord(f"test_{p.stem}", Split.TEST, p,
                    intervals=None if intervals is None else tuple(intervals[p.stem]))
        for p in test
    ]
    return records


def footage(sources: list[str]) -> list[Path]:
    """The video files named by `sources`: files as given, folders as their videos (sorted by name).

    Raises:
        DataError: a source that does not exist, or a folder without videos.
    """
    found: list[Path] = []
    for source in sources:
        path = Path(source)
        if path.is_dir():
            videos = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
            if not videos:
                raise DataError(f"folder {path} holds no video files ({', '.join(sorted(VIDEO_SUFFIXES))})")
            found.extend(videos)
        elif path.is_file():
            found.append(path)
        else:
            raise DataError(f"footage {source} not found; pass video files or folders of videos")
    stems = [path.stem for path in found]
    if len(set(stems)) != len(stems):
        raise DataError("two videos share a file name; scores.csv and events.jsonl key rows by file name, so "
                        "rename them or detect in separate runs")
    return found
