"""What machine a figure was measured on."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch


def cpu_name() -> str:
    return cpu_field("model name") or platform.processor() or platform.machine()


CPUINFO = Path("/proc/cpuinfo")


def cpu_field(name: str, cpuinfo: Path = CPUINFO) -> str | None:
    """A field of the first processor in ``cpuinfo`` (None where there is no such file or field)."""
    try:
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == name:
                return value.strip()
    except OSError:
        pass
    return None


def cpu_model(cpuinfo: Path = CPUINFO) -> str | None:
    """The CPU's family and model numbers, which tell generations apart where the name does not (a VM's
    "AMD EPYC": family 25 model 1 is Zen 3, model 17 Zen 4)."""
    family, model = cpu_field("cpu family", cpuinfo), cpu_field("model", cpuinfo)
    return f"family {family} model {model}" if family and model else None


def native_bfloat16() -> bool:
    """Whether the CPU multiplies bfloat16 natively (AVX512-BF16 or AMX)."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, check, lambda: False)() for check in checks)


def machine() -> dict:
    """What a figure was measured on. The same code ran twice as fast on one 2-core VM of this workplace
    (Zen 4, AVX-512 with bfloat16) as on another (Zen 3, AVX2), so figures carry the CPU's generation."""
    return {
        "cpu": cpu_name(),
        "cpu_model": cpu_model(),
        "vector_unit": torch.backends.cpu.get_cpu_capability(),
        "native_bfloat16": native_bfloat16(),
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
