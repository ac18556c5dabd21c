import logging

import pytest

from vad.config import Layout
from vad.data import READERS, detect_layout, index_dataset
from vad.errors import DataLayoutError


@pytest.fixture
def trees(tmp_path, make_ucsd, make_frames, make_avenue, make_shanghaitech, write_avi):
    """One tiny tree per layout: {layout: root}."""
    videos = tmp_path / "own"
    write_avi(videos / "train" / "a.avi", 5)
    write_avi(videos / "test" / "b.avi", 5)
    return {
        Layout.UCSD: make_ucsd(tmp_path / "ucsd"),
        Layout.FRAMES: make_frames(tmp_path / "ped2"),
        Layout.AVENUE: make_avenue(tmp_path / "avenue"),
        Layout.SHANGHAITECH: make_shanghaitech(tmp_path / "shanghaitech"),
        Layout.VIDEOS: videos,
    }


def test_every_layout_has_a_reader():
    assert set(READERS) == set(Layout) - {Layout.AUTO}


def test_detect_layout_recognises_each_layout(trees):
    assert {layout: detect_layout(root) for layout, root in trees.items()} == {layout: layout for layout in trees}


def test_detect_layout_accepts_the_ucsdped_folder_itself(trees):
    assert detect_layout(trees[Layout.UCSD] / "UCSDped2") is Layout.UCSD


def test_shanghaitech_test_frames_alone_are_not_taken_for_the_frames_layout(tmp_path, write_frames):
    write_frames(tmp_path / "testing" / "frames" / "01_0014", 5)
    (tmp_path / "testing" / "test_frame_mask").mkdir()
    assert detect_layout(tmp_path) is Layout.SHANGHAITECH


def test_videos_needs_video_files_in_train_or_test(tmp_path, write_frames, write_avi):
    write_frames(tmp_path / "train" / "clip", 5)
    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "notes.txt").write_text("no video here")
    with pytest.raises(DataLayoutError, match="cannot detect"):
        detect_layout(tmp_path)
    write_avi(tmp_path / "test" / "b.avi", 5)
    assert detect_layout(tmp_path) is Layout.VIDEOS


def test_unknown_folder_lists_every_layout_on_one_line(tmp_path):
    (tmp_path / "stuff").mkdir()
    with pytest.raises(DataLayoutError) as info:
        detect_layout(tmp_path)
    message = str(info.value)
    assert "\n" not in message
    for expected in ("ucsd: UCSDped*/Train/Train001/*.tif", "frames: training/frames/<video>/*.jpg",
                     "avenue: training_videos/NN.avi", "shanghaitech: training/videos/SS_VVV.avi",
                     "videos: train/*.mp4", "--format"):
        assert expected in message


def test_missing_root(tmp_path):
    with pytest.raises(DataLayoutError, match="does not exist"):
        detect_layout(tmp_path / "nowhere")


def test_folder_matching_two_layouts_is_ambiguous(trees, write_avi):
    root = trees[Layout.FRAMES]
    write_avi(root / "train" / "a.avi", 5)
    with pytest.raises(DataLayoutError, match=r"several layouts \(frames, videos\); pass --format"):
        detect_layout(root)


def test_index_dataset_detects_and_logs_the_layout(trees, caplog):
    root = trees[Layout.FRAMES]
    with caplog.at_level(logging.INFO, logger="vad.data"):
        layout, records = index_dataset(root, Layout.AUTO)
    assert layout is Layout.FRAMES and len(records) == 4
    assert f"detected layout 'frames' in {root}" in caplog.messages


def test_index_dataset_with_an_explicit_layout_skips_detection(trees, caplog):
    with caplog.at_level(logging.INFO, logger="vad.data"):
        layout, records = index_dataset(trees[Layout.AVENUE], "avenue")
    assert layout is Layout.AVENUE and [r.video_id for r in records][-1] == "test_02"
    assert not caplog.messages
    with pytest.raises(DataLayoutError, match="'ucsd' layout"):
        index_dataset(trees[Layout.AVENUE], Layout.UCSD)


def test_the_same_ids_whatever_the_layout(trees):
    ids = {layout: [r.video_id for r in index_dataset(root, Layout.AUTO)[1]] for layout, root in trees.items()}
    assert ids[Layout.FRAMES] == ids[Layout.AVENUE] == ["train_01", "train_02", "test_01", "test_02"]
