"""The command-line contract other tools depend on, exercised as a user would."""

from __future__ import annotations

import json
import shutil

from .conftest import LIBRARY_SEEDS, run_cli


def test_full_cycle_and_json_contracts(media, clips, tmp_path):
    index = str(tmp_path / "ix")
    lib = [str(media[f"lib{s}"]) for s in LIBRARY_SEEDS]
    proc = run_cli("ingest", *lib, "--index", index, check=True)
    assert "3 added" in proc.stdout

    clip, source, start = clips["exact"]
    proc = run_cli("query", str(clip), str(clips["negative"][0]), "--index", index, "--json", "-k", "3", check=True)
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [line["query"] for line in lines] == [str(clip), str(clips["negative"][0])]
    hit = lines[0]["hits"][0]
    assert set(hit) >= {"video", "start", "end", "query_start", "query_end", "score", "distance", "speed",
                        "mirrored", "inset", "rotation", "ambiguous"}
    assert hit["video"] == str(source) and abs(hit["start"] - start) <= 0.15 and 0 <= hit["score"] <= 1
    assert hit["speed"] == 1.0 and hit["mirrored"] is False and hit["inset"] is False and hit["rotation"] == 0
    assert lines[1]["hits"] == [] and lines[0]["duration"] > 4.5
    for bad in ("fast", "1,9"):
        proc = run_cli("query", str(clip), "--index", index, "--speeds", bad)
        assert proc.returncode != 0 and proc.stderr.count("\n") == 1 and "speeds" in proc.stderr
    csv_rows = run_cli("query", str(clip), "--index", index, "--csv", "--speeds", "1", "--no-mirrored",
                       "--no-inset", "--no-rotations", check=True).stdout.splitlines()
    assert csv_rows[0].endswith("speed,mirrored,inset,rotation,ambiguous") and str(source) in csv_rows[1]

    stats = json.loads(run_cli("stats", "--index", index, "--json", check=True).stdout)
    assert stats["videos"] == 3 and stats["vectors"] == 90 and stats["dim"] == 336
    assert stats["duration_s"] > 47 and stats["bytes"] > 0 and "Flat" in stats["index_type"]

    listed = json.loads(run_cli("list", "--index", index, "--json", check=True).stdout)
    assert sorted(v["path"] for v in listed) == sorted(lib)
    assert all({"id", "path", "duration_s", "blocks"} <= set(v) for v in listed)

    run_cli("remove", lib[0], "--index", index, check=True)
    listed = json.loads(run_cli("list", "--index", index, "--json", check=True).stdout)
    assert sorted(v["path"] for v in listed) == sorted(lib[1:])
    assert run_cli("verify", "--index", index).returncode == 0


def test_ingest_reports_bad_files_and_exits_non_zero(media, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(media["extra"], folder / "good.mp4")
    (folder / "notes.txt").write_text("not a video")  # not a video extension: ignored in folders
    (folder / "broken.mp4").write_bytes(b"\x00\x01garbage" * 100)
    index = str(tmp_path / "ix")
    proc = run_cli("ingest", str(folder), "--index", index)
    assert proc.returncode == 2
    assert "broken.mp4" in proc.stderr and "1 added, 1 failed" in proc.stdout
    listed = json.loads(run_cli("list", "--index", index, "--json", check=True).stdout)
    assert [v["path"].endswith("good.mp4") for v in listed] == [True]


def test_errors_are_one_line_without_traceback(clips, tmp_path):
    proc = run_cli("query", str(clips["exact"][0]), "--index", str(tmp_path / "missing"))
    assert proc.returncode != 0
    assert proc.stderr.count("\n") == 1 and "no vsearch index" in proc.stderr and "Traceback" not in proc.stderr


def test_index_defaults_to_env_variable(media, tmp_path):
    env = {"VSEARCH_INDEX": str(tmp_path / "from-env")}
    run_cli("ingest", str(media["extra"]), env=env, check=True)
    assert json.loads(run_cli("stats", "--json", env=env, check=True).stdout)["videos"] == 1


def test_version():
    proc = run_cli("--version", check=True)
    assert proc.stdout.startswith("vsearch ")


def test_index_settings_are_fixed_at_creation(media, tmp_path):
    index = str(tmp_path / "ix")
    run_cli("ingest", str(media["extra"]), "--index", index, "--window", "5", "--size", "96x72", check=True)
    stats = json.loads(run_cli("stats", "--index", index, "--json", check=True).stdout)
    assert (stats["config"]["window_blocks"], stats["config"]["width"], stats["config"]["height"]) == (5, 96, 72)
    assert stats["dim"] == 5 * 7 * 16
    # Repeating a setting the index has is fine; another value is refused with a clear message.
    assert run_cli("ingest", str(media["lib11"]), "--index", index, "--window", "5").returncode == 0
    proc = run_cli("ingest", str(media["lib12"]), "--index", index, "--block", "1.0")
    assert proc.returncode != 0 and "block_seconds" in proc.stderr and "cannot be changed" in proc.stderr
    assert json.loads(run_cli("stats", "--index", index, "--json", check=True).stdout)["videos"] == 2


def test_verify_is_a_pure_check_and_other_commands_repair(media, tmp_path):
    index = tmp_path / "ix"
    run_cli("ingest", str(media["extra"]), "--index", str(index), check=True)
    (index / "vectors.faiss").unlink()  # as if a crash lost the derived file
    proc = run_cli("verify", "--index", str(index))
    assert proc.returncode == 1 and "INCONSISTENT" in proc.stdout and "missing" in proc.stdout
    assert not (index / "vectors.faiss").exists()
    run_cli("stats", "--index", str(index), check=True)  # any other command repairs
    assert run_cli("verify", "--index", str(index)).returncode == 0


def test_an_index_keeps_its_decoder(media, clips, tmp_path):
    index = str(tmp_path / "ix")
    lib = str(media["lib12"])
    run_cli("ingest", lib, "--index", index, check=True)
    clip = str(clips["exact"][0])
    for args in (("query", clip, "--decoder", "decord"), ("ingest", str(media["lib13"]), "--decoder", "decord")):
        proc = run_cli(*args, "--index", index)
        assert proc.returncode == 5, proc.stderr
        assert proc.stderr.count("\n") == 1 and "decoder" in proc.stderr and "pyav" in proc.stderr
    assert run_cli("query", clip, "--decoder", "pyav", "--index", index, check=True).stdout.count(lib) == 1
    stats = run_cli("stats", "--index", index, check=True).stdout
    assert "decoder    pyav (index format 2)" in stats


def test_an_index_built_with_decord_answers_through_decord(media, clips, tmp_path):
    index = str(tmp_path / "ix")
    clip, source, start = clips["exact"]
    run_cli("ingest", str(source), "--index", index, "--decoder", "decord", check=True)
    hit = json.loads(run_cli("query", str(clip), "--index", index, "--json", check=True).stdout)["hits"][0]
    assert hit["video"] == str(source) and abs(hit["start"] - start) <= 0.1
    stats = json.loads(run_cli("stats", "--index", index, "--json", check=True).stdout)
    assert stats["config"]["decoder"] == "decord"
