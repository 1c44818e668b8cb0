"""Golden feature files: each tool's output written exactly as that tool lays it out
(file names, keys, dtypes, folder nesting), with known clip spans.

Each writer puts, under ``root``, a library of two videos' features where the tool
writes them, a query clip's features (a slice of the second video, re-extracted:
a little noise) in the same layout, and the source videos' folder (names only: the
features are made up, so the videos are never decoded). It returns the
:class:`Truth`: the video the slice comes from and where the slice starts in it.

The tools (``../shared/seeds/002-004``):

- SlowFast and CLIP ``extract_features.py``: ``<output_dir>/<video stem>.npz``; clips of
  ``int(fps * clip_len)`` frames cut back to back; SlowFast saves ``features`` only,
  CLIP adds ``fps`` (the source's, a float) and ``clip_length=2`` (an int);
- ResNet at 1 fps (``extract.py --type=2d``): ``[T, 2048]`` L2-normalised float16 per
  video; ``convert.py`` merges them into one HDF5 file, a dataset per ``.npy`` named
  after the file without ``npy`` (``<stem>.``);
- v-iashin/video_features (``on_extraction=save_numpy``): ``<output>/<feature_type>
  [/<model_name with / as _>]/<stem>_<key>.npy`` (float64: ``np.array`` of lists);
  frame-wise models and I3D add ``<stem>_fps.npy`` (0-d float64) and
  ``<stem>_timestamps_ms.npy`` (float64): a frame's instant, or the end of each
  I3D stack (the position after its last frame); R(2+1)D and S3D write features only.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: The library's videos: the query comes from the second (an ActivityNet-like id).
STEMS = ("harbour_at_dusk", "v_GGSY1Qvo990")
BLOCK = 0.5  # the index's block (default)


@dataclass(frozen=True, kw_only=True)
class Truth:
    """What a writer wrote: feature ``i`` of a video spans ``[i step, i step + span)``
    seconds; the query's features are the ``video``'s (stem) from feature ``first``.
    ``library``, ``query`` and ``videos``: where they are under the root; ``timing``:
    what a user gives for files without times (``FeatureTiming.parse``)."""

    video: str
    first: int
    step: float
    span: float
    library: str
    query: str
    videos: str = "videos"
    timing: dict = field(default_factory=dict)

    @property
    def start(self) -> float:
        """Where the query starts in its video, seconds."""
        return self.first * self.step

    @property
    def tolerance(self) -> float:
        """Half a feature's span (or of a block, the index's grid, when shorter)."""
        return max(self.span, BLOCK) / 2


def walk(seed: int, count: int, dim: int) -> np.ndarray:
    """Features that change smoothly along a video, as learned ones do (float64)."""
    return np.cumsum(np.random.default_rng(seed).normal(size=(count, dim)), axis=0)


def library(count: int, dim: int, seed: int = 0) -> dict[str, np.ndarray]:
    return {stem: walk(seed + i, count, dim) for i, stem in enumerate(STEMS)}


def query_slice(features: np.ndarray, first: int, count: int, seed: int = 99) -> np.ndarray:
    """``count`` features from ``first``, as extracted again from a re-encoded copy."""
    noise = np.random.default_rng(seed).normal(scale=0.2, size=(count, features.shape[1]))
    return features[first : first + count] + noise


def videos(folder: Path, extension: str = ".mp4") -> None:
    """The source videos (names only; never decoded)."""
    folder.mkdir(parents=True, exist_ok=True)
    for stem in STEMS:
        (folder / f"{stem}{extension}").write_bytes(b"\0")


# -- SlowFast and CLIP: one .npz per video --------------------------------------------------


def _npz_clips(root: Path, *, fps: float, clip_len: int, dim: int, with_meta: bool) -> Truth:
    frames_per_clip = int(fps * clip_len)  # as the tool cuts them
    span = frames_per_clip / fps
    (root / "features").mkdir(parents=True)
    (root / "query").mkdir()
    feats = library(60, dim)
    extra = dict(fps=fps, clip_length=clip_len) if with_meta else {}
    for stem, values in feats.items():
        np.savez(root / "features" / f"{stem}.npz", features=np.array(list(values.astype(np.float32))), **extra)
    first = 40  # at 29.97 fps, 1.25 s before 40 clips of 2 s
    np.savez(root / "query" / "clip.npz", features=query_slice(feats[STEMS[1]], first, 7).astype(np.float32), **extra)
    videos(root / "raw_videos")
    # SlowFast saves no time: 2 s clips are exact at whole frame rates, else give the frames.
    timing = {} if with_meta else dict(clip_seconds=2.0) if frames_per_clip == fps * clip_len else dict(
        stack=frames_per_clip, frame_rate=fps)
    return Truth(video=STEMS[1], first=first, step=span, span=span, library="features", query="query/clip.npz",
                 videos="raw_videos", timing=timing)


def slowfast(root: Path, *, fps: float = 25.0) -> Truth:
    """SlowFast: ``features [n, 2304]`` only (``--clip_len 2`` is not saved)."""
    return _npz_clips(root, fps=fps, clip_len=2, dim=2304, with_meta=False)


def clip_npz(root: Path, *, fps: float = 29.97) -> Truth:
    """CLIP: ``features [n, 512]``, ``fps`` (the source's), ``clip_length`` 2: at 29.97 fps
    a clip is 59 frames (1.969 s): reading 2 s drifts past half a clip by clip 32."""
    return _npz_clips(root, fps=fps, clip_len=2, dim=512, with_meta=True)


# -- ResNet at 1 fps: .npy per video, merged into .h5 -----------------------------------------


def _resnet(values: np.ndarray) -> np.ndarray:
    return (values / np.linalg.norm(values, axis=1, keepdims=True)).astype(np.float16)  # l2_normalize, half


def resnet_npy(root: Path) -> Truth:
    """``NumpyResult/<video>.npy``: ``[T, 2048]`` float16, one a second."""
    (root / "NumpyResult").mkdir(parents=True)
    (root / "query").mkdir()
    feats = library(80, 2048)
    for stem, values in feats.items():
        np.save(root / "NumpyResult" / f"{stem}.npy", _resnet(values))
    first = 47
    np.save(root / "query" / "clip.npy", _resnet(query_slice(feats[STEMS[1]], first, 10)))
    videos(root / "videos")
    return Truth(video=STEMS[1], first=first, step=1.0, span=1.0, library="NumpyResult", query="query/clip.npy",
                 timing=dict(rate=1))


def resnet_h5(root: Path) -> Truth:
    """``h5Result/SampleVideo.h5``: one ``[T, 2048]`` dataset per ``<stem>.npy``, named
    ``<stem>.``; the query clips merged the same way (``query/clips.h5``)."""
    import h5py

    (root / "h5Result").mkdir(parents=True)
    (root / "query").mkdir()
    feats = library(80, 2048, seed=10)
    with h5py.File(root / "h5Result" / "SampleVideo.h5", "w") as handle:
        for stem, values in feats.items():
            handle.create_dataset(f"{stem}.npy"[:-3], data=_resnet(values))
    first = 61
    with h5py.File(root / "query" / "clips.h5", "w") as handle:
        handle.create_dataset("clip.", data=_resnet(query_slice(feats[STEMS[1]], first, 10)))
        handle.create_dataset("other.", data=_resnet(query_slice(feats[STEMS[0]], 5, 10)))
    videos(root / "videos")
    return Truth(video=STEMS[1], first=first, step=1.0, span=1.0, library="h5Result/SampleVideo.h5",
                 query="query/clips.h5::clip.", timing=dict(rate=1))


# -- v-iashin/video_features, on_extraction=save_numpy ----------------------------------------


def _save_numpy(folder: Path, stem: str, outputs: dict[str, np.ndarray]) -> None:
    """What ``action_on_extraction`` writes: ``<stem>_<key>.npy`` for every key."""
    folder.mkdir(parents=True, exist_ok=True)
    for key, value in outputs.items():
        np.save(folder / f"{stem}_{key}.npy", value)


def vf_framewise(root: Path, *, feature_type: str = "clip", model_name: str = "ViT-B/32",
                 fps: float = 5.0, sidecars: tuple[str, ...] = ("fps", "timestamps_ms")) -> Truth:
    """A frame-wise model (CLIP, ResNet, timm): a feature per frame at ``fps``
    (``extraction_fps``, else the video's), its instant in ``timestamps_ms``."""
    nest = Path(feature_type) / model_name.replace("/", "_")
    feats = library(int(60 * fps), 512, seed=20)

    def outputs(values: np.ndarray) -> dict[str, np.ndarray]:
        every = {feature_type: np.array(values.tolist()), "fps": np.array(fps),
                 "timestamps_ms": np.array([i / fps * 1000 for i in range(len(values))])}
        return {key: value for key, value in every.items() if key == feature_type or key in sidecars}

    for stem, values in feats.items():
        _save_numpy(root / "output" / nest, stem, outputs(values))
    first = int(round(30.0 * fps))  # 30 s, on the block grid
    _save_numpy(root / "query_output" / nest, "clip", outputs(query_slice(feats[STEMS[1]], first, int(8 * fps))))
    videos(root / "videos")
    return Truth(video=STEMS[1], first=first, step=1 / fps, span=1 / fps, library="output",
                 query=f"query_output/{nest}/clip_{feature_type}.npy")


def _stacks(stack: int, step: int, fps: float, count: int) -> np.ndarray:
    """I3D's ``timestamps_ms``: ``CAP_PROP_POS_MSEC`` once stack ``i``'s last frame
    (``i * step + stack``) is read."""
    return np.array([(i * step + stack) / fps * 1000 for i in range(count)])


def vf_i3d(root: Path, *, stack: int = 64, step: int = 64, fps: float = 25.0) -> Truth:
    """I3D: ``<stem>_rgb.npy`` and ``<stem>_flow.npy`` ``[n, 1024]``, ``fps``, and the
    stacks' ends in ``timestamps_ms``."""
    rgb, flow = library(40, 1024, seed=30), library(40, 1024, seed=40)
    for stem in STEMS:
        _save_numpy(root / "output" / "i3d", stem, {
            "rgb": np.array(rgb[stem].tolist()), "flow": np.array(flow[stem].tolist()),
            "fps": np.array(fps), "timestamps_ms": _stacks(stack, step, fps, 40)})
    first, count = 17, 5
    _save_numpy(root / "query_output" / "i3d", "clip", {
        "rgb": np.array(query_slice(rgb[STEMS[1]], first, count).tolist()),
        "flow": np.array(query_slice(flow[STEMS[1]], first, count, seed=98).tolist()),
        "fps": np.array(fps), "timestamps_ms": _stacks(stack, step, fps, count)})
    videos(root / "videos")
    return Truth(video=STEMS[1], first=first, step=step / fps, span=stack / fps, library="output/i3d",
                 query="query_output/i3d")


def vf_r21d(root: Path, *, stack: int = 16, step: int = 16, fps: float = 30.0) -> Truth:
    """R(2+1)D: ``<output>/r21d/<model_name>/<stem>_r21d.npy`` only: stacks of ``stack``
    frames every ``step`` at the video's rate."""
    nest = Path("r21d") / "r2plus1d_18_16_kinetics"
    feats = library(200, 512, seed=50)
    for stem, values in feats.items():
        _save_numpy(root / "output" / nest, stem, {"r21d": np.array(values.tolist())})
    first = 111
    query = query_slice(feats[STEMS[1]], first, 24)
    _save_numpy(root / "query_output" / nest, "clip", {"r21d": np.array(query.tolist())})
    videos(root / "videos")
    return Truth(video=STEMS[1], first=first, step=step / fps, span=stack / fps, library="output",
                 query="query_output/r21d", timing=dict(stack=stack, step=step, frame_rate=fps))


def vf_pickle(root: Path) -> None:
    """``on_extraction=save_pickle``: the same keys, each pickled to ``<stem>_<key>.pkl``."""
    folder = root / "output" / "clip" / "ViT-B_32"
    folder.mkdir(parents=True)
    values = walk(0, 10, 512)
    for key, value in {"clip": values, "fps": np.array(5.0), "timestamps_ms": np.arange(10) * 200.0}.items():
        with open(folder / f"{STEMS[0]}_{key}.pkl", "wb") as handle:
            pickle.dump(value, handle)
