"""Dataset layouts and the frame store. Each layout is one module with an `index_<layout>` function."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from vad.config import Layout
from vad.data.avenue import index_avenue
from vad.data.base import VideoRecord
from vad.data.detect import detect_layout
from vad.data.frames import index_frames
from vad.data.shanghaitech import index_shanghaitech
from vad.data.ucsd import index_ucsd
from vad.data.videos import index_videos

__all__ = ["READERS", "index_dataset", "detect_layout"]

log = logging.getLogger(__name__)

READERS: dict[Layout, Callable[[Path], list[VideoRecord]]] = {
    Layout.UCSD: index_ucsd,
    Layout.FRAMES: index_frames,
    Layout.AVENUE: index_avenue,
    Layout.SHANGHAITECH: index_shanghaitech,
    Layout.VIDEOS: index_videos,
}


def index_dataset(root: Path, layout: Layout) -> tuple[Layout, list[VideoRecord]]:
    """Index the dataset folder `root` with the reader of `layout`, detecting it when `Layout.AUTO`.

    Returns:
        The layout used (never AUTO) and the records: training videos, then test videos.

    Raises:
        DataLayoutError: `root` is missing or does not match the layout (or any layout, for AUTO).
        DataError: labels or frames that the reader finds inconsistent.
    """
    root, layout = Path(root), Layout(layout)
    if layout is Layout.AUTO:
        layout = detect_layout(root)
        log.info("detected layout '%s' in %s", layout.value, root)
    return layout, READERS[layout](root)
