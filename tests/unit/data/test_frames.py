import json

import numpy as np
import pytest
import scipy.io

from vad.config import DataParams, Layout
from vad.data.base import Split
from vad.data.frames import index_frames
from vad.errors import DataError, DataLayoutError
from vad.stages import extract

TEST_01 = [0, 1, 1, 0, 1, 1]          # gt{1} = [2 5; 3 6]
TEST_02 = [0, 0, 0] + [1] * 8         # gt{2} = [4; 11]


@pytest.fixture
def ped2(tmp_path, make_frames):
    return make_frames(tmp_path / "ped2")


def test_index_frames_lists_ids_splits_and_order(ped2):
    records = index_frames(ped2)
    assert [(r.video_id, r.split) for r in records] == [
        ("train_01", Split.TRAIN), ("train_02", Split.TRAIN), ("test_01", Split.TEST), ("test_02", Split.TEST)]
    assert records[0].source == ped2 / "training" / "frames" / "01"
    assert [p.name for p in records[2].frame_paths] == [f"{i:03d}.jpg" for i in range(6)]  # junk left out


def test_index_frames_sorts_frames_numerically(ped2):
    assert [p.name for p in index_frames(ped2)[3].frame_paths] == [f"{i}.jpg" for i in range(11)]


def test_index_frames_sorts_video_folders_numerically(ped2, write_frames):
    write_frames(ped2 / "training" / "frames" / "10", 5)
    write_frames(ped2 / "training" / "frames" / "9", 5, ext="png")
    assert [r.video_id for r in index_frames(ped2) if r.split is Split.TRAIN] == [
        "train_01", "train_02", "train_9", "train_10"]


def test_index_frames_reads_one_based_gt(ped2):
    test = index_frames(ped2)[2:]
    assert test[0].intervals == ((1, 2), (4, 5)) and test[1].intervals == ((3, 10),)
    assert test[0].labels(6).tolist() == TEST_01 and test[1].labels(11).tolist() == TEST_02
    assert test[0].labels_source == ped2 / "ped2.mat"


def test_index_frames_uses_the_only_mat_whatever_its_name(ped2):
    (ped2 / "ped2.mat").rename(ped2 / "labels.mat")
    assert index_frames(ped2)[2].labels(6).tolist() == TEST_01


def test_index_frames_without_mat_leaves_test_videos_unlabelled(tmp_path, make_frames):
    records = index_frames(make_frames(tmp_path / "ped2", mat=False))
    assert [r.intervals for r in records] == [None] * 4


def test_empty_gt_cell_means_no_abnormal_frame(ped2, cell):
    scipy.io.savemat(ped2 / "ped2.mat", {"gt": cell([np.zeros((2, 0)), np.array([[4], [11]])])})
    assert index_frames(ped2)[2].labels(6).tolist() == [0] * 6


def test_index_frames_raises_when_mat_has_no_gt(ped2):
    scipy.io.savemat(ped2 / "ped2.mat", {"labels": np.zeros(3)})
    with pytest.raises(DataError, match=r"ped2\.mat: no variable 'gt' \(has: labels\)") as info:
        index_frames(ped2)
    assert "\n" not in str(info.value)


def test_index_frames_raises_when_cells_and_test_videos_differ(ped2, cell):
    scipy.io.savemat(ped2 / "ped2.mat", {"gt": cell([np.array([[1], [2]])])})
    with pytest.raises(DataError, match="'gt' has 1 cells for 2 test videos"):
        index_frames(ped2)


def test_index_frames_raises_when_gt_is_not_a_cell(ped2):
    scipy.io.savemat(ped2 / "ped2.mat", {"gt": np.array([[1, 2], [3, 4]])})
    with pytest.raises(DataError, match="'gt' must be a cell array"):
        index_frames(ped2)


def test_index_frames_raises_on_a_corrupt_mat(ped2):
    (ped2 / "ped2.mat").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"cannot read labels file .*ped2\.mat"):
        index_frames(ped2)


def test_several_mat_files_without_the_dataset_name_fail(ped2):
    (ped2 / "ped2.mat").rename(ped2 / "a.mat")
    (ped2 / "b.mat").write_bytes(b"")
    with pytest.raises(DataError, match=r"several \.mat files \(a\.mat, b\.mat\)"):
        index_frames(ped2)


@pytest.mark.parametrize(("gt", "n_frames", "match"), [
    (np.array([[5], [7]]), 6, "ends past the video's last frame 5"),
    (np.array([[0], [3]]), 6, r"interval \[0, 3\] is invalid"),
])
def test_bad_intervals_fail(ped2, cell, gt, n_frames, match):
    scipy.io.savemat(ped2 / "ped2.mat", {"gt": cell([gt, np.array([[1], [2]])])})
    with pytest.raises(DataError, match=match):
        index_frames(ped2)[2].labels(n_frames)


def test_video_folder_without_frames_fails(ped2):
    (ped2 / "testing" / "frames" / "03").mkdir()
    with pytest.raises(DataError, match="03 holds no frame images"):
        index_frames(ped2)


def test_missing_or_wrong_folder(tmp_path):
    with pytest.raises(DataLayoutError, match="does not exist"):
        index_frames(tmp_path / "nowhere")
    (tmp_path / "training" / "frames").mkdir(parents=True)
    with pytest.raises(DataLayoutError, match="'frames' layout"):
        index_frames(tmp_path)


@pytest.mark.parametrize("channels", [1, 3])
def test_extract_reads_frame_folders(ped2, tmp_path, channels):
    out = tmp_path / "store"
    result = extract.run(DataParams(dataset="ped2", format=Layout.FRAMES, image_size=16, channels=channels),
                         ped2, out)
    manifest = json.loads((out / "manifest.json").read_text())
    videos = {v["id"]: v for v in manifest["videos"]}
    assert [(v["id"], v["split"], v["frames"]) for v in manifest["videos"]] == [
        ("train_01", "train", 6), ("train_02", "train", 5), ("test_01", "test", 6), ("test_02", "test", 11)]
    assert videos["test_02"]["source"] == "testing/frames/02"
    frames = np.load(out / videos["test_02"]["path"])
    assert frames.shape == (11, 16, 16, channels)
    assert np.all(np.diff(frames.reshape(11, -1).mean(axis=1)) > 10)  # decoded in numeric order
    assert np.load(out / videos["test_01"]["labels"]).tolist() == TEST_01
    assert np.load(out / videos["test_02"]["labels"]).tolist() == TEST_02
    assert result.metrics["abnormal_frames"] == 12
