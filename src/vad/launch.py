"""Run a `vad` stage on several processes through torchrun, from inside a Python process (a Kubeflow task).

    run_torchrun(["train", "--params", "p.yaml", "--frames", "f", "--init", "i", "--out", "o"], nproc=4)

is `torchrun --standalone --nproc_per_node=4 vad train ...` started with this interpreter (`python -m
torch.distributed.run ... -m vad train ...`), so it needs no `torchrun` or `vad` script on PATH. See
`vad.distributed` for what each process does.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from vad.config import Params
from vad.errors import ConfigError, VadError

__all__ = ["TorchrunError", "torchrun_command", "run_torchrun", "run_stage"]

log = logging.getLogger(__name__)

RESULT_FILE_ENV = "VAD_RESULT_FILE"  # where a launched stage writes every metric, throughput included


class TorchrunError(VadError, RuntimeError):
    """torchrun, or one of the processes it started, exited with an error."""


def torchrun_command(stage_argv: list[str], nproc: int) -> list[str]:
    """The command line that runs `vad <stage_argv>` on `nproc` processes of this machine."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
            "-m", "vad", *stage_argv]  # vad/__main__.py: the console script without relying on PATH


def run_torchrun(stage_argv: list[str], nproc: int, env: dict[str, str] | None = None) -> None:
    """Run `vad <stage_argv>` on `nproc` processes and wait for them.

    The processes write to this process's stdout and stderr (file descriptors, not Python's `sys.stdout`),
    so their progress shows in the task's log as it happens.

    Raises:
        TorchrunError: the launch failed; the processes' own error lines are in the log above.
    """
    if nproc < 1:
        raise ConfigError(f"torchrun needs at least 1 process, got {nproc}")
    command = torchrun_command(stage_argv, nproc)
    log.info("launching %d processes: %s", nproc, " ".join(command[1:]))
    for stream in (sys.stdout, sys.stderr):
        stream.flush()  # keep our lines before the children's in the shared log
    code = subprocess.run(command, check=False, env=env).returncode
    if code != 0:
        raise TorchrunError(f"torchrun with {nproc} processes exited with code {code} running "
                            f"`vad {stage_argv[0] if stage_argv else ''}`; see the log above")


def run_stage(stage: str, params: Params, paths: dict[str, str | Path], nproc: int) -> dict[str, float]:
    """Run `vad <stage>` with `params` and `--<option> <path>` for each of `paths` on `nproc` processes.

    The params go through a params.yaml in a temporary folder, and the metrics come back through the file
    named by VAD_RESULT_FILE (all of them; the stage's `--metrics` file, for DVC, leaves throughput out).

    Returns:
        The stage's final metrics.
    """
    with tempfile.TemporaryDirectory(prefix=f"vad-{stage}-") as tmp:
        params_file, metrics_file = Path(tmp) / "params.yaml", Path(tmp) / "metrics.json"
        params_file.write_text(yaml.safe_dump(params.model_dump(mode="json", by_alias=True), sort_keys=False))
        options = [item for option, path in paths.items() for item in (f"--{option}", str(path))]
        # --metrics writes what DVC may hash (no throughput); RESULT_FILE_ENV gets every metric
        run_torchrun([stage, "--params", str(params_file), *options, "--metrics", str(Path(tmp) / "dvc.json")],
                     nproc, env={**os.environ, RESULT_FILE_ENV: str(metrics_file)})
        return json.loads(metrics_file.read_text())
