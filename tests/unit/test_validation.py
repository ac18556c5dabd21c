import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from vad.data.store import FrameStore
from vad.validation import validate_store, video_table

CLIP_LEN = 5


def copy_store(frame_store, tmp_path):
    root = tmp_path / "frames"
    shutil.copytree(frame_store, root)
    return root


def entry(root, split, index=0):
    return [v for v in json.loads((root / "manifest.json").read_text())["videos"] if v["split"] == split][index]


def edit_manifest(root, video_id, **fields):
    manifest = json.loads((root / "manifest.json").read_text())
    for video in manifest["videos"]:
        if video["id"] == video_id:
            video.update(fields)
    (root / "manifest.json").write_text(json.dumps(manifest))


def frames(root, video):
    return np.load(root / video["path"])


def save_labels(root, video, labels):
    rel = video["labels"] or f"labels/{video['id']}.npy"
    (root / rel).parent.mkdir(exist_ok=True)
    np.save(root / rel, labels)
    edit_manifest(root, video["id"], labels=rel)


# Each breaker damages one video (or the test set) of a copied store and returns the id to be named.
def short_video(root):
    video = entry(root, "test")
    np.save(root / video["path"], frames(root, video)[:CLIP_LEN - 1])
    save_labels(root, video, np.load(root / video["labels"])[:CLIP_LEN - 1])
    edit_manifest(root, video["id"], frames=CLIP_LEN - 1)
    return video["id"]


def manifest_frames_mismatch(root):
    video = entry(root, "train")
    edit_manifest(root, video["id"], frames=video["frames"] - 1)
    return video["id"]


def wrong_shape(root):
    video = entry(root, "train", 1)
    np.save(root / video["path"], frames(root, video)[:, :16])
    return video["id"]


def wrong_channels(root):
    video = entry(root, "train")
    np.save(root / video["path"], np.repeat(frames(root, video), 3, axis=-1))
    return video["id"]


def wrong_dtype(root):
    video = entry(root, "test", 1)
    np.save(root / video["path"], frames(root, video).astype(np.float32))
    return video["id"]


def labels_wrong_length(root):
    video = entry(root, "test")
    save_labels(root, video, np.load(root / video["labels"])[:-3])
    return video["id"]


def labels_value_two(root):
    video = entry(root, "test", 1)
    labels = np.load(root / video["labels"])
    labels[0] = 2
    save_labels(root, video, labels)
    return video["id"]


def train_abnormal(root):
    video = entry(root, "train")
    labels = np.zeros(video["frames"], dtype=np.uint8)
    labels[3:6] = 1
    save_labels(root, video, labels)
    return video["id"]


def only_normal_test_set(root):
    for index in range(3):
        video = entry(root, "test", index)
        save_labels(root, video, np.zeros(video["frames"], dtype=np.uint8))
    return None


def constant_video(root):
    video = entry(root, "train")
    np.save(root / video["path"], np.full_like(frames(root, video), 128))
    return video["id"]


def all_black(root):
    video = entry(root, "test", 2)
    np.save(root / video["path"], np.zeros_like(frames(root, video)))
    return video["id"]


def too_bright(root):
    video = entry(root, "train", 1)
    noise = np.random.default_rng(0).integers(0, 3, frames(root, video).shape)
    np.save(root / video["path"], (253 + noise).astype(np.uint8))
    return video["id"]


CASES = [
    (short_video, "expect_column_values_to_be_between(frames >= 5)"),
    (manifest_frames_mismatch, "expect_column_pair_values_to_be_equal(array_frames == frames)"),
    (wrong_shape, "expect_column_values_to_be_in_set(array_height in {32})"),
    (wrong_channels, "expect_column_values_to_be_in_set(array_channels in {1})"),
    (wrong_dtype, "expect_column_values_to_be_in_set(array_dtype in {uint8})"),
    (labels_wrong_length, "expect_column_pair_values_to_be_equal(labels_length == frames)"),
    (labels_value_two, "expect_column_values_to_be_in_set(labels_max in {0, 1})"),
    (train_abnormal, "expect_column_values_to_be_between(train_abnormal_frames == 0)"),
    (only_normal_test_set, "expect_column_sum_to_be_between(sum(test_abnormal_frames) >= 1)"),
    (constant_video, "expect_column_values_to_be_between(std > 0.5)"),
    (all_black, "expect_column_values_to_be_between(max_value > 10)"),
    (too_bright, "expect_column_values_to_be_between(mean_brightness in [5, 250])"),
]


