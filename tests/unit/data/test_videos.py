import json

import cv2
import numpy as np
import pytest

from vad.config import DataParams
from vad.data.base import Split
from vad.data.videos import index_videos
from vad.errors import DataError, DataLayoutError
from vad.stages import extract


def write_video(path, frames: int, size=(24, 32), value_step=7):
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (size[1], size[0]))
    assert writer.isOpened()
    for i in range(frames):
        image = np.full((*size, 3), (40 + value_step * i) % 256, np.uint8)
        image[: size[0] // 2] = 200
        writer.write(image)
    writer.release()


@pytest.fixture
def dataset(tmp_path):
    root = tmp_path / "ds"
    write_video(root / "train" / "a.avi", 12)
    write_video(root / "train" / "b.avi", 10)
    write_video(root / "test" / "c.avi", 9)
    write_video(root / "test" / "d.avi", 8)
    (root / "test" / ".DS_Store").write_bytes(b"junk")
    (root / "labels.csv").write_text("video,start,end\nc,2,4\nc,7,8\n")
    return root


def test_index_videos_lists_splits_and_labels(dataset):
    records = index_videos(dataset)
    assert [(r.video_id, r.split) for r in records] == [
        ("train_a", Split.TRAIN), ("train_b", Split.TRAIN), ("test_c", Split.TEST), ("test_d", Split.TEST)]
    assert records[2].intervals == ((2, 4), (7, 8)) and records[3].intervals == ()
    assert records[0].intervals is None


def test_extract_writes_the_documented_frame_store(dataset, tmp_path):
    out = tmp_path / "frames"
    result = extract.run(DataParams(dataset="toy", image_size=16, channels=3), dataset, out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["version"] == 1 and manifest["image_size"] == [16, 16] and manifest["channels"] == 3
    videos = {v["id"]: v for v in manifest["videos"]}
    assert videos["train_a"]["frames"] == 12 and videos["train_a"]["labels"] is None
    frames = np.load(out / videos["test_c"]["path"])
    assert frames.shape == (9, 16, 16, 3) and frames.dtype == np.uint8
    labels = np.load(out / videos["test_c"]["labels"])
    assert labels.tolist() == [0, 0, 1, 1, 1, 0, 0, 1, 1]
    assert np.load(out / videos["test_d"]["labels"]).sum() == 0
    assert result.metrics["abnormal_frames"] == 5 and result.metrics["frames"] == 39


def test_extract_grayscale_keeps_one_channel(dataset, tmp_path):
    extract.run(DataParams(image_size=(16, 32), channels=1), dataset, tmp_path / "gray")
    assert np.load(tmp_path / "gray" / "frames" / "train_b.npy").shape == (10, 16, 32, 1)


def _assert_fails_cleanly(dataset, tmp_path, error, match):
    out = tmp_path / "store"
    out.mkdir()
    (out / "keep.txt").write_text("previous output")
    with pytest.raises(error, match=match) as info:
        extract.run(DataParams(image_size=16, channels=1), dataset, out)
    assert "\n" not in str(info.value)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]  # the previous output is untouched
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(".")] == []  # no temp left over


def test_missing_dataset_path(tmp_path):
    with pytest.raises(DataLayoutError, match="does not exist"):
        index_videos(tmp_path / "nowhere")


def test_folder_without_videos_names_the_layout(tmp_path):
    (tmp_path / "train").mkdir()
    with pytest.raises(DataLayoutError, match="'videos' layout"):
        index_videos(tmp_path)


def test_labels_naming_a_missing_video(dataset, tmp_path):
    (dataset / "labels.csv").write_text("video,start,end\nzz,1,2\n")
    _assert_fails_cleanly(dataset, tmp_path, DataError, "'zz' is not a test video")


def test_label_interval_past_the_end(dataset, tmp_path):
    (dataset / "labels.csv").write_text("video,start,end\nd,5,8\n")
    _assert_fails_cleanly(dataset, tmp_path, DataError, r"ends past the video's last frame 7")


def test_video_shorter_than_a_clip(dataset, tmp_path):
    write_video(dataset / "train" / "short.avi", 3)
    _assert_fails_cleanly(dataset, tmp_path, DataError, "short.avi has 3 frames, fewer than the clip length 5")


def test_corrupt_video(dataset, tmp_path):
    (dataset / "test" / "e.avi").write_bytes(np.random.default_rng(0).bytes(4096))
    _assert_fails_cleanly(dataset, tmp_path, DataError, "e.avi")


def test_empty_video(dataset, tmp_path):
    (dataset / "test" / "e.mp4").write_bytes(b"")
    _assert_fails_cleanly(dataset, tmp_path, DataError, "e.mp4 is missing or empty")
