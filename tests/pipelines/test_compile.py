"""The committed pipelines/vad_pipeline.yaml is what compiling the pipeline gives now."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "pipelines" / "vad_pipeline.yaml"
COMPILE = "import sys; from pipelines.compile import compile_pipeline; compile_pipeline(sys.argv[1])"


def compile_to(path: Path, **env: str) -> list[dict]:
    # a fresh interpreter: VAD_IMAGE is read when the components are imported, so the default needs a clean import
    clean = {key: value for key, value in os.environ.items() if key != "VAD_IMAGE"} | env
    done = subprocess.run([sys.executable, "-c", COMPILE, str(path)], cwd=REPO, env=clean, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return list(yaml.safe_load_all(path.read_text()))


def test_committed_pipeline_yaml_is_up_to_date(tmp_path):
    fresh = compile_to(tmp_path / "vad_pipeline.yaml")
    committed = list(yaml.safe_load_all(COMMITTED.read_text()))
    assert fresh == committed, "pipelines/vad_pipeline.yaml is stale: run `vad pipeline compile` and commit it"


def test_vad_image_overrides_the_image_at_compile_time(tmp_path):
    spec, _platform = compile_to(tmp_path / "custom.yaml", VAD_IMAGE="registry.example.com/ml/vad:9.9.9-cuda")
    images = {name.removeprefix("exec-"): executor["container"]["image"]
              for name, executor in spec["deploymentSpec"]["executors"].items()}
    assert {task for task, image in images.items() if image.endswith("-cuda")} == {
        "pretrain", "init-clusters", "train", "calibrate", "score"}
    assert set(images.values()) == {"registry.example.com/ml/vad:9.9.9-cuda", "registry.example.com/ml/vad:9.9.9-cpu"}


def test_kfp_cli_compiles_the_same_package(tmp_path):
    """What `kfp run submit -f` is given: the kfp CLI's own compilation, run as a user would (no PYTHONPATH,
    from any folder), matches the committed file."""
    kfp = Path(sys.executable).parent / "kfp"
    clean = {key: value for key, value in os.environ.items() if key not in ("VAD_IMAGE", "PYTHONPATH")}
    out = tmp_path / "cli.yaml"
    command = [str(kfp), "dsl", "compile", "--py", str(REPO / "pipelines" / "vad_pipeline.py"), "--function",
               "vad_pipeline", "--output", str(out)]
    done = subprocess.run(command, cwd=tmp_path, env=clean, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert list(yaml.safe_load_all(out.read_text())) == list(yaml.safe_load_all(COMMITTED.read_text()))
