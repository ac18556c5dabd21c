import os
import stat
import subprocess
import sys

import pytest
import torch

from vad.atomic import atomic_dir, atomic_file, atomic_write_text, remove_stale
from vad.checkpoint import load_checkpoint, save_checkpoint
from vad.errors import DataLayoutError


@pytest.fixture
def mask():
    def set_mask(value):
        os.umask(value)
    old = os.umask(0o022)
    yield set_mask
    os.umask(old)


def _mode(path):
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("umask,file_mode,dir_mode", [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700),
                                                      (0o002, 0o664, 0o775)])
def test_outputs_follow_the_umask(tmp_path, mask, umask, file_mode, dir_mode):
    mask(umask)
    atomic_write_text(tmp_path / "report.json", "{}\n")
    save_checkpoint(tmp_path / "checkpoint.pt", {"w": torch.ones(2)})
    with atomic_dir(tmp_path / "store") as folder:
        (folder / "manifest.json").write_text("{}")
    assert _mode(tmp_path / "report.json") == _mode(tmp_path / "checkpoint.pt") == file_mode
    assert _mode(tmp_path / "store") == dir_mode


def test_a_failed_write_keeps_the_previous_output_and_leaves_no_temporary(tmp_path):
    atomic_write_text(tmp_path / "scores.csv", "old\n")
    with atomic_dir(tmp_path / "store") as folder:
        (folder / "a").write_text("old")
    with pytest.raises(OSError), atomic_file(tmp_path / "scores.csv", "w") as handle:
        handle.write("half")
        raise OSError(28, "No space left on device")
    with pytest.raises(KeyboardInterrupt), atomic_dir(tmp_path / "store") as folder:
        (folder / "a").write_text("half")
        raise KeyboardInterrupt
    assert (tmp_path / "scores.csv").read_text() == "old\n" and (tmp_path / "store" / "a").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.csv", "store"]


def test_temporaries_of_dead_writers_are_removed_and_live_ones_kept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    (tmp_path / f".store.{dead}.abc123.tmp").mkdir()
    (tmp_path / f".store.{dead}.abc123.tmp" / "frames.npy").write_bytes(b"x")
    (tmp_path / f".scores.csv.{dead}.xyz.tmp").write_text("half")
    live = tmp_path / f".store.{os.getpid()}.def456.tmp"
    live.mkdir()
    other = tmp_path / ".storage.1.a.tmp"  # another target's temporary
    other.write_text("")
    assert remove_stale(tmp_path / "store") == 1
    with atomic_file(tmp_path / "scores.csv", "w") as handle:
        handle.write("new")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, other.name, "scores.csv"])


def test_a_checkpoint_with_a_changed_tensor_byte_is_refused(tmp_path):
    path = tmp_path / "checkpoint.pt"
    weights = torch.full((4096,), 1.2345, dtype=torch.float32)
    save_checkpoint(path, {"model": {"w": weights}, "epoch": 3})
    assert torch.equal(load_checkpoint(path)["model"]["w"], weights)
    data = bytearray(path.read_bytes())
    at = bytes(data).index(weights[:4].numpy().tobytes())
    data[at + 64:at + 128] = bytes(b ^ 0xFF for b in data[at + 64:at + 128])  # 64 bytes inside the tensor
    path.write_bytes(bytes(data))
    assert not torch.equal(torch.load(path, weights_only=True)["model"]["w"], weights)  # torch reads it
    with pytest.raises(DataLayoutError, match=r"checkpoint .*checkpoint.pt is corrupt"):
        load_checkpoint(path)
