"""An ONNX image model behind the extractor interface, run with ONNX Runtime.

Each analysis frame (RGB, decoded at the model's input size) goes through the
model in batches; the frame embeddings are L2-normalised and averaged per block,
so a block is described by what its frames show. Windows of consecutive blocks are
made as for the kernels.

The model's input size and normalisation come, in this order, from a JSON sidecar
next to it (``model.json`` for ``model.onnx``), from the model's metadata
(``input_size``, ``mean``, ``std`` as JSON strings), from the model's fixed input
shape, and for ``mean``/``std`` from the ImageNet defaults torchvision and OpenCLIP
models expect::

    {"input_size": [224, 224], "mean": [0.481, 0.458, 0.408], "std": [0.269, 0.261, 0.276]}

The index pins the model by a BLAKE2b hash of the model file and its sidecar: a
query or ingest with another model is refused (:class:`ConfigMismatchError`).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from ..config import IndexConfig
from ..device import Device, onnx_providers, resolve_device
from ..errors import ConfigMismatchError, VsearchError
from ..frames import resize_frames
from .base import Extractor

#: ImageNet normalisation on [0, 1] pixels: what torchvision models expect.
DEFAULT_MEAN = (0.485, 0.456, 0.406)
DEFAULT_STD = (0.229, 0.224, 0.225)

#: Frames per model call: large enough to keep the runtime busy, small enough that
#: a 224x224 batch stays near 20 MB.
BATCH_FRAMES = 32

#: Environment variable overriding the runtime's threads per model call.
THREADS_ENV = "VSEARCH_ONNX_THREADS"

_INSTALL = 'ONNX features need onnxruntime: pip install "vsearch[onnx]"'


def import_runtime() -> ModuleType:
    """The ``onnxruntime`` module, or a one-line error naming the extra."""
    try:
        import onnxruntime  # noqa: PLC0415 - optional extra
    except ImportError:
        raise VsearchError(_INSTALL) from None
    return onnxruntime


def sidecar_path(model: str | os.PathLike) -> Path:
    """The JSON sidecar of ``model`` (``model.json`` for ``model.onnx``)."""
    return Path(model).with_suffix(".json")


def model_hash(model: str | os.PathLike) -> str:
    """BLAKE2b-128 of the model file followed by its sidecar (if any), hex."""
    digest = hashlib.blake2b(digest_size=16)
    for part in (Path(model), sidecar_path(model)):
        if part == Path(model) or part.is_file():
            try:
                with open(part, "rb") as handle:
                    while chunk := handle.read(1 << 20):
                        digest.update(chunk)
            except OSError as exc:
                raise VsearchError(f"{part}: cannot read model ({exc.strerror})") from None
    return digest.hexdigest()


@dataclass(frozen=True, kw_only=True)
class ModelInfo:
    """What vsearch needs to know of a model: its input and output."""

    path: str
    hash: str
    input_name: str
    height: int
    width: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    dim: int


def default_threads() -> int:
    """Runtime threads per model call: half the cores (at least one), so the model
    and the decoder processes that feed it do not take each other's cores; the
    runtime's own default would take them all and spin while waiting."""
    given = os.environ.get(THREADS_ENV, "").strip()
    if given:
        try:
            return max(1, int(given))
        except ValueError:
            raise VsearchError(f"{THREADS_ENV} must be a whole number, got {given!r}") from None
    return max(1, (os.cpu_count() or 2) // 2)


def _settings(model: Path, metadata: dict[str, str]) -> dict[str, Any]:
    """Input size and normalisation from the sidecar, else the model's metadata."""
    settings: dict[str, Any] = {}
    for key in ("input_size", "mean", "std"):
        if key in metadata:
            try:
                settings[key] = json.loads(metadata[key])
            except ValueError:
                raise VsearchError(f"{model}: metadata {key!r} is not JSON ({metadata[key]!r})") from None
    side = sidecar_path(model)
    if side.is_file():
        try:
            loaded = json.loads(side.read_text())
        except (OSError, ValueError) as exc:
            raise VsearchError(f"{side}: not a readable JSON sidecar ({exc})") from None
        if not isinstance(loaded, dict):
            raise VsearchError(f"{side}: the sidecar must be a JSON object")
        settings.update({k: v for k, v in loaded.items() if k in ("input_size", "mean", "std")})
    return settings


def open_model(model: str | os.PathLike, device: Device) -> tuple[Any, ModelInfo]:
    """An inference session of ``model`` on ``device``, and its :class:`ModelInfo`."""
    ort = import_runtime()
    path = Path(model)
    if not path.is_file():
        raise VsearchError(f"{path}: no such model file")
    options = ort.SessionOptions()
    options.intra_op_num_threads = default_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # A spinning runtime thread burns a core the decoders need between batches.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        session = ort.InferenceSession(str(path), sess_options=options,
                                       providers=onnx_providers(device, ort.get_available_providers()))
    except Exception as exc:  # the runtime raises its own classes for every kind of bad file
        raise VsearchError(f"{path}: not a usable ONNX model ({str(exc).splitlines()[0][:200]})") from None
    inputs = session.get_inputs()
    if len(inputs) != 1 or len(inputs[0].shape) != 4:
        raise VsearchError(f"{path}: expected one image input [batch, 3, height, width], "
                           f"got {[tuple(i.shape) for i in inputs]}")
    shape = inputs[0].shape
    if shape[1] not in (3, "3") and isinstance(shape[1], int):
        raise VsearchError(f"{path}: expected 3 colour channels (NCHW input), got shape {tuple(shape)}")
    settings = _settings(path, session.get_modelmeta().custom_metadata_map)
    size = settings.get("input_size")
    if size is None and isinstance(shape[2], int) and isinstance(shape[3], int):
        size = [shape[2], shape[3]]
    if size is None:
        raise VsearchError(f"{path}: the input size is not fixed; give it in {sidecar_path(path).name} "
                           'as {"input_size": [224, 224]}')
    try:
        height, width = (int(v) for v in size)
        mean = tuple(float(v) for v in settings.get("mean", DEFAULT_MEAN))
        std = tuple(float(v) for v in settings.get("std", DEFAULT_STD))
    except (TypeError, ValueError):
        raise VsearchError(f"{path}: input_size must be [height, width] and mean/std three numbers") from None
    if len(mean) != 3 or len(std) != 3 or min(std) <= 0 or height < 8 or width < 8:
        raise VsearchError(f"{path}: input_size must be at least 8x8 and mean/std three numbers (std > 0)")
    info = ModelInfo(path=str(path.resolve()), hash=model_hash(path), input_name=inputs[0].name, height=height,
                     width=width, mean=mean, std=std, dim=0)
    probe = _run(session, info, np.zeros((1, height, width, 3), np.uint8))
    return session, ModelInfo(**{**info.__dict__, "dim": probe.shape[1]})


