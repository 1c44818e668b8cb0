"""Compute device selection: the only module that decides between CuPy and NumPy.

Feature code is written once against the array namespace ``xp`` returned here.
CuPy and NumPy run the same float32 operations in the same order, so their results
agree to float32 rounding (see ``GPU_TOLERANCE``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from .errors import DeviceError

#: Maximum absolute difference between GPU and CPU descriptors (descriptors are of
#: order 1; the difference comes from float32 summation order and fused operations).
GPU_TOLERANCE = 1e-4

DEVICE_CHOICES = ("auto", "cpu", "gpu")


@dataclass(frozen=True)
class Device:
    """An array namespace plus the way back to host memory."""

    name: str
    xp: ModuleType

    def asarray(self, array: np.ndarray) -> Any:
        return self.xp.asarray(array)

    def to_numpy(self, array: Any) -> np.ndarray:
        if self.xp is np:
            return np.asarray(array)
        return self.xp.asnumpy(array)


@functools.lru_cache(maxsize=1)
def _cupy_or_none() -> ModuleType | None:
    try:
        import cupy  # noqa: PLC0415 - optional dependency, imported only when asked

        if cupy.cuda.runtime.getDeviceCount() < 1:
            return None
        cupy.zeros(1).sum()  # fails early when the driver is unusable
        return cupy
    except Exception:  # any import/driver failure means "no usable GPU"
        return None


def gpu_available() -> bool:
    return _cupy_or_none() is not None


def resolve_device(name: str = "auto") -> Device:
    """Return the device for ``auto``, ``cpu`` or ``gpu``.

    ``auto`` takes the GPU when CuPy and a CUDA device work, otherwise the CPU.
    An explicit ``gpu`` without one raises :class:`DeviceError`.
    """
    if name not in DEVICE_CHOICES:
        raise DeviceError(f"unknown device {name!r}; choose one of {', '.join(DEVICE_CHOICES)}")
    if name == "cpu":
        return Device("cpu", np)
    cupy = _cupy_or_none()
    if cupy is not None:
        return Device("gpu", cupy)
    if name == "gpu":
        raise DeviceError("--device gpu was requested but no CUDA GPU with CuPy is available")
    return Device("cpu", np)


def onnx_providers(device: Device, available: list[str]) -> list[str]:
    """ONNX Runtime execution providers for ``device``: CUDA first on a GPU device
    when the installed runtime has it (``onnxruntime-gpu``), the CPU always last."""
    cuda = "CUDAExecutionProvider"
    return ([cuda] if device.name == "gpu" and cuda in available else []) + ["CPUExecutionProvider"]
