import json

import numpy as np
import pytest
import scipy.io

from vad.config import DataParams, Layout
from vad.data.avenue import LABEL_DIR, index_avenue
from vad.data.base import Split
from vad.errors import DataError, DataLayoutError
from vad.stages import extract

TEST_01 = [0, 0, 1, 1, 0, 0]          # 1_label.mat: masks set on frames 2, 3
TEST_02 = [0] * 6 + [1]               # 2_label.mat: mask set on frame 6


@pytest.fixture
def avenue(tmp_path, make_avenue):
    return make_avenue(tmp_path / "Avenue Dataset")


def test_index_avenue_lists_ids_splits_and_order(avenue):
    records = index_avenue(avenue)
    assert [(r.video_id, r.split) for r in records] == [
        ("train_01", Split.TRAIN), ("train_02", Split.TRAIN), ("test_01", Split.TEST), ("test_02", Split.TEST)]
    assert records[0].source == avenue / "training_videos" / "01.avi" and records[0].frame_paths == ()
    assert records[0].labels(6) is None


def test_index_avenue_sorts_videos_numerically(avenue, write_avi):
    write_avi(avenue / "training_videos" / "10.avi", 5)
    write_avi(avenue / "training_videos" / "3.avi", 5)
    assert [r.video_id for r in index_avenue(avenue) if r.split is Split.TRAIN] == [
        "train_01", "train_02", "train_3", "train_10"]


def test_index_avenue_turns_vollabel_masks_into_frame_labels(avenue):
    test = index_avenue(avenue)[2:]
    assert test[0].labels(6).tolist() == TEST_01 and test[1].labels(7).tolist() == TEST_02
    assert test[0].labels_source == avenue / LABEL_DIR / "1_label.mat"  # N not zero-padded


def test_index_avenue_without_ground_truth_leaves_test_videos_unlabelled(tmp_path, make_avenue):
    records = index_avenue(make_avenue(tmp_path / "avenue", labels=False))
    assert all(r.labels(6) is None for r in records)


def test_index_avenue_raises_when_ground_truth_missing(avenue):
    (avenue / LABEL_DIR / "2_label.mat").unlink()
    with pytest.raises(DataError, match=r"test video 02\.avi has no label file .*2_label\.mat") as info:
        index_avenue(avenue)
    assert "\n" not in str(info.value)


def test_index_avenue_raises_when_mat_has_no_vollabel(avenue):
    scipy.io.savemat(avenue / LABEL_DIR / "1_label.mat", {"gt": np.zeros(3)})
    with pytest.raises(DataError, match=r"1_label\.mat: no variable 'volLabel' \(has: gt\)"):
        index_avenue(avenue)


def test_index_avenue_raises_when_vollabel_is_not_a_cell(avenue):
    scipy.io.savemat(avenue / LABEL_DIR / "1_label.mat", {"volLabel": np.zeros((4, 4))})
    with pytest.raises(DataError, match="'volLabel' must be a cell array"):
        index_avenue(avenue)


@pytest.mark.parametrize("count", [5, 8])
def test_mask_count_not_matching_the_video_fails(avenue, masks, count):
    scipy.io.savemat(avenue / LABEL_DIR / "1_label.mat", {"volLabel": masks(count, {1})})
    record = index_avenue(avenue)[2]
    with pytest.raises(DataError, match=f"test_01.*1_label.mat.*{count} labels for 6 frames"):
        record.labels(6)


def test_missing_or_wrong_folder(tmp_path):
    with pytest.raises(DataLayoutError, match="does not exist"):
        index_avenue(tmp_path / "nowhere")
    (tmp_path / "training_videos").mkdir()
    (tmp_path / "training_videos" / "01.txt").write_text("not a video")
    with pytest.raises(DataLayoutError, match="'avenue' layout"):
        index_avenue(tmp_path)


@pytest.mark.parametrize("channels", [1, 3])
def test_extract_reads_avenue_videos(avenue, tmp_path, channels):
    out = tmp_path / "store"
    result = extract.run(DataParams(dataset="avenue", format=Layout.AVENUE, image_size=16, channels=channels),
                         avenue, out)
    manifest = json.loads((out / "manifest.json").read_text())
    videos = {v["id"]: v for v in manifest["videos"]}
    assert [(v["id"], v["frames"]) for v in manifest["videos"]] == [
        ("train_01", 6), ("train_02", 5), ("test_01", 6), ("test_02", 7)]
    assert videos["test_02"]["source"] == "testing_videos/02.avi"
    assert np.load(out / videos["test_02"]["path"]).shape == (7, 16, 16, channels)
    assert np.load(out / videos["test_01"]["labels"]).tolist() == TEST_01
    assert np.load(out / videos["test_02"]["labels"]).tolist() == TEST_02
    assert result.metrics["abnormal_frames"] == 3
