"""`synthssl.train.device`: one resolution of auto/cpu/cuda/cuda:N for every command."""

from __future__ import annotations

import pytest
import torch

from synthssl.core.config import ConfigError
from synthssl.train.device import resolve_device, resolve_precision


@pytest.fixture
def no_cuda(monkeypatch):
    """A machine without CUDA, whatever this one has."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture
def two_gpus(monkeypatch):
    """A machine with two CUDA devices (only asked, never used)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


def test_auto_is_cpu_without_cuda_and_cuda_with_it(no_cuda, monkeypatch):
    assert resolve_device("auto", "train.device") == torch.device("cpu")
    assert resolve_device("cpu", "train.device") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto", "train.device") == torch.device("cuda")


def test_cuda_devices_are_checked_against_the_machine(two_gpus):
    assert resolve_device("cuda", "--device") == torch.device("cuda")
    assert resolve_device("cuda:1", "--device") == torch.device("cuda", 1)
    with pytest.raises(
        ConfigError, match=r"^--device: 'cuda:2' names GPU 2, but this machine has 2 \(cuda:0 to cuda:1\)$"
    ):
        resolve_device("cuda:2", "--device")


@pytest.mark.parametrize(
    "spec, message",
    [
        ("cuda", "train.device: 'cuda' asks for CUDA, which this machine does not have; use cpu or auto"),
        ("cuda:0", "train.device: 'cuda:0' asks for CUDA, which this machine does not have; use cpu or auto"),
        ("gpu", "train.device: 'gpu' is not a device; expected auto, cpu, cuda or cuda:N"),
        ("meta", "train.device: 'meta' is not a device this package trains on; expected auto, cpu, cuda or cuda:N"),
    ],
)
def test_a_device_the_machine_lacks_is_one_config_error_naming_the_option(no_cuda, spec, message):
    with pytest.raises(ConfigError) as info:
        resolve_device(spec, "train.device")
    assert str(info.value) == message


def test_precision_on_the_cpu_is_fp32_unless_named():
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) is None
    assert resolve_precision("fp32", cpu) is None
    assert resolve_precision("bf16", cpu) is torch.bfloat16
    assert resolve_precision("fp16", cpu) is torch.float16


def test_eval_and_predict_refuse_cuda_in_one_line(no_cuda, tmp_path, capsys):
    from synthssl.train.eval.cli import main as eval_main
    from synthssl.train.predict.cli import main as predict_main

    code = eval_main([f"backbone={tmp_path}", f"out={tmp_path / 'r'}", "device=cuda", "benchmarks=[fashion-mnist]"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err == (
        "train-ssl eval: config error: device: 'cuda' asks for CUDA, which this machine does not have; use cpu or auto"
    )
    code = predict_main([f"run={tmp_path}", f"images={tmp_path}", "device=cuda"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err == (
        "train-ssl predict: error: device: 'cuda' asks for CUDA, which this machine does not have; use cpu or auto"
    )
    assert not (tmp_path / "r").exists()
