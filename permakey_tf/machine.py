"""The CPU this process runs on, as reports name it: model, instruction-set flags, a short label.

Bench logs and seed reports record these so that every number says on which machine it was
measured. Reads /proc/cpuinfo (``platform.processor()`` elsewhere); nothing here imports
TensorFlow.
"""

from __future__ import annotations

import platform


def _cpuinfo_field(prefix: str) -> str | None:
    """The value of the first /proc/cpuinfo line starting with ``prefix`` (None if absent)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(prefix):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_model() -> str:
    """The CPU's model name, e.g. "AMD EPYC 9R14 96-Core Processor"."""
    return _cpuinfo_field("model name") or platform.processor() or "unknown CPU"


def cpu_flags() -> set[str]:
    """The instruction-set flags of the first CPU (empty where /proc/cpuinfo is missing)."""
    return set((_cpuinfo_field("flags") or "").split())


def machine_label(model: str | None = None, flags: set[str] | None = None) -> str:
    """A folder-friendly label: vendor and the widest matrix instruction set, e.g.
    ``amd-epyc-avx2``, ``amd-epyc-avx512``, ``intel-xeon-amx``."""
    model = cpu_model() if model is None else model
    flags = cpu_flags() if flags is None else flags
    vendor = "amd-epyc" if "EPYC" in model else "intel-xeon" if "Xeon" in model else "cpu"
    isa = ("amx" if "amx_bf16" in flags else "avx512" if "avx512f" in flags
           else "avx2" if "avx2" in flags else "base")
    return f"{vendor}-{isa}"
