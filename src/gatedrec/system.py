"""What machine a figure was measured on."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch


CPUINFO = Path("/proc/cpuinfo")


def cpu_fields(cpuinfo: Path = CPUINFO) -> dict[str, str]:
    """The fields of the first processor in ``cpuinfo``, read once (empty where there is no such file)."""
    try:
        lines = cpuinfo.read_text().splitlines()
    except OSError:
        return {}
    fields: dict[str, str] = {}
    for line in lines:
        key, colon, value = line.partition(":")
        if colon:
            fields.setdefault(key.strip(), value.strip())  # the first processor's value wins
    return fields


def cpu_name(fields: dict[str, str]) -> str:
    return fields.get("model name") or platform.processor() or platform.machine()


def cpu_model(fields: dict[str, str]) -> str | None:
    """The CPU's family and model numbers, which tell generations apart where the name does not (a VM's
    "AMD EPYC": family 25 model 1 is Zen 3, model 17 Zen 4)."""
    family, model = fields.get("cpu family"), fields.get("model")
    return f"family {family} model {model}" if family and model else None


def native_bfloat16() -> bool:
    """Whether the CPU multiplies bfloat16 natively (AVX512-BF16 or AMX)."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, check, lambda: False)() for check in checks)


def machine() -> dict:
    """What a figure was measured on. The same code ran 1.4-2.2 times as fast on one 2-core VM of this workplace
    (Zen 4, AVX-512 with bfloat16) as on another (Zen 3, AVX2), so figures carry the CPU's generation."""
    fields = cpu_fields()
    return {
        "cpu": cpu_name(fields),
        "cpu_model": cpu_model(fields),
        "vector_unit": torch.backends.cpu.get_cpu_capability(),
        "native_bfloat16": native_bfloat16(),
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
