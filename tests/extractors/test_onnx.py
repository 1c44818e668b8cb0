"""ONNX features end to end: a tiny model built here, run by ONNX Runtime over generated videos."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from tests.conftest import LIBRARY_SEEDS, run_cli  # noqa: E402
from tests.extractors.tiny_model import make_tiny_model  # noqa: E402
from vsearch import VideoIndex  # noqa: E402
from vsearch.device import resolve_device  # noqa: E402
from vsearch.errors import ConfigMismatchError, VsearchError  # noqa: E402
from vsearch.extractors import create_extractor, feature_settings  # noqa: E402
from vsearch.extractors.onnx import THREADS_ENV, default_threads, open_model  # noqa: E402
from vsearch.config import IndexConfig  # noqa: E402


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {"tiny": make_tiny_model(root / "tiny.onnx"), "other": make_tiny_model(root / "other.onnx", seed=1)}


@pytest.fixture(scope="session")
def onnx_index(media, models, tmp_path_factory):
    """The three library videos indexed with the tiny model's features."""
    path = tmp_path_factory.mktemp("onnx") / "ix"
    with VideoIndex.open(path, settings=feature_settings(f"onnx:{models['tiny']}"), create=True, device="cpu") as ix:
        results = ix.add([media[f"lib{s}"] for s in LIBRARY_SEEDS])
    assert [r.status for r in results] == ["added"] * 3, results
    return path


def test_index_records_the_model(onnx_index, models):
    with VideoIndex.open(onnx_index, device="cpu") as ix:
        config, stats = ix.config, ix.stats()
    assert config.features == "onnx" and config.embedding_dim == 24
    assert (config.width, config.height) == (64, 48)  # the model's input size is the working size
    assert stats.dim == 24 * config.window_blocks and stats.videos == 3 and stats.vectors > 0
    stored = stats.config
    assert stored["model_path"] == str(models["tiny"]) and len(stored["model_hash"]) == 32


@pytest.mark.parametrize("name", ["exact", "reencoded_small"])
def test_query_finds_the_source(onnx_index, clips, name):
    clip, source, start = clips[name]
    with VideoIndex.open(onnx_index, device="cpu") as ix:
        hits = ix.query(clip, k=3, min_score=0.5).hits
    assert hits and hits[0].video == str(source)
    assert abs(hits[0].start - start) < 0.3


