"""What a layout reader returns: one `VideoRecord` per video, found by looking at files only."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import numpy as np

from vad.errors import DataError

__all__ = ["Split", "VideoRecord", "intervals_to_labels"]


class Split(str, Enum):
    """Dataset split: training videos are normal; test videos are scored."""

    TRAIN = "train"
    TEST = "test"


@dataclass(frozen=True)
class VideoRecord:
    """One video of a dataset, before decoding.

    Attributes:
        video_id: Unique name within the dataset, used for the frame store's file names.
        split: Train or test.
        source: The video file, or the folder of frame images.
        frame_paths: Frame images in temporal order (image-sequence layouts); empty for a video file.
        intervals: Abnormal frame intervals, 0-based inclusive. None: the video carries no labels;
            an empty tuple: labelled, no abnormal frame.
        frame_labels: Per-frame 0/1 labels where the source gives them per frame (masks, .npy);
            takes precedence over `intervals`.
        labels_source: The file the labels came from, for error messages.
    """

    video_id: str
    split: Split
    source: Path
    frame_paths: tuple[Path, ...] = ()
    intervals: tuple[tuple[int, int], ...] | None = field(default=None)
    frame_labels: np.ndarray | None = field(default=None, compare=False)
    labels_source: Path | None = None

    def labels(self, n_frames: int) -> np.ndarray | None:
        """Per-frame 0/1 labels (uint8) for a video of `n_frames` frames, or None when unlabelled.

        Raises:
            DataError: the labels do not fit the video's length.
        """
        where = f"labels of video '{self.video_id}'" + (f" ({self.labels_source})" if self.labels_source else "")
        if self.frame_labels is not None:
            if len(self.frame_labels) != n_frames:
                raise DataError(f"{where}: {len(self.frame_labels)} labels for {n_frames} frames; "
                                f"the labels file must have one entry per frame")
            return (np.asarray(self.frame_labels) != 0).astype(np.uint8)
        if self.intervals is None:
            return None
        return intervals_to_labels(self.intervals, n_frames, where)


def intervals_to_labels(intervals: tuple[tuple[int, int], ...], n_frames: int, what: str) -> np.ndarray:
    """Turn 0-based inclusive [start, end] intervals into a per-frame uint8 array.

    Raises:
        DataError: an interval is reversed, negative or ends past the last frame.
    """
    labels = np.zeros(n_frames, dtype=np.uint8)
    for start, end in intervals:
        if start < 0 or end < start:
            raise DataError(f"{what}: interval [{start}, {end}] is invalid; start must be >= 0 and <= end")
        if end >= n_frames:
            raise DataError(
                f"{what}: interval [{start}, {end}] ends past the video's last frame {n_frames - 1} "
                f"({n_frames} frames); intervals are 0-based inclusive, fix the labels file"
            )
        labels[start : end + 1] = 1
    return labels