def _run(session: Any, info: ModelInfo, frames: np.ndarray) -> np.ndarray:
    """Embeddings ``(n, dim)`` of RGB frames ``(n, height, width, 3)`` (one model call)."""
    x = frames.astype(np.float32) / 255.0
    x = (x - np.asarray(info.mean, np.float32)) / np.asarray(info.std, np.float32)
    x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    try:
        out = session.run(None, {info.input_name: x})[0]
    except Exception as exc:  # the runtime's own error classes
        raise VsearchError(f"{info.path}: the model failed on a batch ({str(exc).splitlines()[0][:200]})") from None
    out = np.asarray(out, dtype=np.float32).reshape(len(frames), -1)
    if out.shape[1] == 0:
        raise VsearchError(f"{info.path}: the model's first output is empty")
    return out


def onnx_settings(model: str | os.PathLike) -> dict[str, Any]:
    """Index settings (``IndexConfig`` fields) for a new index of ``model``'s features:
    the model's hash, its embedding size, and its input size as the working size."""
    _, info = open_model(model, resolve_device("cpu"))
    return dict(features="onnx", model_hash=info.hash, model_path=info.path, embedding_dim=info.dim,
                width=info.width, height=info.height)


class OnnxExtractor(Extractor):
    """Frame embeddings of an ONNX image model, averaged per block.

    ``model`` overrides the index's recorded model path (a moved copy); either way the
    file must hash to the index's ``model_hash``.
    """

    pixel_format = "rgb24"
    edited_readings = frozenset({"rotations", "inset"})

    def __init__(self, config: IndexConfig, device: Device, *, model: str | os.PathLike | None = None) -> None:
        super().__init__(config, device)
        path = os.fspath(model) if model is not None else config.model_path
        if not path or not os.path.isfile(path):
            raise ConfigMismatchError(
                f"the index's ONNX model {path or '(unknown)'} is not there: pass it with --features onnx:PATH")
        import_runtime()
        digest = model_hash(path)
        if digest != config.model_hash:
            raise ConfigMismatchError(
                f"{path}: another model (hash {digest[:12]}) than the index's "
                f"{config.model_path or ''} (hash {config.model_hash[:12]}): query with the index's model "
                "or build a new index")
        self.session, self.model = open_model(path, device)
        if self.model.dim != config.embedding_dim:
            raise ConfigMismatchError(f"{path}: embeds in {self.model.dim} dimensions, the index holds "
                                      f"{config.embedding_dim}")

    def embed(self, frames: np.ndarray) -> np.ndarray:
        """L2-normalised embeddings ``(n, dim)`` of RGB frames ``(n, H, W, 3)``."""
        info = self.model
        parts = []
        for first in range(0, len(frames), BATCH_FRAMES):
            batch = np.asarray(frames[first : first + BATCH_FRAMES])
            if batch.shape[1:3] != (info.height, info.width):
                n, h, w, c = batch.shape
                planes = batch.transpose(0, 3, 1, 2).reshape(n * c, h, w)
                batch = resize_frames(planes, info.height, info.width, np).reshape(
                    n, c, info.height, info.width).transpose(0, 2, 3, 1)
            parts.append(_run(self.session, info, batch))
        out = np.concatenate(parts) if parts else np.zeros((0, info.dim), np.float32)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)

    def describe(self, frames: Any) -> np.ndarray:
        fpb, dim = self.config.frames_per_block, self.config.block_dim
        frames = np.asarray(frames)
        blocks = len(frames) // fpb
        if blocks == 0:
            return np.zeros((0, dim), np.float32)
        frames = frames[: blocks * fpb]
        if frames.ndim == 3:  # a grey reading: the model sees grey in every channel
            frames = np.repeat(frames[..., None], 3, axis=3)
        return self.embed(frames).reshape(blocks, fpb, dim).mean(axis=1).astype(np.float32)
