"""What CUDA build and NVIDIA driver a lock file implies (read off its ``nvidia-cuda-runtime`` pin).

The CUDA user-space libraries come as wheels with torch; only the kernel driver must already be on the host. NVIDIA's
minor-version compatibility lets a CUDA X.y runtime run on any driver of major X's first release branch or newer,
so the minimum is per major (NVIDIA's CUDA Toolkit release notes, table "CUDA Toolkit and Corresponding Driver
Versions", Linux x86_64 minimum for the major's GA). The containers in ``containers/`` state the same figures.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

#: minimum Linux driver of each CUDA major (minor-version compatibility)
MIN_DRIVER_BY_CUDA_MAJOR = {12: "525.60.13", 13: "580.65.06"}

_RUNTIME_PIN = re.compile(r"^nvidia-cuda-runtime(?:-cu\d+)?==(\d+)\.(\d+)\.(\S+?)\s*(?:\\)?\s*$", re.MULTILINE)


@dataclass(frozen=True)
class CudaBuild:
    """CUDA implied by a lock: ``runtime`` is the nvidia-cuda-runtime wheel version, ``cuda`` its major.minor."""

    runtime: str
    cuda: str
    min_driver: str

    @property
    def major(self) -> int:
        """CUDA major version (12, 13)."""
        return int(self.cuda.split(".")[0])


def cuda_build(lock: Path) -> CudaBuild | None:
    """The CUDA build a lock file pins, or None for a CPU lock (no nvidia-cuda-runtime line).

    Raises:
        ValueError: the CUDA major is newer than `MIN_DRIVER_BY_CUDA_MAJOR` knows; add its driver minimum there.
    """
    match = _RUNTIME_PIN.search(lock.read_text())
    if match is None:
        return None
    major, minor, rest = int(match.group(1)), match.group(2), match.group(3)
    if major not in MIN_DRIVER_BY_CUDA_MAJOR:
        raise ValueError(f"{lock} pins CUDA {major}.{minor}, whose minimum NVIDIA driver is not in "
                         f"llmrec_local/kit/cuda.py MIN_DRIVER_BY_CUDA_MAJOR; add it from NVIDIA's release notes")
    return CudaBuild(runtime=f"{major}.{minor}.{rest}", cuda=f"{major}.{minor}",
                     min_driver=MIN_DRIVER_BY_CUDA_MAJOR[major])