def test_block_is_the_mean_of_its_frame_embeddings(onnx_index):
    with VideoIndex.open(onnx_index, device="cpu") as ix:
        extractor = ix.extractor
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 256, size=(11, 48, 64, 3), dtype=np.uint8)
    blocks = extractor.describe(frames)
    assert blocks.shape == (2, 24)  # 11 frames: two blocks of five, one frame left over
    per_frame = extractor.embed(frames[:10])
    np.testing.assert_allclose(np.linalg.norm(per_frame, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(blocks, per_frame.reshape(2, 5, 24).mean(axis=1), rtol=1e-5, atol=1e-6)
    # Batching does not change the numbers: 40 frames go in two model calls.
    many = rng.integers(0, 256, size=(40, 48, 64, 3), dtype=np.uint8)
    np.testing.assert_allclose(extractor.embed(many)[35:], extractor.embed(many[35:]), rtol=1e-4, atol=1e-5)


def test_another_model_is_refused_and_the_index_is_unchanged(onnx_index, models, media, clips):
    with VideoIndex.open(onnx_index, device="cpu") as ix:
        before = ix.stats().vectors
        with pytest.raises(ConfigMismatchError, match="another model"):
            ix.use_features(f"onnx:{models['other']}")
        with pytest.raises(ConfigMismatchError):
            ix.use_features("v1")
    with pytest.raises(ConfigMismatchError, match="hash"):
        VideoIndex.open(onnx_index, settings=feature_settings(f"onnx:{models['other']}"), create=True, device="cpu")
    proc = run_cli("query", str(clips["exact"][0]), "--index", str(onnx_index), "--features", f"onnx:{models['other']}")
    assert proc.returncode == 5 and len(proc.stderr.strip().splitlines()) == 1 and "another model" in proc.stderr
    proc = run_cli("ingest", str(media["extra"]), "--index", str(onnx_index), "--features", f"onnx:{models['other']}")
    assert proc.returncode == 5 and "hash" in proc.stderr
    with VideoIndex.open(onnx_index, device="cpu") as ix:
        assert ix.stats().vectors == before


def test_moved_model_is_found_by_its_hash(onnx_index, models, clips, tmp_path):
    moved = tmp_path / "renamed.onnx"
    moved.write_bytes(models["tiny"].read_bytes())
    config = IndexConfig(**{**feature_settings(f"onnx:{models['tiny']}"), "model_path": str(tmp_path / "gone.onnx")})
    with pytest.raises(ConfigMismatchError, match="--features onnx:PATH"):
        create_extractor(config, resolve_device("cpu"))
    assert create_extractor(config, resolve_device("cpu"), model=moved).model.dim == 24
    with VideoIndex.open(onnx_index, device="cpu") as ix:
        ix.use_features(f"onnx:{moved}")
        assert ix.query(clips["exact"][0], k=1, min_score=0.5).hits[0].video == str(clips["exact"][1])


def test_cli_ingest_and_query(media, models, clips, tmp_path):
    index = str(tmp_path / "ix")
    run_cli("ingest", str(media["lib12"]), "--index", index, "--features", f"onnx:{models['tiny']}", check=True)
    stats = run_cli("stats", "--index", index, check=True).stdout
    assert "onnx" in stats and str(models["tiny"]) in stats
    out = run_cli("query", str(clips["exact"][0]), "--index", index, "--json", "--min-score", "0.5", check=True)
    hit = json.loads(out.stdout)["hits"][0]
    assert hit["video"] == str(media["lib12"]) and abs(hit["start"] - 5.27) < 0.3


def test_sidecar_and_metadata_give_size_and_normalisation(tmp_path):
    free = make_tiny_model(tmp_path / "free.onnx", fixed_size=False)
    with pytest.raises(VsearchError, match="free.json"):
        open_model(free, resolve_device("cpu"))
    (tmp_path / "free.json").write_text(json.dumps({"input_size": [40, 56], "mean": [0.5, 0.5, 0.5]}))
    _, info = open_model(free, resolve_device("cpu"))
    assert (info.height, info.width, info.mean, info.std[0]) == (40, 56, (0.5, 0.5, 0.5), 0.229)
    tagged = make_tiny_model(tmp_path / "tagged.onnx", metadata={"std": "[0.25, 0.25, 0.25]"})
    _, info = open_model(tagged, resolve_device("cpu"))
    assert info.std == (0.25, 0.25, 0.25) and (info.height, info.width) == (48, 64)
    # The sidecar is part of the model: editing it changes the hash the index pins.
    before = feature_settings(f"onnx:{free}")["model_hash"]
    (tmp_path / "free.json").write_text(json.dumps({"input_size": [40, 56]}))
    assert feature_settings(f"onnx:{free}")["model_hash"] != before
    (tmp_path / "broken.onnx").write_bytes(b"not a model")
    with pytest.raises(VsearchError, match="not a usable ONNX model"):
        open_model(tmp_path / "broken.onnx", resolve_device("cpu"))


def test_runtime_threads_leave_cores_to_the_decoders(monkeypatch):
    import os

    monkeypatch.delenv(THREADS_ENV, raising=False)
    assert 1 <= default_threads() <= max(1, (os.cpu_count() or 2) // 2)
    monkeypatch.setenv(THREADS_ENV, "3")
    assert default_threads() == 3


def test_without_the_extra_the_error_names_it(models, media, tmp_path):
    code = ("import sys; sys.modules['onnxruntime'] = None; sys.argv = ['vsearch', *sys.argv[1:]];"
            "from vsearch.cli import run; run()")
    proc = subprocess.run([sys.executable, "-c", code, "ingest", str(media["lib11"]), "--index", str(tmp_path / "ix"),
                           "--features", f"onnx:{models['tiny']}"], capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.strip() == 'vsearch: error: ONNX features need onnxruntime: pip install "vsearch[onnx]"'
    assert not (tmp_path / "ix").exists()


def test_a_model_gets_the_kernels_readings_turned_and_inset(clips, media, tmp_path):
    """An RGB model is read turned by quarter turns and through a picture-in-picture
    inset, as the kernels are (cut from RGB frames decoded larger)."""
    from tools.support import cut_clip, picture_in_picture
    from vsearch.search.clip import QueryClip, Reading

    _, source, start = clips["exact"]
    turned = cut_clip(source, tmp_path / "turned.mp4", start=start, duration=5.0, crf=20, vf="transpose=1")
    pip = picture_in_picture(source, media["negative"], tmp_path / "pip.mp4", start=start, duration=6.0, size=0.6)
    model = make_tiny_model(tmp_path / "wide.onnx", size=(96, 128))  # insets are found at the kernels' size
    settings = feature_settings(f"onnx:{model}")
    with VideoIndex.open(tmp_path / "ix", settings=settings, create=True, device="cpu") as index:
        assert [r.status for r in index.add([source, media["lib11"]])] == ["added", "added"]
        read = QueryClip(pip, index.config, index.device, mirrored=True, inset=True, rotations=True,
                         extractor=index.extractor)
        assert read.parts == ("whole", "inset") and Reading(inset=1) in read.readings
        assert {Reading(rotation=turns) for turns in (1, 2, 3)} <= set(read.readings)
        assert read.frames(Reading(inset=1)).shape[1:] == (index.config.height, index.config.width, 3)
        for reading in (Reading(inset=1), Reading(rotation=1)):
            windows = read.windows([reading])
            assert len(windows.vectors) and windows.vectors.shape[1] == index.config.dim
        turned_back = QueryClip(turned, index.config, index.device, rotations=True, extractor=index.extractor)
        plain = QueryClip(clips["exact"][0], index.config, index.device, extractor=index.extractor)
        # Turned back, the turned copy describes as the original does (a toy model places
        # footage in time too poorly to test the search itself with).
        back = turned_back.windows([Reading(rotation=1)]).vectors
        original = plain.windows([Reading()]).vectors
        count = min(len(back), len(original))
        assert float(np.einsum("ij,ij->i", back[:count], original[:count]).mean()) > 0.95
