"""resolve_source on dvc://<repo>#<path>[@<rev>]: a folder read from a real local Git + DVC repository."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vad.data.sources import parse_dvc_uri, resolve_source
from vad.errors import DataError, DataLayoutError

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="dvc needs git on PATH")


def digests(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def dvc_env(tmp_path, monkeypatch) -> dict[str, str]:
    env = {"GIT_AUTHOR_NAME": "vad tests", "GIT_AUTHOR_EMAIL": "tests@vad.invalid", "GIT_COMMITTER_NAME": "vad tests",
           "GIT_COMMITTER_EMAIL": "tests@vad.invalid", "DVC_NO_ANALYTICS": "1",
           "DVC_SITE_CACHE_DIR": str(tmp_path / "dvc-site"), "DVC_GLOBAL_CONFIG_DIR": str(tmp_path / "dvc-global"),
           "DVC_SYSTEM_CONFIG_DIR": str(tmp_path / "dvc-sys"), "HOME": str(tmp_path / "home")}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return {**os.environ, **env}


@pytest.fixture
def dvc_repo(tmp_path, dvc_env, raw_dataset) -> Path:
    """A Git + DVC repository with data/raw tracked by DVC: tag v1 holds the raw dataset, HEAD one more file."""
    repo = tmp_path / "repo"
    repo.mkdir()

    def run(*args: str) -> None:
        done = subprocess.run(list(args), cwd=repo, env=dvc_env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"

    run("git", "init", "-q")
    run(sys.executable, "-m", "dvc", "init", "-q")
    shutil.copytree(raw_dataset, repo / "data" / "raw")
    run(sys.executable, "-m", "dvc", "add", "-q", "data/raw")
    run("git", "add", "-A")
    run("git", "commit", "-qm", "raw dataset")
    run("git", "tag", "v1")
    (repo / "data" / "raw" / "NOTES.txt").write_text("added after v1\n")
    run(sys.executable, "-m", "dvc", "add", "-q", "data/raw")
    run("git", "commit", "-qam", "notes")
    return repo


def test_dvc_source_reads_the_folder_at_a_revision(dvc_repo, raw_dataset, tmp_path):
    at_v1 = resolve_source(f"dvc://{dvc_repo}#data/raw@v1", tmp_path / "cache")
    assert digests(at_v1) == digests(raw_dataset)
    head = resolve_source(f"dvc://{dvc_repo}#data/raw", tmp_path / "cache")
    assert digests(head) == digests(raw_dataset) | {"NOTES.txt": hashlib.sha256(b"added after v1\n").hexdigest()}
    assert at_v1 != head and at_v1.is_relative_to(tmp_path / "cache" / "dvc")


@pytest.mark.parametrize(("suffix", "error", "words"), [
    ("#data/raw@v9", DataError, "unknown Git revision 'v9'"),
    ("#data/nope", DataLayoutError, "data/nope in the DVC repository"),
    ("#data/raw/labels.csv", DataLayoutError, "is a file, not a folder"),
    ("", DataError, "not a valid DVC source"),
])
def test_dvc_source_errors_are_one_line(dvc_repo, tmp_path, suffix, error, words):
    with pytest.raises(error) as raised:
        resolve_source(f"dvc://{dvc_repo}{suffix}", tmp_path / "cache")
    assert words in str(raised.value) and "\n" not in str(raised.value)
    assert not list((tmp_path / "cache").rglob("*.csv"))


def test_dvc_source_names_a_repository_that_does_not_exist(tmp_path, dvc_env):
    with pytest.raises(DataError, match="cannot open or clone the Git repository") as raised:
        resolve_source(f"dvc://{tmp_path / 'missing'}#data", tmp_path / "cache")
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(("uri", "parts"), [
    ("dvc://https://github.com/org/data#ped2/videos@v1.0", ("https://github.com/org/data", "ped2/videos", "v1.0")),
    ("dvc://git@github.com:org/data.git#ped2@main", ("git@github.com:org/data.git", "ped2", "main")),
    ("dvc:///srv/repo#/data/raw/", ("/srv/repo", "data/raw", None)),
    ("dvc://../repo#data@a1b2c3d", ("../repo", "data", "a1b2c3d")),
])
def test_parse_dvc_uri(uri, parts):
    assert parse_dvc_uri(uri) == parts


@pytest.mark.parametrize("uri", ["dvc://repo", "dvc://#data", "dvc://repo#", "dvc://repo#data@", "dvc://repo#../up"])
def test_parse_dvc_uri_rejects_malformed_uris(uri):
    with pytest.raises(DataError, match="not a valid DVC source"):
        parse_dvc_uri(uri)
