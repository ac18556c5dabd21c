"""A full disk: one line naming the output and the space, exit 2, the previous output intact, no temporary left.

Each test runs in its own mount namespace with a small tmpfs (`unshare`), so it needs no privilege beyond
user namespaces and leaves nothing mounted.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from vad.config import Params


def _namespace_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "true"], capture_output=True)
    return probe.returncode == 0


pytestmark = pytest.mark.skipif(not _namespace_works(), reason="needs `unshare` with user namespaces")


def _in_small_disk(mount: Path, size: str, script: str) -> dict:
    """Run a Python `script` with a fresh tmpfs of `size` on `mount`; it prints a JSON result last."""
    mount.mkdir(parents=True, exist_ok=True)
    code = f"mount -t tmpfs -o size={size} tmpfs {mount} && exec {sys.executable} -c \"$0\""
    done = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", code,
                           textwrap.dedent(script)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_extract_that_cannot_fit_is_refused_before_decoding(tmp_path, raw_dataset, params: Params):
    small, large = tmp_path / "small.yaml", tmp_path / "large.yaml"
    document = params.model_dump(mode="json")
    small.write_text(yaml.safe_dump({"data": document["data"]}))  # 32x32 gray: ~150 KB
    large.write_text(yaml.safe_dump({"data": {**document["data"], "image_size": [128, 128], "channels": 3}}))
    mount = tmp_path / "disk"
    result = _in_small_disk(mount, "1m", f"""
        import json, os, subprocess, sys
        vad = [sys.executable, "-m", "vad", "extract", "--source", "{raw_dataset}", "--out", "{mount}/frames"]
        first = subprocess.run(vad + ["--params", "{small}"], capture_output=True, text=True)
        manifest = open("{mount}/frames/manifest.json").read()
        second = subprocess.run(vad + ["--params", "{large}"], capture_output=True, text=True)
        print(json.dumps({{"first": first.returncode, "rc": second.returncode, "stderr": second.stderr,
                          "same": manifest == open("{mount}/frames/manifest.json").read(),
                          "entries": sorted(os.listdir("{mount}"))}}))
    """)
    assert result["first"] == 0
    assert result["rc"] == 2 and result["same"] and result["entries"] == ["frames"]
    lines = [line for line in result["stderr"].splitlines() if line.strip()]
    assert len(lines) == 1, result["stderr"]
    assert f"no space left for {mount}/frames (needs about 7." in lines[0] and "free" in lines[0], lines[0]


def test_a_write_that_fills_the_disk_keeps_the_previous_file_and_folder(tmp_path):
    mount = tmp_path / "disk"
    result = _in_small_disk(mount, "1m", f"""
        import json, os, torch
        from vad.atomic import atomic_dir
        from vad.checkpoint import load_checkpoint, save_checkpoint
        from vad.errors import DiskFullError
        save_checkpoint(__import__("pathlib").Path("{mount}/checkpoint.pt"), {{"w": torch.ones(1000)}})
        os.makedirs("{mount}/store"); open("{mount}/store/a", "w").write("old")
        errors = []
        try:
            save_checkpoint(__import__("pathlib").Path("{mount}/checkpoint.pt"), {{"w": torch.ones(500_000)}})
        except DiskFullError as error:
            errors.append(str(error))
        try:
            with atomic_dir("{mount}/store") as tmp:
                (tmp / "a").write_bytes(b"x" * 2_000_000)
        except DiskFullError as error:
            errors.append(str(error))
        print(json.dumps({{"errors": errors, "entries": sorted(os.listdir("{mount}")),
                          "old": load_checkpoint(__import__("pathlib").Path("{mount}/checkpoint.pt"))["w"].numel(),
                          "store": open("{mount}/store/a").read()}}))
    """)
    assert result["entries"] == ["checkpoint.pt", "store"] and result["old"] == 1000 and result["store"] == "old"
    checkpoint, store = result["errors"]
    assert checkpoint.startswith(f"no space left for {mount}/checkpoint.pt (needs more than the ")
    assert store.startswith(f"no space left for {mount}/store (needs more than the ") and "\n" not in store
