"""Where a figure was measured: the machine's CPU model, cores, memory and platform (no TensorFlow).

Benchmarks and reproduction reports print these beside their numbers, so every figure names its machine.
"""

from __future__ import annotations

import os
import platform


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; ``platform.processor()`` elsewhere), e.g. "AMD EPYC"."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def memory_gib() -> float | None:
    """Physical memory in GiB (one decimal), None where the platform does not say."""
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def describe() -> dict:
    """{"cpu": model, "cores": logical cores, "memory_gib", "platform", "python"}."""
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "memory_gib": memory_gib(),
            "platform": platform.platform(), "python": platform.python_version()}
