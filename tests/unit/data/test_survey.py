"""The survey `vad fit` makes of footage before extracting it; a folder of videos as normal footage."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vad.config import Layout
from vad.data.base import Split
from vad.data.detect import detect_layout
from vad.data.survey import survey
from vad.data.videos import index_videos
from vad.fit import dataset_name


def _video(path, frames, fps=7.0):
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (width, height), True)
    for frame in frames:
        writer.write(frame)
    writer.release()


def _gray_frames(n=6, seed=0):
    rng = np.random.default_rng(seed)
    return [cv2.cvtColor(rng.integers(0, 255, (48, 80), dtype=np.uint8), cv2.COLOR_GRAY2BGR) for _ in range(n)]


def test_a_folder_of_videos_is_normal_footage_that_trains(tmp_path):
    for name in ("monday", "tuesday"):
        _video(tmp_path / f"{name}.avi", _gray_frames())
    assert detect_layout(tmp_path) is Layout.VIDEOS
    records = index_videos(tmp_path)
    assert [(r.video_id, r.split) for r in records] == [("train_monday", Split.TRAIN), ("train_tuesday", Split.TRAIN)]
    found = survey(tmp_path)
    assert (found.height, found.width, found.gray, found.fps) == (48, 80, True, pytest.approx(7.0))
    assert (found.train_videos, found.test_videos, found.labelled) == (2, 0, False)


def test_colour_footage_is_not_gray(tmp_path):
    frames = _gray_frames()
    for frame in frames:
        frame[:, :40, 2] = 255  # a red half
    _video(tmp_path / "street.avi", frames)
    assert not survey(tmp_path).gray


def test_an_empty_train_folder_is_not_taken_for_a_flat_folder(tmp_path):
    (tmp_path / "train").mkdir()
    _video(tmp_path / "stray.avi", _gray_frames())
    with pytest.raises(Exception, match="layout"):
        index_videos(tmp_path)


@pytest.mark.parametrize(("source", "name"), [
    ("../shared/data/ped2", "ped2"), ("/data/cam 7/", "cam-7"), ("s3://bucket/site/lobby", "lobby"),
    ("https://example.org/footage/walkway.tar.gz", "walkway"), ("dvc://repo#data/raw@v2", "raw"),
])
def test_the_dataset_is_named_after_the_sources_folder(source, name):
    assert dataset_name(source) == name
