"""keep_freed_memory: a step's freed activations are reused, not mapped and faulted in again."""

import os
import platform
import subprocess
import sys

import pytest

# Training steps of the CNN at batch 64 (what fit runs); print the minor page faults of the last 10.
FAULTS = """
import resource, sys, torch, torch.nn.functional as F
from seecam.allocator import keep_freed_memory
from seecam.models import build_model
from seecam.params import Params
if sys.argv[1] == "keep":
    assert keep_freed_memory()
torch.manual_seed(0)
model = build_model("cnn", Params().model("cnn"))
optimizer = torch.optim.Adam(model.parameters())
x, y = torch.randn(64, 3, 32, 32), torch.randint(0, 10, (64,))
def step():
    optimizer.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    optimizer.step()
for _ in range(5):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


# glibc's thresholds as they start (128 KiB), pinned: by default glibc raises them as blocks are freed, so
# whether a process without the setting faults depends on its heap's history (one CI machine: 2 faults in 10
# steps, this one: 13,000-58,000). Pinned, the baseline maps and faults in every activation on any machine.
UNADAPTED_GLIBC = "glibc.malloc.mmap_threshold=131072:glibc.malloc.trim_threshold=131072"


def faults(mode: str) -> int:
    env = os.environ | {"GLIBC_TUNABLES": UNADAPTED_GLIBC}
    return int(subprocess.run([sys.executable, "-c", FAULTS, mode], check=True, capture_output=True,
                              text=True, env=env).stdout)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_freed_activations_are_reused_instead_of_faulted_in_again():
    default, kept = faults("default"), faults("keep")
    assert default > 10 * 10_000  # measured 356,000-366,000
    assert kept < default / 20, (kept, default)  # measured 1,024-3,071
