"""`*.device` params: auto picks the best accelerator present; a named one that is missing is one line."""

import pytest
import torch

from seecam.device import exact_fp32, resolve_device
from seecam.errors import SeecamError


@pytest.fixture
def machine(monkeypatch):
    """Make this machine look as if it had the accelerators named: machine(cuda=True), machine(mps=True)."""
    def having(cuda: bool = False, mps: bool = False) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    return having


@pytest.mark.parametrize(("cuda", "mps", "chosen"), [
    (True, True, "cuda"),
    (False, True, "mps"),
    (False, False, "cpu"),
])
def test_auto_is_cuda_else_mps_else_cpu(machine, cuda, mps, chosen):
    machine(cuda=cuda, mps=mps)
    assert resolve_device("auto") == torch.device(chosen)


@pytest.mark.parametrize(("name", "cuda", "mps"), [
    ("cpu", False, False),
    ("cpu", True, True),  # a named device is used even beside a faster one
    ("mps", True, True),
    ("cuda", True, False),
])
def test_a_named_device_that_is_present_is_used(machine, name, cuda, mps):
    machine(cuda=cuda, mps=mps)
    assert resolve_device(name) == torch.device(name)


@pytest.mark.parametrize(("name", "message"), [
    ("cuda", "explain.device is cuda but no CUDA GPU is visible; use auto or cpu"),
    ("mps", "explain.device is mps but MPS is not available; use auto or cpu"),
])
def test_a_missing_accelerator_is_one_line_naming_the_key(machine, name, message):
    machine()
    with pytest.raises(SeecamError) as error:
        resolve_device(name, "explain.device")
    assert str(error.value) == message


@pytest.fixture
def tf32_on():
    """TF32 allowed for cuDNN and matmuls; the settings as they were after the test (torch's flag objects are
    no plain attributes for monkeypatch to restore)."""
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    before = cudnn.allow_tf32, matmul.allow_tf32
    cudnn.allow_tf32 = matmul.allow_tf32 = True
    yield
    cudnn.allow_tf32, matmul.allow_tf32 = before


def test_exact_fp32_turns_tf32_off_on_cuda(tf32_on):
    exact_fp32(torch.device("cuda"))
    assert (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32) == (False, False)


def test_exact_fp32_leaves_other_devices_alone(tf32_on):
    exact_fp32(torch.device("cpu"))
    assert (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32) == (True, True)
