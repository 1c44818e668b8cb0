"""Index configuration: the settings an index is built with, fixed at creation.

The configuration is stored in the index and compared on every open, because vectors
computed with other settings are not comparable: a mismatch is an error, never a
silent wrong answer.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigMismatchError, IndexCorruptError, RebuildNeededError

#: Decoders an index can be built with (see vsearch.decode).
DECODERS = ("pyav", "decord")

#: Bumped whenever the on-disk layout changes incompatibly, or the vectors would
#: differ for the same settings. 2: streaming decode on the player's timeline (PyAV),
#: the decoder recorded, partial videos.
FORMAT_VERSION = 2

#: Feature kinds and the version of their definition. Bump a version whenever the
#: numbers a kind produces change, so old indexes are refused instead of mis-matched.
#: ``v2`` and ``seed`` are the hand-made kernels; ``onnx`` an image model run per
#: frame (the model itself is pinned by ``model_hash``); ``imported`` features
#: computed by another tool (see :mod:`vsearch.extractors`).
FEATURE_VERSIONS = {"v2": 1, "seed": 1, "onnx": 1, "imported": 1}

#: Feature kinds of older vsearch versions: an index of one is rebuilt (its videos
#: decoded again) into the kind that replaced it.
RETIRED_FEATURES = {"v1": "v2"}

#: Feature kinds computed by the hand-made kernels.
KERNEL_FEATURES = ("v2", "seed")

#: Number of kernel channels in both feature kinds.
NUM_KERNELS = 7


@dataclass(frozen=True, kw_only=True)
class IndexConfig:
    """Settings that determine the vectors of an index.

    Attributes:
        features: ``"v2"`` (rectified, normalised kernel responses pooled on a fine
            grid of cells, see :mod:`vsearch.cells`), ``"seed"`` (the original 7-D
            sums of raw linear responses), ``"onnx"``, ``"imported"``.
        block_seconds: duration of one block descriptor.
        window_blocks: consecutive blocks concatenated into one searchable vector.
        width, height: working resolution every frame is scaled to, whatever its
            aspect ratio (so pixel aspect ratio and resizing do not matter).
        analysis_fps: frames are sampled by timestamp at this fixed rate.
        grid: the coarse grid (rows, cols) of ``v2`` search vectors.
        cells: the fine grid (rows, cols) ``v2`` blocks are stored on; search and
            detail vectors are pooled from it (a multiple of ``grid``).
        decoder: the decoder frames come from (``pyav`` or ``decord``); decoders
            differ in scaling and colour conversion, so an index keeps its own.
        embedding_dim: per-block dimension of learned features (``onnx``,
            ``imported``); 0 for the kernels, whose dimension follows from ``grid``.
        model_hash: ``onnx`` only: BLAKE2b of the model file (and its JSON sidecar);
            a query or ingest with another model is refused.
        model_path: ``onnx`` only: where the model was when the index was created,
            used when none is given; not compared (a moved model is the same model).
    """

    features: str = "v2"
    block_seconds: float = 0.5
    window_blocks: int = 3
    width: int = 128
    height: int = 96
    analysis_fps: float = 10.0
    grid: tuple[int, int] = (4, 4)
    cells: tuple[int, int] = (8, 8)
    decoder: str = "pyav"
    embedding_dim: int = 0
    model_hash: str = ""
    model_path: str = field(default="", compare=False)

    @property
    def extractor(self) -> str:
        """Which extractor computes the block descriptors: kernels, onnx or imported."""
        return "kernels" if self.features in KERNEL_FEATURES else self.features

    @property
    def crop_borders(self) -> bool:
        """Letterbox/pillarbox bars are cut off before description (v2 only)."""
        return self.features == "v2"

    @property
    def pooled(self) -> bool:
        """Blocks are stored as cells and searched as vectors pooled from them (v2)."""
        return self.features == "v2"

    def __post_init__(self) -> None:
        if self.features not in FEATURE_VERSIONS:
            raise ConfigMismatchError(
                f"unknown feature kind {self.features!r}; expected one of {sorted(FEATURE_VERSIONS)}"
            )
        if self.decoder not in DECODERS:
            raise ConfigMismatchError(f"unknown decoder {self.decoder!r}; expected one of {', '.join(DECODERS)}")
        object.__setattr__(self, "grid", tuple(int(g) for g in self.grid))
        object.__setattr__(self, "cells", tuple(int(c) for c in self.cells))
        learned = self.extractor != "kernels"
        if learned and self.embedding_dim < 1:
            raise ConfigMismatchError(f"{self.features} features need their dimension (embedding_dim)")
        if not learned and (self.embedding_dim or self.model_hash):
            raise ConfigMismatchError(f"{self.features} features take no embedding_dim or model")
        if (self.features == "onnx") != bool(self.model_hash):
            raise ConfigMismatchError("a model hash goes with onnx features, and only with them")
        frames = self.block_seconds * self.analysis_fps
        if self.block_seconds <= 0 or self.analysis_fps <= 0:
            raise ConfigMismatchError("block_seconds and analysis_fps must be positive")
        if abs(frames - round(frames)) > 1e-6 or round(frames) < 3:
            raise ConfigMismatchError(
                "block_seconds * analysis_fps must be a whole number of frames, at least 3 "
                f"(got {frames:g})"
            )
        if self.window_blocks < 1:
            raise ConfigMismatchError("window_blocks must be at least 1")
        gh, gw = self.grid
        if len(self.grid) != 2 or gh < 1 or gw < 1:
            raise ConfigMismatchError("grid must be two positive integers")
        ch, cw = self.cells
        if len(self.cells) != 2 or ch % gh or cw % gw:
            raise ConfigMismatchError(f"cells {ch}x{cw} must be a multiple of the grid {gh}x{gw}")
        if self.width < 8 * gw or self.height < 8 * gh or self.width < 4 * cw or self.height < 4 * ch:
            raise ConfigMismatchError(
                f"working resolution {self.width}x{self.height} is too small for a {gh}x{gw} grid of {ch}x{cw} cells"
            )

    @property
    def frames_per_block(self) -> int:
        return int(round(self.block_seconds * self.analysis_fps))

    @property
    def frame_step(self) -> float:
        """Seconds between two analysed frames."""
        return 1.0 / self.analysis_fps

    @property
    def window_seconds(self) -> float:
        return self.window_blocks * self.block_seconds

    @property
    def block_dim(self) -> int:
        """Numbers stored per block (v2: the channels of every cell)."""
        if self.embedding_dim:
            return self.embedding_dim
        if self.features == "seed":
            return NUM_KERNELS
        return NUM_KERNELS * self.cells[0] * self.cells[1]

    @property
    def search_block_dim(self) -> int:
        """Numbers per block in a searched window vector (v2: the channels on the coarse grid)."""
        return NUM_KERNELS * self.grid[0] * self.grid[1] if self.pooled else self.block_dim

    @property
    def dim(self) -> int:
        """Dimension of the window vectors the vector index holds."""
        return self.search_block_dim * self.window_blocks

    @property
    def feature_version(self) -> int:
        return FEATURE_VERSIONS[self.features]

    @property
    def normalization(self) -> str:
        """How window vectors are normalised before they are indexed."""
        return "none" if self.features == "seed" else "l2"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, with the derived values a reader may want to see."""
        data = dataclasses.asdict(self)
        data["grid"] = list(self.grid)
        data["cells"] = list(self.cells)
        if self.extractor == "kernels":  # an index of the kernels is stored as before learned features
            for name in ("embedding_dim", "model_hash", "model_path"):
                del data[name]
        data.update(
            format_version=FORMAT_VERSION,
            feature_version=self.feature_version,
            dim=self.dim,
            normalization=self.normalization,
        )
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "IndexConfig":
        """Rebuild a configuration stored by :meth:`to_dict`, refusing other versions.

        An older format raises :class:`RebuildNeededError` (``vsearch rebuild``
        re-decodes its videos); a newer one :class:`ConfigMismatchError`.
        """
        if not isinstance(data, dict):
            raise IndexCorruptError("the metadata store is damaged: it holds no index settings")
        version = data.get("format_version")
        if isinstance(version, int) and version < FORMAT_VERSION:
            raise RebuildNeededError(f"index format {version} is older than this vsearch's {FORMAT_VERSION}")
        if version != FORMAT_VERSION:
            raise ConfigMismatchError(
                f"index format version {version} is not supported by this vsearch "
                f"(expects {FORMAT_VERSION}); upgrade vsearch or ingest its videos into a new index"
            )
        if data.get("features") in RETIRED_FEATURES:
            raise RebuildNeededError(f"index holds {data['features']} features, which this vsearch replaced with "
                                     f"{RETIRED_FEATURES[data['features']]}")
        fields = {f.name for f in dataclasses.fields(cls)}
        config = cls(**{k: v for k, v in data.items() if k in fields})
        if data.get("feature_version") != config.feature_version:
            raise ConfigMismatchError(
                f"index was built with {config.features} features version "
                f"{data.get('feature_version')}, this vsearch computes version "
                f"{config.feature_version}; ingest its videos into a new index"
            )
        return config

    def differences(self, other: "IndexConfig") -> list[str]:
        """Human-readable list of settings that differ from ``other``."""
        out = []
        for item in dataclasses.fields(self):
            mine, theirs = getattr(self, item.name), getattr(other, item.name)
            if item.compare and mine != theirs:
                if item.name == "model_hash":
                    out.append(f"model: index was built with {other.model_path or 'another model'} "
                               f"(hash {theirs[:12]}), this model {self.model_path or ''} has hash {mine[:12]}")
                else:
                    out.append(f"{item.name}: index has {theirs!r}, requested {mine!r}")
        return out
