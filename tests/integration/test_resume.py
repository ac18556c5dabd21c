"""A training stage killed mid-run resumes from its last checkpoint and ends as an uninterrupted run."""

import signal
import subprocess
import sys
import time

import torch
import yaml

from vad.checkpoint import load_checkpoint


def _pretrain(params_file, frames, out):
    return subprocess.Popen([sys.executable, "-m", "vad", "pretrain", "--params", str(params_file),
                             "--frames", str(frames), "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_killed_pretrain_resumes_to_the_same_weights(tmp_path, frame_store, make_document):
    epochs = 10
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(make_document(pretrain={"epochs": epochs})))
    checkpoint = tmp_path / "killed" / "checkpoint.pt"

    process = _pretrain(params_file, frame_store, tmp_path / "killed")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if checkpoint.is_file() and load_checkpoint(checkpoint)["epoch"] >= 2:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    killed_at = load_checkpoint(checkpoint)["epoch"]
    assert 2 <= killed_at < epochs

    resumed = _pretrain(params_file, frame_store, tmp_path / "killed")
    log = resumed.communicate(timeout=300)[0]
    assert resumed.returncode == 0, log
    assert f"resuming from epoch {killed_at}/{epochs}" in log

    straight = _pretrain(params_file, frame_store, tmp_path / "straight")
    assert straight.wait(timeout=300) == 0

    a, b = load_checkpoint(checkpoint), load_checkpoint(tmp_path / "straight" / "checkpoint.pt")
    assert a["epoch"] == b["epoch"] == epochs
    assert [h["loss"] for h in a["history"]] == [h["loss"] for h in b["history"]]
    for name, tensor in b["model"].items():
        assert torch.equal(a["model"][name], tensor), name


def test_checkpoint_of_other_params_is_not_resumed(tmp_path, frame_store, make_params):
    from vad.stages import pretrain

    pretrain.run(make_params(pretrain={"epochs": 1}), frame_store, tmp_path / "out")
    history = pretrain.run(make_params(pretrain={"epochs": 2, "lr": 5e-4}), frame_store, tmp_path / "out")
    fresh = pretrain.run(make_params(pretrain={"epochs": 2, "lr": 5e-4}), frame_store, tmp_path / "fresh")
    def losses(folder):
        return [h["loss"] for h in load_checkpoint(tmp_path / folder / "checkpoint.pt")["history"]]

    assert losses("out") == losses("fresh") and len(losses("out")) == 2
    assert history.metrics["pretrain_loss"] == fresh.metrics["pretrain_loss"]


def test_finished_checkpoint_is_recomputed_not_reused(tmp_path, frame_store, make_params):
    from vad.stages import pretrain

    params = make_params(pretrain={"epochs": 1})
    pretrain.run(params, frame_store, tmp_path / "out")
    first = load_checkpoint(tmp_path / "out" / "checkpoint.pt")
    # Corrupt the finished weights: a re-run must retrain, not hand them back.
    first["model"] = {k: torch.zeros_like(v) for k, v in first["model"].items()}
    torch.save(first, tmp_path / "out" / "checkpoint.pt")
    pretrain.run(params, frame_store, tmp_path / "out")
    again = load_checkpoint(tmp_path / "out" / "checkpoint.pt")
    assert any(v.abs().sum() > 0 for v in again["model"].values())
    assert len(again["history"]) == 1


def test_a_stage_stopped_by_its_budget_continues_to_the_same_weights(tmp_path, frame_store, make_params):
    from vad.stages import pretrain

    params = make_params(pretrain={"epochs": 3})
    stopped = pretrain.run(params, frame_store, tmp_path / "stopped", should_stop=lambda record: record["epoch"] >= 1)
    assert [r["epoch"] for r in stopped.history] == [1]
    assert load_checkpoint(tmp_path / "stopped" / "checkpoint.pt")["epoch"] == 1  # unfinished: a re-run continues
    continued = pretrain.run(params, frame_store, tmp_path / "stopped")
    assert [r["epoch"] for r in continued.history] == [1, 2, 3]
    whole = pretrain.run(params, frame_store, tmp_path / "whole")
    got, want = (load_checkpoint(tmp_path / d / "checkpoint.pt")["model"] for d in ("stopped", "whole"))
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=0, atol=0, msg=name)
    assert [r["loss"] for r in continued.history] == [r["loss"] for r in whole.history]
