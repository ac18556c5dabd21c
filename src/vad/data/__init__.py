"""Dataset layouts and the frame store. Each layout is one module with an `index_<layout>` function."""

from vad.config import Layout
from vad.data.videos import index_videos

__all__ = ["READERS"]

READERS = {Layout.VIDEOS: index_videos}