def test_video_table_summarises_each_video(frame_store):
    store = FrameStore.open(frame_store)
    table = video_table(store)
    assert list(table["id"]) == [video.id for video in store.videos]
    assert (table["array_frames"] == table["frames"]).all()
    assert set(table["array_dtype"]) == {"uint8"}
    assert (table[["array_height", "array_width", "array_channels"]] == [32, 32, 1]).all().all()
    tests = table[table["split"] == "test"]
    assert tests["labelled"].all() and (tests["labels_length"] == tests["frames"]).all()
    assert tests["abnormal_frames"].sum() > 0 and tests["normal_frames"].sum() > 0
    assert (table["std"] > 0.5).all() and table["max_value"].between(0, 255).all()


def test_video_table_reports_zero_std_for_a_constant_video(frame_store, tmp_path):
    root = copy_store(frame_store, tmp_path)
    video_id = constant_video(root)
    table = video_table(FrameStore.open(root)).set_index("id")
    assert table.loc[video_id, "std"] == 0
    assert table.loc[video_id, "mean_brightness"] == 128 and table.loc[video_id, "max_value"] == 128


def test_validate_store_passes_the_fixture_store(frame_store):
    report = validate_store(FrameStore.open(frame_store), CLIP_LEN)
    assert report.success, report.failures
    assert report.failures == ()
    assert report.expectations == 16  # 14 per-video expectations and 2 on the labelled test set
    document = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert document["result"]["statistics"]["unsuccessful_expectations"] == 0
    assert [video["id"] for video in document["videos"]] == [v.id for v in FrameStore.open(frame_store).videos]


@pytest.mark.parametrize(("breaker", "rule"), CASES, ids=[case[0].__name__ for case in CASES])
def test_validate_store_names_the_broken_video(frame_store, tmp_path, breaker, rule):
    root = copy_store(frame_store, tmp_path)
    video_id = breaker(root)
    report = validate_store(FrameStore.open(root), CLIP_LEN)
    assert not report.success
    lines = [line for line in report.failures if line.startswith(rule + ":")]
    assert lines, report.failures
    assert (video_id or "observed 0") in lines[0]
    assert report.result["statistics"]["unsuccessful_expectations"] == len(report.failures)
    json.dumps(report.to_dict(), allow_nan=False)


def test_validate_store_skips_class_checks_when_the_test_set_is_unlabelled(frame_store, tmp_path):
    root = copy_store(frame_store, tmp_path)
    for index in range(3):
        edit_manifest(root, entry(root, "test", index)["id"], labels=None)
    report = validate_store(FrameStore.open(root), CLIP_LEN)
    assert report.success, report.failures
    assert report.expectations == 14


def test_importing_validation_leaves_great_expectations_unloaded():
    code = ("import sys, vad.validation, vad.stages.validate; "
            "print(sorted(m for m in ('great_expectations', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_two_validations_of_one_store_write_the_same_report(frame_store, tmp_path):
    """The report is a DVC output: GX's run ids and times must not reach it, or dvc.lock changes on every run."""
    from vad.config import DataParams
    from vad.stages import validate

    reports = [tmp_path / "a.json", tmp_path / "b.json"]
    for report in reports:
        validate.run(DataParams(clip_len=5), frame_store, report)
    assert reports[0].read_bytes() == reports[1].read_bytes()
    assert "validation_time" not in reports[0].read_text() and "ge_load_time" not in reports[0].read_text()
