"""`vad.allocator`: freed activation buffers are reused by the process instead of faulted in again."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from vad.allocator import _USER_SET

pytestmark = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                                reason="tunes glibc's malloc only")

# Twenty training steps of one convolution on 128x128 maps; prints the minor page faults they took.
STEPS = """
import resource, sys, torch
torch.set_num_threads(1)
if sys.argv[1] == "tuned":
    from vad.allocator import keep_freed_memory
    print(keep_freed_memory())
conv = torch.nn.Conv2d(8, 8, 3, padding=1)
def step():
    x = torch.rand(8, 8, 128, 128, requires_grad=True)
    conv(x).relu().sum().backward()
step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _run(mode: str, **env: str) -> list[str]:
    # Without any setting of the user's that the module defers to (a preloaded allocator included).
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k not in _USER_SET}
    out = subprocess.run([sys.executable, "-c", STEPS, mode], env={**clean, **env}, capture_output=True,
                         text=True, check=True)
    return out.stdout.split()


def test_steps_reuse_freed_buffers_instead_of_faulting_them_in():
    # Each step frees and reallocates 4 MiB buffers. With glibc's defaults every one comes back as new
    # zero-filled pages (about 1,000 faults per buffer); tuned, the pages stay mapped.
    faults_default = int(_run("default")[0])
    set_, faults_tuned = _run("tuned")
    assert set_ == "True"
    assert faults_default > 20 * 1000  # the cost this module removes, present on this machine
    assert int(faults_tuned) * 5 < faults_default


def test_a_user_setting_wins():
    assert _run("tuned", MALLOC_MMAP_THRESHOLD_="131072")[0] == "False"
