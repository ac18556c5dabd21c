import json
import logging
import shutil

import numpy as np
import pytest

from vad.errors import DataError, DataLayoutError
from vad.stages.validate import run


def copy_store(frame_store, tmp_path):
    root = tmp_path / "frames"
    shutil.copytree(frame_store, root)
    return root


def videos(root, split):
    return [v for v in json.loads((root / "manifest.json").read_text())["videos"] if v["split"] == split]


def short_train_video(root):
    manifest = json.loads((root / "manifest.json").read_text())
    video = next(v for v in manifest["videos"] if v["split"] == "train")
    np.save(root / video["path"], np.load(root / video["path"])[:3])
    video["frames"] = 3
    (root / "manifest.json").write_text(json.dumps(manifest))
    return video["id"], "frames >= 5"


def float_frames(root):
    video = videos(root, "test")[1]
    np.save(root / video["path"], np.load(root / video["path"]).astype(np.float64))
    return video["id"], "array_dtype in {uint8}"


def abnormal_labels_on_train(root):
    manifest = json.loads((root / "manifest.json").read_text())
    video = next(v for v in manifest["videos"] if v["split"] == "train")
    (root / "labels").mkdir(exist_ok=True)
    np.save(root / "labels" / f"{video['id']}.npy", np.ones(video["frames"], dtype=np.uint8))
    video["labels"] = f"labels/{video['id']}.npy"
    (root / "manifest.json").write_text(json.dumps(manifest))
    return video["id"], "train_abnormal_frames == 0"


def black_video(root):
    video = videos(root, "test")[0]
    np.save(root / video["path"], np.zeros_like(np.load(root / video["path"])))
    return video["id"], "max_value > 10"


@pytest.fixture
def report_path(tmp_path):
    return tmp_path / "reports" / "validate.json"


def test_run_passes_the_fixture_store_and_writes_the_report(params, frame_store, report_path):
    result = run(params.data, frame_store, report_path)
    assert result.outputs == {"report": report_path}
    assert result.metrics == {"expectations": 16, "failed": 0}
    report = json.loads(report_path.read_text())
    assert report["success"] is True and report["failures"] == []
    assert report["result"]["statistics"]["evaluated_expectations"] == 16


@pytest.mark.parametrize("breaker", [short_train_video, float_frames, abnormal_labels_on_train, black_video])
def test_run_raises_data_error_naming_the_video_and_still_writes_the_report(params, frame_store, tmp_path,
                                                                          report_path, caplog, breaker):
    root = copy_store(frame_store, tmp_path)
    video_id, rule = breaker(root)
    with caplog.at_level(logging.ERROR, logger="vad.stages.validate"), pytest.raises(DataError) as info:
        run(params.data, root, report_path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"frame store {root} failed ") and message.endswith(f"; see {report_path}")
    assert rule in message and video_id in message
    report = json.loads(report_path.read_text())
    assert report["success"] is False
    assert any(rule in line and video_id in line for line in report["failures"])
    assert len(caplog.records) == len(report["failures"])


def test_run_truncates_the_failure_list_in_the_message(params, frame_store, tmp_path, report_path):
    root = copy_store(frame_store, tmp_path)
    for video in videos(root, "train") + videos(root, "test"):  # black and float: 4 expectations fail
        np.save(root / video["path"], np.zeros(np.load(root / video["path"]).shape, dtype=np.float32))
    with pytest.raises(DataError, match=r"failed 4 of 16 expectations: [^;]+; [^;]+; [^;]+; and 1 more; see "):
        run(params.data, root, report_path)
    assert len(json.loads(report_path.read_text())["failures"]) == 4


def test_run_raises_data_layout_error_without_a_store(params, tmp_path, report_path):
    with pytest.raises(DataLayoutError, match="run `vad extract` first"):
        run(params.data, tmp_path / "missing", report_path)
    assert not report_path.exists()
