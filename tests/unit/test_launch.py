"""vad.launch: a stage on several processes through torchrun, with failures reported in one line."""

from __future__ import annotations

import sys

import pytest
import yaml

from vad.errors import ConfigError
from vad.launch import TorchrunError, run_torchrun, torchrun_command


def test_the_command_runs_the_vad_cli_under_this_interpreter():
    assert torchrun_command(["train", "--out", "o"], 4) == [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=4", "-m", "vad",
        "train", "--out", "o"]


def test_fewer_than_one_process_is_refused():
    with pytest.raises(ConfigError, match="at least 1 process, got 0"):
        run_torchrun(["train"], 0)


def test_a_failing_stage_names_the_process_count_and_exit_code_in_one_line(tmp_path, make_document, capfd):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(make_document()))
    with pytest.raises(TorchrunError) as error:
        run_torchrun(["train", "--params", str(params), "--frames", str(tmp_path / "missing"), "--init",
                      str(tmp_path / "init"), "--out", str(tmp_path / "out")], 2)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("torchrun with 2 processes exited with code ") and "see the log above" in message
    assert int(message.split("exited with code ")[1].split()[0]) != 0
    assert str(tmp_path / "missing") in capfd.readouterr().err  # the rank's own error line is in the log
    assert not (tmp_path / "out").exists()


def test_run_stage_passes_params_and_paths_and_reads_the_metrics_back(monkeypatch, make_params):
    import json
    from pathlib import Path

    import vad.launch
    from vad.config import load_params

    seen = {}

    def fake(argv, nproc, env):
        options = dict(zip(argv[1::2], argv[2::2], strict=True))
        seen.update(stage=argv[0], nproc=nproc, params=load_params(options.pop("--params")), options=options)
        # the stage's DVC metrics file holds no throughput; every metric comes back through VAD_RESULT_FILE
        Path(options.pop("--metrics")).write_text(json.dumps({"pretrain_loss": 0.5}))
        Path(env[vad.launch.RESULT_FILE_ENV]).write_text(json.dumps({"pretrain_loss": 0.5, "pretrain_clips_per_s": 9}))

    monkeypatch.setattr(vad.launch, "run_torchrun", fake)
    params = make_params(pretrain={"batch_size": 17})
    metrics = vad.launch.run_stage("pretrain", params, {"frames": "/f", "out": Path("/o")}, 3)
    assert metrics == {"pretrain_loss": 0.5, "pretrain_clips_per_s": 9}
    assert seen == {"stage": "pretrain", "nproc": 3, "params": params, "options": {"--frames": "/f", "--out": "/o"}}
