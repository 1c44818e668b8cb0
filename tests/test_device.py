"""The device module: the only place that picks CuPy or NumPy."""

from __future__ import annotations

import pytest

from vsearch.device import gpu_available, resolve_device


def test_explicit_gpu_without_gpu_is_an_error():
    from vsearch.errors import DeviceError

    if gpu_available():
        pytest.skip("a GPU is present")
    with pytest.raises(DeviceError):
        resolve_device("gpu")
