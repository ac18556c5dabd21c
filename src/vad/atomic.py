"""Outputs written whole or not at all: a temporary name beside the target, then one rename.

Every file and folder the product writes goes through here, so that a kill, a full disk or an error leaves
the previous output intact and no partial one, and what lands follows the umask like any other file
(`tempfile.mkstemp` and `mkdtemp` create 0600 files and 0700 folders). Temporary names carry the writer's
pid (`.NAME.PID.RANDOM.tmp`): the next writer of the same target removes those whose process is gone.
"""

from __future__ import annotations

import errno
import glob
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from vad.errors import DiskFullError

__all__ = ["atomic_file", "atomic_dir", "atomic_write_text", "remove_stale", "umask", "is_disk_full",
           "disk_full", "human_bytes"]

SUFFIX = ".tmp"


def is_disk_full(error: BaseException) -> bool:
    """Whether `error` says the file system (or the user's quota) is full."""
    return isinstance(error, DiskFullError) or isinstance(error, OSError) and error.errno in (errno.ENOSPC,
                                                                                            errno.EDQUOT)


def human_bytes(count: float) -> str:
    """1234567 -> '1.2 MB' (decimal units, as `df -H`)."""
    for unit in ("B", "KB", "MB", "GB"):
        if abs(count) < 1000:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} TB"


def disk_full(target: Path, needed: int | None = None, reached: int | None = None) -> DiskFullError:
    """The one-line error for a full disk at `target`: free space now, and what the output needs or reached."""
    try:
        existing = next(p for p in (target, *target.parents) if p.exists())
        free = shutil.disk_usage(existing).free
        free_text = f"{human_bytes(free)} free"
    except OSError:
        free_text = "free space unknown"
    if needed is not None:
        size = f"needs about {human_bytes(needed)}, {free_text}"
    elif reached is not None:
        size = f"needs more than the {human_bytes(reached)} it had reached when the disk filled, {free_text} now"
    else:
        size = free_text
    return DiskFullError(f"no space left for {target} ({size}); free some space or write it "
                         f"elsewhere and re-run (the previous {target.name}, if any, is intact)")


def _tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def umask() -> int:
    """The process umask, read without changing it where the OS allows."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    current = os.umask(0o022)  # elsewhere: the only portable way to read it is to set it
    os.umask(current)
    return current


def _prefix(target: Path) -> str:
    return f".{target.name}.{os.getpid()}."


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale(target: Path) -> int:
    """Remove temporary files and folders of `target` left by writers that no longer run; returns the count."""
    removed = 0
    for path in target.parent.glob(f".{glob.escape(target.name)}.*.*{SUFFIX}"):
        pid = path.name[len(target.name) + 2:].split(".", 1)[0]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed += 1
    return removed


@contextmanager
def atomic_file(path: str | Path, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside `path`; it replaces `path` only if the block completes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_prefix(path), suffix=SUFFIX)
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fchmod(handle.fileno(), 0o666 & ~umask())
        os.replace(tmp, path)
    except BaseException as error:
        reached = Path(tmp).stat().st_size if Path(tmp).exists() else None
        Path(tmp).unlink(missing_ok=True)
        if is_disk_full(error) and not isinstance(error, DiskFullError):
            raise disk_full(path, reached=reached) from None
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write `text` to `path` whole or not at all."""
    with atomic_file(path, "w") as handle:
        handle.write(text)


@contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Build a folder under a temporary name and swap it into `target` only if the block succeeds.

    On error the temporary folder is removed and an existing `target` is left untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(target)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=_prefix(target), suffix=SUFFIX))
    try:
        os.chmod(tmp, 0o777 & ~umask())
        yield tmp
    except BaseException as error:
        reached = _tree_bytes(tmp) if is_disk_full(error) and not isinstance(error, DiskFullError) else None
        shutil.rmtree(tmp, ignore_errors=True)
        if reached is not None:
            raise disk_full(target, reached=reached) from None
        raise
    old = target.with_name(f".{target.name}.{os.getpid()}.old{SUFFIX}")
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)
