"""Vector store (FAISS): window vectors under stable 64-bit ids.

The FAISS file is derived data: it can always be rebuilt from the metadata store.
It is written atomically (temporary file, fsync, rename), so a reader or a crash
only ever sees a complete file. When ``faiss-gpu`` is installed and a GPU is
present, searches run on a GPU copy; the file on disk is always a CPU index.
"""

from __future__ import annotations

import os
import re
import tempfile

import faiss
import numpy as np

from ..errors import ConfigMismatchError, IndexCorruptError, IndexTypeError
from ..windows import WINDOW_BITS
from .matches import Matches

FILENAME = "vectors.faiss"

DEFAULT_INDEX_TYPE = "Flat"

#: Below this many vectors exact search is fast enough; ``auto`` switches to IVF above.
AUTO_FLAT_LIMIT = 250_000


def ivf_lists(n_vectors: int) -> int:
    """IVF list count for a library size: about 2 sqrt(n), a power of two, 64..65536."""
    return int(min(max(2 ** round(np.log2(2 * np.sqrt(max(n_vectors, 1)))), 64), 65536))


#: From this many vectors ``auto`` keeps compact codes and re-ranks them exactly.
AUTO_COMPACT_LIMIT = 2_000_000


def compact_index_type(n_vectors: int, dim: int) -> str:
    """The compact type for ``n_vectors`` windows of dimension ``dim``: PCA to about
    ``dim / 4`` dimensions (80 at 336) with a random rotation that spreads the variance
    over the sub-quantisers, IVF lists, and 4-bit fast-scan product-quantised codes, 2
    dimensions a sub-quantiser (20 bytes at 336, 28 with the id; 31 measured with the
    lists' padding). IVF lists keep the ids, so videos are removed in place.

    A learned OPQ rotation instead of PCA did not finish training in 6 minutes on
    2 cores (PCA: under a second), so it was left out. Fast-scan lists cannot be
    memory-mapped: a mapped load reads them (small: the codes are compact).
    """
    reduced = min(96, max(8, dim // 4 // 8 * 8))
    return f"PCAR{reduced},IVF{ivf_lists(n_vectors)},PQ{reduced // 2}x4fs"


def auto_index_type(n_vectors: int, dim: int = 336) -> str:
    """The FAISS type ``auto`` picks: exact Flat for small libraries, IVF with float16
    codes beyond, compact codes (:func:`compact_index_type`) for the largest.

    Float16 halves memory and is nearly lossless; 8-bit codes (SQ8) take half again
    but their error caps recall (measured at 10^6 windows: 0.98 of the exact top-10
    only at nprobe 256, 157 ms a clip, against nprobe 8 and 11 ms with float16).
    Past ``AUTO_COMPACT_LIMIT`` float16 scans too much memory per query (1.1 GB a clip
    at 10^7); compact codes find candidates and the query re-ranks them against the
    stored descriptors (:mod:`vsearch.store.rerank`).
    """
    if n_vectors < AUTO_FLAT_LIMIT:
        return DEFAULT_INDEX_TYPE
    if n_vectors < AUTO_COMPACT_LIMIT:
        return f"IVF{ivf_lists(n_vectors)},SQfp16"
    return compact_index_type(n_vectors, dim)


def is_fast_scan(ivf) -> bool:
    """Whether an IVF index keeps 4-bit fast-scan codes (in blocks: no memory mapping)."""
    return isinstance(faiss.downcast_index(ivf), faiss.IndexIVFFastScan)


def default_nprobe(ivf) -> int:
    """Lists probed per search: enough for >= 0.98 recall of the exact top-10.

    Measured with tools/bench_query.py at dimension 336: float16 or float32 codes need
    8 of 2,048 lists at 10^6 windows and 16 of 8,192 at 10^7 (0.989 both), hence 16
    lists, or nlist/512 past 8,192. Lossy codes (SQ8, PQ) need far more (SQ8: 256 of
    2,048 for 0.98), hence nlist/8. Capped at 256.
    """
    ivf = faiss.downcast_index(ivf)
    if is_fast_scan(ivf):
        return int(min(COMPACT_NPROBE, ivf.nlist))
    wanted = ivf.nlist // 512 if _lossless_ivf(ivf) else ivf.nlist // 8
    return int(min(max(wanted, 16), 256, ivf.nlist))


#: Lists a compact (fast-scan) index probes. Measured with ``tools.bench_query --clips``
#: (60 clips, real library + distractors, 2 cores): at 10^7 windows, 32 lists missed one
#: clip exact search finds (recall@1 0.917 vs 0.933) at p50 9.9 ms; 64 lists match exact
#: search at p50 10.7 ms; twice the candidates instead cost more (14.9 ms) and did not.
COMPACT_NPROBE = 64


def _lossless_ivf(ivf) -> bool:
    ivf = faiss.downcast_index(ivf)
    return isinstance(ivf, faiss.IndexIVFFlat) or (
        isinstance(ivf, faiss.IndexIVFScalarQuantizer)
        and ivf.sq.qtype in (faiss.ScalarQuantizer.QT_fp16, faiss.ScalarQuantizer.QT_bf16))


#: k-means wants this many training points per centroid (FAISS warns below it).
MIN_POINTS_PER_CENTROID = 39


def training_needs(index_type: str) -> tuple[int, str]:
    """Training vectors a factory type needs for well-placed centroids, and the part
    that needs them (``(0, "")`` for Flat).

    An IVF with ``n`` lists needs ``39 n``; a product quantizer with ``b``-bit codes
    ``39 * 2^b`` (FAISS's own k-means rule of thumb, which it prints as a warning).
    """
    needs = [(0, "")]
    for part in (p.strip() for p in index_type.split(",")):
        if match := re.fullmatch(r"IVF(\d+)(?:_.*)?", part):
            needs.append((MIN_POINTS_PER_CENTROID * int(match.group(1)), part))
        elif match := re.fullmatch(r"O?PQ(\d+)(?:x(\d+))?(?:fs|np)*", part):
            needs.append((MIN_POINTS_PER_CENTROID * 2 ** int(match.group(2) or 8), part))
    return max(needs)


def check_trainable(index_type: str, n_vectors: int) -> None:
    """Refuse a factory type that ``n_vectors`` cannot train well, saying what would work."""
    needed, part = training_needs(index_type)
    if n_vectors >= needed:
        return
    lists = 2 ** int(np.floor(np.log2(n_vectors / MIN_POINTS_PER_CENTROID))) if n_vectors >= 4 * 39 else 0
    instead = f"IVF{lists},Flat or Flat" if lists >= 4 else "Flat"
    raise IndexTypeError(
        f"{part} needs at least {needed:,} training vectors; this index has {n_vectors:,}; use {instead}"
    )


# Removing a video must work in place, which rules out graph indexes such as HNSW.
_REMOVABLE_PREFIXES = ("Flat", "IVF", "PCA", "OPQ", "SQ", "PQ")


def _extract_ivf(index: faiss.Index):
    """The IVF part of an index (through a PCA/OPQ pre-transform), or None."""
    try:
        return faiss.extract_index_ivf(index)
    except RuntimeError:
        return None


def faiss_reason(exc: BaseException) -> str:
    """FAISS's own words from one of its errors, without the C++ signature and source line."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    found = re.search(r"\.(?:cpp|h|cu):\d+: (?:Error: '.*?' failed: )?(.*)$", text)
    return (found.group(1) if found else text)[:200]


def _gpu_count() -> int:
    get = getattr(faiss, "get_num_gpus", None)
    return int(get()) if get is not None else 0


class VectorStore:
    """FAISS vectors under stable 64-bit ids (video id << 32 | window number).

    IVF indexes hold the ids themselves. Every other type sits in an
    ``IndexIDMap2``: its storage is compacted on removal, and the map is compacted
    with it. (An id map around an IVF index goes wrong after a removal: the lists
    keep the old sequential numbers while the map shifts, so hits name other windows.)
    """

    def __init__(self, index: faiss.Index) -> None:
        self.index = index
        self._gpu_index: faiss.Index | None = None
        ivf = self._ivf()
        if ivf is not None:
            ivf.nprobe = default_nprobe(ivf)

    def _ivf(self):
        return None if isinstance(self.index, faiss.IndexIDMap2) else _extract_ivf(self.index)

    @classmethod
    def create(cls, dim: int, index_type: str = DEFAULT_INDEX_TYPE) -> "VectorStore":
        """An empty store of a FAISS factory type (``Flat``, ``IVF1024,Flat``, ``IVF4096,SQfp16``...)."""
        if (not index_type.startswith(_REMOVABLE_PREFIXES)
                or any(word in index_type for word in ("HNSW", "IDMap", "Refine", "RFlat"))):
            raise IndexTypeError(
                f"index type {index_type!r} is not supported: use Flat or an IVF factory string "
                "(graph and refine indexes cannot remove videos in place)"
            )
        try:
            inner = faiss.index_factory(dim, index_type, faiss.METRIC_L2)
        except RuntimeError as exc:
            raise IndexTypeError(f"invalid index type {index_type!r}: {faiss_reason(exc)}") from None
        return cls(inner if _extract_ivf(inner) is not None else faiss.IndexIDMap2(inner))

    @property
    def is_trained(self) -> bool:
        return bool(self.index.is_trained)

    def training_size(self) -> int:
        """How many vectors training can use: faiss k-means samples at most 256 per
        list; 64 per list is plenty (it warns below 39), and PQ/SQ need fewer."""
        ivf = self._ivf()
        return max(64 * ivf.nlist, 100_000) if ivf is not None else 100_000

    def train(self, vectors: np.ndarray) -> None:
        """Train a quantizer-based index (no-op for Flat)."""
        if self.is_trained:
            return
        ivf = self._ivf()
        on_gpu = ivf is not None and _gpu_count() > 0
        if on_gpu:
            # k-means assignment (nearly all of training) runs on the GPUs; the
            # trained index stays a CPU index.
            # (The local keeps the GPU index alive: faiss holds only a raw pointer.)
            clustering = faiss.index_cpu_to_all_gpus(faiss.IndexFlatL2(ivf.d))
            ivf.clustering_index = clustering
        if ivf is not None:
            # Sizes are checked before (check_trainable; auto sizes fit), so FAISS's
            # own warning, printed on stderr by C++, would only be noise.
            ivf.cp.min_points_per_centroid = 1
            quantizer = getattr(faiss.downcast_index(ivf), "pq", None)
            if quantizer is not None:  # product codes train their own k-means
                quantizer.cp.min_points_per_centroid = 1
        try:
            self.index.train(np.ascontiguousarray(vectors, dtype=np.float32))
        except RuntimeError as exc:
            raise IndexTypeError(
                f"cannot train the index on {len(vectors)} vectors ({faiss_reason(exc)}); "
                "use a smaller IVF list count or Flat"
            ) from None
        finally:
            if on_gpu:
                ivf.clustering_index = None

    @property
    def uses_gpu(self) -> bool:
        """Whether searches (and IVF training) run on GPUs: faiss-gpu and a device present."""
        return _gpu_count() > 0

    @classmethod
    def load(cls, path: str, *, mapped: bool = False) -> "VectorStore":
        """Read a saved index. ``mapped`` maps the file instead of reading it:
        opening a big index for queries costs nothing up front, pages come in as
        searched. A mapped index must not be modified; load it again to write."""
        flags = 0
        if mapped:
            try:
                with open(path, "rb") as handle:
                    magic = handle.read(4)
            except OSError as exc:
                raise IndexCorruptError(f"{path}: cannot read vector index ({exc.strerror})") from None
            # An id map around flat codes maps with IO_FLAG_MMAP_IFC (faiss >= 1.8); IVF
            # lists map only with IO_FLAG_MMAP (read-only OnDiskInvertedLists).
            flags = getattr(faiss, "IO_FLAG_MMAP_IFC", 0) if magic == b"IxM2" else faiss.IO_FLAG_MMAP
        try:
            index = faiss.read_index(path, flags)
        except RuntimeError as exc:
            raise IndexCorruptError(f"{path}: cannot read vector index ({faiss_reason(exc)})") from None
        if type(index) is faiss.Index:  # read_index usually hands back the concrete class already
            index = faiss.downcast_index(index)
        if isinstance(index, faiss.IndexIDMap2):
            if _extract_ivf(index.index) is not None:
                raise IndexCorruptError(f"{path}: IVF index inside an id map (written by vsearch 0.1.0), "
                                        "whose ids go wrong after a removal")
        elif _extract_ivf(index) is None:
            raise IndexCorruptError(f"{path}: vector index has no stable ids")
        return cls(index)

    @property
    def exact_distances(self) -> bool:
        """Whether searches give (nearly) exact distances: Flat codes, or IVF lists of
        float32/float16 codes without a pre-transform. Otherwise (PQ, OPQ/PCA, SQ8)
        the distances are approximate and a query re-ranks the candidates."""
        if isinstance(self.index, faiss.IndexIDMap2):
            return isinstance(faiss.downcast_index(self.index.index), faiss.IndexFlat)
        return not isinstance(self.index, faiss.IndexPreTransform) and _lossless_ivf(self._ivf())

    @property
    def dim(self) -> int:
        return int(self.index.d)

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    def ids(self) -> np.ndarray:
        """All ids held, in storage order (list by list for IVF)."""
        if isinstance(self.index, faiss.IndexIDMap2):
            return faiss.vector_to_array(self.index.id_map).astype(np.int64, copy=False)
        lists = self._ivf().invlists
        parts = [np.zeros(0, np.int64)]
        for number in range(lists.nlist):
            size = lists.list_size(number)
            if size:
                pointer = lists.get_ids(number)
                parts.append(faiss.rev_swig_ptr(pointer, size).astype(np.int64, copy=True))
                lists.release_ids(number, pointer)
        return np.concatenate(parts)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        if not self.is_trained:
            raise ConfigMismatchError("the vector index is not trained; run 'vsearch rebuild' to train it")
        self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.ascontiguousarray(ids, dtype=np.int64))
        self._gpu_index = None

    def remove_videos(self, video_ids: list[int]) -> int:
        """Remove every window of the given videos; returns how many were removed."""
        removed = 0
        for video_id in video_ids:
            lo = int(video_id) << WINDOW_BITS
            removed += int(self.index.remove_ids(faiss.IDSelectorRange(lo, lo + (1 << WINDOW_BITS))))
        if removed:
            self._gpu_index = None
        return removed

    def search(self, vectors: np.ndarray, k: int) -> Matches:
        """The ``k`` nearest windows of each vector (squared L2 distances and ids)."""
        if self.ntotal == 0 or len(vectors) == 0:
            return Matches(np.zeros((len(vectors), 0), np.float32), np.zeros((len(vectors), 0), np.int64))
        index = self._searchable()
        dist, ids = index.search(np.ascontiguousarray(vectors, dtype=np.float32), min(k, self.ntotal))
        return Matches(dist, ids)

    def _searchable(self) -> faiss.Index:
        # Clone to the GPU only when faiss-gpu and a device are present; CPU otherwise.
        if _gpu_count() == 0:
            return self.index
        if self._gpu_index is None:
            self._gpu_index = faiss.index_cpu_to_all_gpus(self.index)
        return self._gpu_index

    def describe(self) -> str:
        """FAISS class of the index, e.g. ``IndexFlatL2`` or ``IndexIVFScalarQuantizer``."""
        inner = self.index.index if isinstance(self.index, faiss.IndexIDMap2) else self.index
        return type(faiss.downcast_index(inner)).__name__

    @property
    def layout(self) -> str:
        """How ids are kept: ``IDMap2`` (a map beside the vectors) or ``IVF`` (in the lists)."""
        return "IDMap2" if isinstance(self.index, faiss.IndexIDMap2) else "IVF"

    def save(self, path: str) -> None:
        """Write atomically: a reader sees the old file or the new one, never half."""
        directory = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(prefix=".vectors-", suffix=".tmp", dir=directory)
        os.close(fd)
        try:
            faiss.write_index(self.index, tmp)
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
