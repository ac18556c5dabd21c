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
