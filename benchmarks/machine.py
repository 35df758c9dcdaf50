"""What every benchmark prints about the machine it ran on, so figures can be compared only when they match."""

import os
import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU model from /proc/cpuinfo (Linux), else whatever the platform says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def describe() -> str:
    return f"nproc={os.cpu_count()} cpu={cpu_model()!r} python={platform.python_version()}"
