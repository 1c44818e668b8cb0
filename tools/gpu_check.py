"""The kernels on the GPU (CuPy) against the CPU (NumPy): same numbers within the stated tolerance.

    python -m tools.gpu_check [--frames 1200] [--repeat 3]

Needs NumPy and CuPy with a CUDA device (nothing else of vsearch's dependencies:
no video is decoded; the frames are a camera panning over seeded random texture,
at the working size). For each kernel feature kind it prints the largest difference
between GPU and CPU block descriptors, relative to their largest value, (stored blocks; for ``v2`` also
the cells of every phase on every grid the query path compares at, and the
finished search vectors), the smallest cosine similarity of a window vector
computed both ways, and the time each takes for the same frames, side by side.
Exits 1 if a difference exceeds :data:`vsearch.device.GPU_TOLERANCE`.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from vsearch.cells import REGIONS
from vsearch.config import IndexConfig
from vsearch.device import GPU_TOLERANCE, resolve_device
from vsearch.extractors import create_extractor
from vsearch.windows import window_vectors


def panning_frames(seed: int, count: int, size: tuple[int, int] = (96, 128)) -> np.ndarray:
    """``count`` grey frames of a camera panning over smooth random texture (float32)."""
    rng = np.random.default_rng(seed)
    height, width = size
    field = rng.normal(size=(height + count // 3 + 8, width + count + 8))
    for axis in (0, 1):
        field = field + np.roll(field, 1, axis) + np.roll(field, -1, axis)
    field = 128 + 40 * field / field.std()
    frames = np.stack([field[t // 3: t // 3 + height, t: t + width] for t in range(count)])
    return np.clip(frames + rng.normal(0, 2, frames.shape), 0, 255).astype(np.float32)


def _timed(work, repeat: int) -> tuple[float, object]:
    best, out = np.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        out = work()
        best = min(best, time.perf_counter() - start)
    return best, out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=1200, help="analysis frames (10 per second of video)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    cpu, gpu = resolve_device("cpu"), resolve_device("gpu")
    failed = False
    print(f"{args.frames} frames ({args.frames / 10:g} s of video); tolerance {GPU_TOLERANCE:g}")
    for features in ("v2", "seed"):
        config = IndexConfig(features=features)
        on_cpu, on_gpu = create_extractor(config, cpu), create_extractor(config, gpu)
        frames = panning_frames(7, args.frames)
        device_frames = gpu.asarray(frames)
        cpu_s, cpu_blocks = _timed(lambda: on_cpu.describe(frames), args.repeat)
        gpu_s, gpu_blocks = _timed(lambda: gpu.to_numpy(on_gpu.describe(device_frames)), args.repeat)
        scale = max(1.0, float(np.abs(cpu_blocks).max()))
        worst = float(np.abs(cpu_blocks - gpu_blocks).max()) / scale
        rows = [("stored blocks", worst)]
        windows_cpu, windows_gpu = window_vectors(cpu_blocks, config), window_vectors(gpu_blocks, config)
        norms = np.linalg.norm(windows_cpu, axis=1) * np.linalg.norm(windows_gpu, axis=1)
        cosine = float((np.einsum("ij,ij->i", windows_cpu, windows_gpu) / np.maximum(norms, 1e-12)).min())
        rows.append(("search vectors", float(np.abs(windows_cpu - windows_gpu).max())
                     / max(1.0, float(np.abs(windows_cpu).max()))))  # seed's are raw sums, not unit vectors
        if config.pooled:
            grids = tuple(dict.fromkeys([config.cells] + [r.detail for r in REGIONS]))
            cells_cpu = on_cpu.describe_cells(frames[:400], grids)
            cells_gpu = on_gpu.describe_cells(device_frames[:400], grids)
            rows.append(("cells of every phase and grid", max(
                float(np.abs(a[g] - b[g]).max()) / max(1.0, float(np.abs(a[g]).max()))
                for a, b in zip(cells_cpu, cells_gpu) for g in grids)))
        print(f"\n{features}: CPU {cpu_s:.3f} s, GPU {gpu_s:.3f} s (GPU {cpu_s / gpu_s:.1f}x the CPU's speed), "
              f"min window cosine {cosine:.7f}")
        for name, difference in rows:
            verdict = "ok" if difference <= GPU_TOLERANCE else "OVER TOLERANCE"
            failed |= difference > GPU_TOLERANCE
            print(f"  {name:<32} max |GPU - CPU| / max |CPU| {difference:.2e}  {verdict}")
    try:
        import onnxruntime

        providers = onnxruntime.get_available_providers()
        print(f"\nonnxruntime {onnxruntime.__version__}: {', '.join(providers)}"
              + ("" if "CUDAExecutionProvider" in providers else " (no CUDA provider: onnxruntime-gpu not installed)"))
    except ImportError:
        print("\nonnxruntime: not installed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
