import json

import numpy as np
import pytest

from vad.config import DataParams, Layout
from vad.data.base import Split
from vad.data.shanghaitech import MASK_DIR, index_shanghaitech
from vad.errors import DataError, DataLayoutError
from vad.stages import extract

TEST_14 = [0, 1, 1, 0, 0, 0]
TEST_15 = [0] * 3 + [1] * 8


@pytest.fixture
def campus(tmp_path, make_shanghaitech):
    return make_shanghaitech(tmp_path / "shanghaitech")


def test_index_shanghaitech_lists_ids_splits_and_order(campus):
    records = index_shanghaitech(campus)
    assert [(r.video_id, r.split) for r in records] == [
        ("train_01_001", Split.TRAIN), ("train_02_001", Split.TRAIN),
        ("test_01_0014", Split.TEST), ("test_01_0015", Split.TEST)]
    assert records[0].source == campus / "training" / "videos" / "01_001.avi" and records[0].frame_paths == ()
    assert [p.name for p in records[2].frame_paths] == [f"{i:03d}.jpg" for i in range(6)]


def test_index_shanghaitech_sorts_frames_and_scenes_numerically(campus, write_frames):
    write_frames(campus / "testing" / "frames" / "02_0161", 5)
    np.save(campus / MASK_DIR / "02_0161.npy", np.zeros(5))
    records = index_shanghaitech(campus)
    assert [r.video_id for r in records[2:]] == ["test_01_0014", "test_01_0015", "test_02_0161"]
    assert [p.name for p in records[3].frame_paths] == [f"{i}.jpg" for i in range(11)]  # junk left out


def test_index_shanghaitech_reads_frame_masks(campus):
    test = index_shanghaitech(campus)[2:]
    assert test[0].labels(6).tolist() == TEST_14 and test[1].labels(11).tolist() == TEST_15
    assert test[0].labels_source == campus / MASK_DIR / "01_0014.npy"


def test_index_shanghaitech_without_masks_leaves_test_videos_unlabelled(tmp_path, make_shanghaitech):
    records = index_shanghaitech(make_shanghaitech(tmp_path / "st", masks=False))
    assert all(r.labels(6) is None for r in records)


def test_index_shanghaitech_raises_when_frame_mask_missing(campus):
    (campus / MASK_DIR / "01_0015.npy").unlink()
    with pytest.raises(DataError, match=r"test video 01_0015 has no frame mask .*01_0015\.npy"):
        index_shanghaitech(campus)


def test_index_shanghaitech_raises_on_a_corrupt_mask(campus):
    (campus / MASK_DIR / "01_0014.npy").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"cannot read frame mask .*01_0014\.npy"):
        index_shanghaitech(campus)


def test_index_shanghaitech_rejects_a_pixel_mask_as_frame_mask(campus):
    np.save(campus / MASK_DIR / "01_0014.npy", np.zeros((6, 4, 4)))
    with pytest.raises(DataError, match=r"expected a 1-D array of per-frame 0/1 labels, got shape \(6, 4, 4\)"):
        index_shanghaitech(campus)


@pytest.mark.parametrize("count", [5, 7])
def test_mask_length_not_matching_the_video_fails(campus, count):
    np.save(campus / MASK_DIR / "01_0014.npy", np.ones(count))
    record = index_shanghaitech(campus)[2]
    with pytest.raises(DataError, match=f"test_01_0014.*{count} labels for 6 frames"):
        record.labels(6)


def test_video_folder_without_frames_fails(campus):
    (campus / "testing" / "frames" / "01_0016").mkdir()
    with pytest.raises(DataError, match="01_0016 holds no frame images"):
        index_shanghaitech(campus)


def test_missing_or_wrong_folder(tmp_path):
    with pytest.raises(DataLayoutError, match="does not exist"):
        index_shanghaitech(tmp_path / "nowhere")
    (tmp_path / "training" / "videos").mkdir(parents=True)
    with pytest.raises(DataLayoutError, match="'shanghaitech' layout"):
        index_shanghaitech(tmp_path)


@pytest.mark.parametrize("channels", [1, 3])
def test_extract_reads_videos_and_frame_folders(campus, tmp_path, channels):
    out = tmp_path / "store"
    result = extract.run(DataParams(dataset="shanghaitech", format=Layout.SHANGHAITECH, image_size=16,
                                    channels=channels), campus, out)
    manifest = json.loads((out / "manifest.json").read_text())
    videos = {v["id"]: v for v in manifest["videos"]}
    assert [(v["id"], v["frames"]) for v in manifest["videos"]] == [
        ("train_01_001", 6), ("train_02_001", 5), ("test_01_0014", 6), ("test_01_0015", 11)]
    assert videos["train_01_001"]["source"] == "training/videos/01_001.avi"
    frames = np.load(out / videos["test_01_0015"]["path"])
    assert frames.shape == (11, 16, 16, channels)
    assert np.all(np.diff(frames.reshape(11, -1).mean(axis=1)) > 5)  # decoded in numeric order
    assert np.load(out / videos["test_01_0014"]["labels"]).tolist() == TEST_14
    assert np.load(out / videos["test_01_0015"]["labels"]).tolist() == TEST_15
    assert result.metrics["abnormal_frames"] == 10
