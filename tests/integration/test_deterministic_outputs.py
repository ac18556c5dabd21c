"""What DVC hashes is the same on every run of the same data, code and params (dvc.lock is stable)."""

import json

import yaml
from tests.conftest import tiny_document

from vad import cli
from vad.stages import pretrain, train


def test_training_outputs_are_byte_identical_across_runs_and_keep_no_timings(tmp_path, params, frame_store, trained):
    for run in ("a", "b"):
        result = pretrain.run(params, frame_store, tmp_path / run / "pretrain")
        assert result.history[-1]["clips_per_s"] > 0  # the caller still gets the timings
        train.run(params, frame_store, trained["init"], tmp_path / run / "train")
    for stage in ("pretrain", "train"):
        for name in ("checkpoint.pt", "history.json"):
            first, second = (tmp_path / run / stage / name for run in ("a", "b"))
            assert first.read_bytes() == second.read_bytes(), f"{stage}/{name} differs between two runs"
        history = json.loads((tmp_path / "a" / stage / "history.json").read_text())
        assert history and all(set(record) & {"seconds", "clips_per_s", "data_wait_share"} == set()
                                for record in history)


def test_metrics_files_for_dvc_leave_throughput_to_the_log(tmp_path, frame_store, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_document()))
    caplog.set_level("INFO", logger="vad")
    assert cli.main(["pretrain", "--frames", str(frame_store), "--out", "pretrain", "--metrics", "m.json"]) == 0
    assert set(json.loads((tmp_path / "m.json").read_text())) == {"pretrain_loss"}
    assert "pretrain_clips_per_s" in caplog.text
