import json

import cv2
import numpy as np
import pytest

from vad.config import DataParams, Layout
from vad.data.base import Split
from vad.data.ucsd import index_ucsd
from vad.errors import DataError, DataLayoutError
from vad.stages import extract

TEST001 = [0, 1, 1, 0, 1, 1]          # UCSDped2.m: [2:3, 5:6]
TEST002 = [0, 0, 0] + [1] * 8         # UCSDped2.m: [4:11]


@pytest.fixture
def ucsd(tmp_path, make_ucsd):
    return make_ucsd(tmp_path / "UCSD_Anomaly_Dataset.v1p2")


def _m_file(root):
    return root / "UCSDped2" / "Test" / "UCSDped2.m"


def test_index_ucsd_lists_ids_splits_and_order(ucsd):
    records = index_ucsd(ucsd)
    assert [(r.video_id, r.split) for r in records] == [
        ("train_001", Split.TRAIN), ("train_002", Split.TRAIN), ("test_001", Split.TEST), ("test_002", Split.TEST)]
    assert records[0].source == ucsd / "UCSDped2" / "Train" / "Train001"
    assert [p.name for p in records[0].frame_paths] == [f"{i:03d}.tif" for i in range(6)]  # junk left out


def test_index_ucsd_sorts_frames_numerically(ucsd):
    names = [p.name for p in index_ucsd(ucsd)[3].frame_paths]
    assert names == [f"{i}.tif" for i in range(11)]  # 2.tif before 10.tif


def test_index_ucsd_accepts_the_ucsdped_folder_itself(ucsd):
    assert index_ucsd(ucsd / "UCSDped2") == index_ucsd(ucsd)


def test_index_ucsd_skips_gt_folders_as_videos(tmp_path, make_ucsd):
    records = index_ucsd(make_ucsd(tmp_path / "ds", labels="both"))
    assert [r.video_id for r in records if r.split is Split.TEST] == ["test_001", "test_002"]


def test_index_ucsd_reads_one_based_intervals_from_the_m_file(ucsd):
    test = [r for r in index_ucsd(ucsd) if r.split is Split.TEST]
    assert test[0].intervals == ((1, 2), (4, 5)) and test[1].intervals == ((3, 10),)
    assert test[0].labels(6).tolist() == TEST001 and test[1].labels(11).tolist() == TEST002
    assert test[0].labels_source == _m_file(ucsd)


def test_index_ucsd_prefers_the_m_file_over_masks(tmp_path, make_ucsd):
    test = index_ucsd(make_ucsd(tmp_path / "ds", labels="both"))[2:]
    assert test[0].labels(6).tolist() == TEST001


def test_index_ucsd_falls_back_to_gt_masks(tmp_path, make_ucsd):
    test = index_ucsd(make_ucsd(tmp_path / "ds", labels="bmp"))[2:]
    assert test[0].labels(6).tolist() == [0, 1, 1, 0, 0, 0]
    assert test[1].labels(11).tolist() == [0] * 10 + [1]
    assert test[0].labels_source.name == "Test001_gt"


def test_index_ucsd_without_labels_leaves_test_videos_unlabelled(tmp_path, make_ucsd):
    records = index_ucsd(make_ucsd(tmp_path / "ds", labels=None))
    assert all(r.labels(len(r.frame_paths)) is None for r in records)


def test_index_ucsd_raises_when_m_file_has_fewer_lines_than_videos(ucsd):
    _m_file(ucsd).write_text("TestVideoFile{end+1}.gt_frame = [61:180];\n")
    with pytest.raises(DataError, match="1 gt_frame lines for 2 test videos"):
        index_ucsd(ucsd)


def test_index_ucsd_raises_when_m_file_has_no_gt_frame(ucsd):
    _m_file(ucsd).write_text("TestVideoFile = {};\n")
    with pytest.raises(DataError, match=r"UCSDped2\.m: no line"):
        index_ucsd(ucsd)


def test_index_ucsd_raises_on_an_unreadable_range(ucsd):
    _m_file(ucsd).write_text("TestVideoFile{end+1}.gt_frame = [1:2];\nTestVideoFile{end+1}.gt_frame = [a:9];\n")
    with pytest.raises(DataError, match="line 2: cannot read range 'a:9'"):
        index_ucsd(ucsd)


