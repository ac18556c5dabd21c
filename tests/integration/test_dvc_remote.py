"""A frame store round-trips bit for bit through a DVC S3 remote on a real S3 endpoint (moto server)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="dvc needs git on PATH")


def digests(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_frame_store_round_trips_through_s3_remote(s3_server, s3_bucket, frame_store, tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {**os.environ, "GIT_AUTHOR_NAME": "vad tests", "GIT_AUTHOR_EMAIL": "tests@vad.invalid",
           "GIT_COMMITTER_NAME": "vad tests", "GIT_COMMITTER_EMAIL": "tests@vad.invalid",
           "DVC_NO_ANALYTICS": "1", "DVC_SITE_CACHE_DIR": str(tmp_path / "dvc-site"),
           "DVC_GLOBAL_CONFIG_DIR": str(tmp_path / "dvc-global"), "DVC_SYSTEM_CONFIG_DIR": str(tmp_path / "dvc-sys"),
           "HOME": str(tmp_path / "home")}  # credentials come from the AWS_* variables that s3_server set

    def run(*args: str) -> str:
        done = subprocess.run(list(args), cwd=repo, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def dvc(*args: str) -> str:
        return run(sys.executable, "-m", "dvc", *args)

    run("git", "init", "-q")
    dvc("init", "-q")
    shutil.copytree(frame_store, repo / "data" / "frames")
    expected = digests(frame_store)
    assert expected and digests(repo / "data" / "frames") == expected

    dvc("add", "data/frames")
    dvc("remote", "add", "-d", "store", f"s3://{s3_bucket}/dvc")
    dvc("remote", "modify", "store", "endpointurl", s3_server.endpoint)
    dvc("push")
    pushed = s3_server.client().list_objects_v2(Bucket=s3_bucket, Prefix="dvc/")
    assert pushed.get("KeyCount", 0) > len(set(expected.values()))  # every distinct file + the .dir listing

    shutil.rmtree(repo / "data" / "frames")
    shutil.rmtree(repo / ".dvc" / "cache")
    dvc("pull")
    assert digests(repo / "data" / "frames") == expected


KEEP = ["dvc.yaml", "pyproject.toml", "src", "configs", ".dvc", ".dvcignore", ".gitignore"]


def test_extract_and_validate_reproduce_from_data_pulled_from_the_remote(s3_server, s3_bucket, tmp_path,
                                                                       make_document):
    """The raw dataset is pushed by one clone and pulled by another, which then runs extract + validate."""
    import yaml

    source_repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "DVC_NO_ANALYTICS": "1",
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}

    def run(cwd: Path, *args: str) -> str:
        done = subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout + done.stderr

    first = tmp_path / "first"
    first.mkdir()
    for name in KEEP:
        path = source_repo / name
        if path.is_dir():
            shutil.copytree(path, first / name, ignore=shutil.ignore_patterns("__pycache__", "tmp", "cache"))
        else:
            shutil.copy(path, first / name)
    (first / "params.yaml").write_text(yaml.safe_dump(make_document(), sort_keys=False))
    dvc = [sys.executable, "-m", "dvc"]
    run(first, "git", "init", "-q")
    run(first, *dvc, "remote", "add", "-d", "store", f"s3://{s3_bucket}/pipeline")
    run(first, *dvc, "remote", "modify", "store", "endpointurl", s3_server.endpoint)
    run(first, *dvc, "repro", "synth")
    run(first, "git", "add", "-A")
    run(first, "git", "commit", "-qm", "synth")
    run(first, *dvc, "push", "synth")
    raw = digests(first / "data" / "raw")

    second = tmp_path / "second"
    run(tmp_path, "git", "clone", "-q", str(first), str(second))
    run(second, *dvc, "pull", "synth")
    assert digests(second / "data" / "raw") == raw
    log = run(second, *dvc, "repro", "validate")
    assert "Running stage 'synth'" not in log
    assert "Running stage 'extract'" in log and "Running stage 'validate'" in log
    assert (second / "data" / "frames" / "manifest.json").is_file()
    assert '"success": true' in (second / "reports" / "validation.json").read_text()