def test_index_ucsd_rejects_frame_zero_in_one_based_labels(ucsd):
    _m_file(ucsd).write_text("TestVideoFile{end+1}.gt_frame = [0:2];\nTestVideoFile{end+1}.gt_frame = [1:2];\n")
    with pytest.raises(DataError, match=r"interval \[0, 2\] is invalid; intervals are 1-based"):
        index_ucsd(ucsd)


def test_labels_longer_than_the_video_fail(ucsd):
    _m_file(ucsd).write_text("TestVideoFile{end+1}.gt_frame = [5:7];\nTestVideoFile{end+1}.gt_frame = [1:2];\n")
    record = index_ucsd(ucsd)[2]
    with pytest.raises(DataError, match=r"test_001.*UCSDped2\.m.*ends past the video's last frame 5"):
        record.labels(6)


@pytest.mark.parametrize("masks", [5, 7])
def test_mask_count_not_matching_the_video_fails(tmp_path, make_ucsd, masks):
    root = make_ucsd(tmp_path / "ds", labels="bmp")
    gt = root / "UCSDped2" / "Test" / "Test001_gt"
    if masks == 5:
        (gt / "006.bmp").unlink()
    else:
        cv2.imwrite(str(gt / "007.bmp"), np.zeros((24, 32), np.uint8))
    record = index_ucsd(root)[2]
    with pytest.raises(DataError, match=f"{masks} labels for 6 frames"):
        record.labels(6)


def test_corrupt_mask_is_named(tmp_path, make_ucsd):
    root = make_ucsd(tmp_path / "ds", labels="bmp")
    (root / "UCSDped2" / "Test" / "Test002_gt" / "003.bmp").write_bytes(b"not a bmp")
    with pytest.raises(DataError, match=r"Test002_gt/003\.bmp"):
        index_ucsd(root)


def test_video_folder_without_frames_fails(ucsd):
    (ucsd / "UCSDped2" / "Train" / "Train003").mkdir()
    with pytest.raises(DataError, match="Train003 holds no frame images"):
        index_ucsd(ucsd)


def test_parent_of_two_ucsd_datasets_is_ambiguous(ucsd, write_frames):
    write_frames(ucsd / "UCSDped1" / "Train" / "Train001", 5, ext="tif")
    with pytest.raises(DataLayoutError, match=r"several UCSD datasets \(UCSDped1, UCSDped2\)"):
        index_ucsd(ucsd)


def test_missing_or_wrong_folder(tmp_path):
    with pytest.raises(DataLayoutError, match="does not exist"):
        index_ucsd(tmp_path / "nowhere")
    (tmp_path / "Train").mkdir()
    with pytest.raises(DataLayoutError, match="'ucsd' layout: expected UCSDped\\*/Train/Train001/\\*.tif"):
        index_ucsd(tmp_path)


@pytest.mark.parametrize("channels", [1, 3])
def test_extract_reads_grayscale_tif_sequences(ucsd, tmp_path, channels):
    out = tmp_path / "store"
    params = DataParams(dataset="ped2", format=Layout.UCSD, image_size=16, channels=channels)
    result = extract.run(params, ucsd, out)
    manifest = json.loads((out / "manifest.json").read_text())
    videos = {v["id"]: v for v in manifest["videos"]}
    assert [(v["id"], v["frames"]) for v in manifest["videos"]] == [
        ("train_001", 6), ("train_002", 5), ("test_001", 6), ("test_002", 11)]
    assert videos["train_001"]["labels"] is None
    assert videos["test_002"]["source"] == "UCSDped2/Test/Test002"
    frames = np.load(out / videos["test_002"]["path"])
    assert frames.shape == (11, 16, 16, channels) and frames.dtype == np.uint8
    assert np.all(np.diff(frames.reshape(11, -1).mean(axis=1)) > 10)  # decoded in numeric order
    assert np.load(out / videos["test_001"]["labels"]).tolist() == TEST001
    assert np.load(out / videos["test_002"]["labels"]).tolist() == TEST002
    assert result.metrics["abnormal_frames"] == 12 and result.metrics["frames"] == 28
