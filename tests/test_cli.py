"""The command-line contract other tools depend on, exercised as a user would."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import LIBRARY_SEEDS, run_cli


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
    assert csv_rows[0].endswith("speed,mirrored,inset,rotation,part,crop,ambiguous,status,reason") and str(source) in csv_rows[1]

    stats = json.loads(run_cli("stats", "--index", index, "--json", check=True).stdout)
    # 30 windows of the whole frame per video, and 10 of each of 9 regions (every third window)
    assert stats["videos"] == 3 and stats["vectors"] == 3 * (30 + 9 * 10) and stats["dim"] == 336
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


def test_ingest_summary_says_why_files_were_skipped(media, tmp_path):
    index, copy = str(tmp_path / "ix"), tmp_path / "copy of extra.mp4"
    shutil.copy(media["extra"], copy)
    run_cli("ingest", str(media["extra"]), "--index", index, check=True)
    again = run_cli("ingest", str(media["extra"]), str(copy), "--index", index, env={"COLUMNS": ""}, check=True).stdout
    assert again.startswith(f"2 skipped (already indexed; same content as {media['extra']}); index"), again
    results = json.loads(run_cli("ingest", str(copy), "--index", index, "--json", check=True).stdout)["results"]
    assert results[0]["reason"] == f"same content as {media['extra']}"


def test_list_of_an_empty_index_says_so(media, tmp_path):
    index = tmp_path / "ix"
    run_cli("ingest", str(media["extra"]), "--index", str(index), check=True)
    run_cli("remove", str(media["extra"]), "--index", str(index), check=True)
    proc = run_cli("list", "--index", str(index), check=True)
    assert proc.stdout == f"no videos in {index} (add some with 'vsearch ingest')\n"
    assert json.loads(run_cli("list", "--index", str(index), "--json", check=True).stdout) == []


def test_query_quiet_prints_only_clips_with_hits(built_index, clips, tmp_path):
    clip, negative = str(clips["exact"][0]), str(clips["negative"][0])
    loud = run_cli("query", clip, negative, "--index", str(built_index), "--report", str(tmp_path / "r.html"))
    assert loud.returncode == 0 and f"{negative} (5.00 s): no hits" in loud.stdout and "report:" in loud.stderr
    for flag in ("-q", "--quiet"):
        quiet = run_cli("query", clip, negative, "--index", str(built_index), flag, "--report", str(tmp_path / "r.html"))
        assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
        assert quiet.stdout.startswith(f"{clip} (5.00 s): 1 hit") and negative not in quiet.stdout


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
    assert proc.returncode == 1 and proc.stdout.startswith("repairable: ") and "missing" in proc.stdout
    assert f"vsearch verify --repair --index {index}" in " ".join(proc.stdout.split())
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


def test_ingest_of_a_missing_path_fails_in_one_line_and_creates_nothing(media, tmp_path):
    index = tmp_path / "ix"
    proc = run_cli("ingest", str(tmp_path / "no" / "such" / "dir"), "--index", str(index))
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1
    assert "no such file or folder" in proc.stderr and "no/such/dir" in proc.stderr
    assert not index.exists()
    # With a real file beside it: still refused before anything is written.
    proc = run_cli("ingest", str(media["extra"]), str(tmp_path / "typo.mp4"), "--index", str(index))
    assert proc.returncode == 1 and "typo.mp4" in proc.stderr and not index.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = run_cli("ingest", str(empty), "--index", str(index))
    assert proc.returncode == 1 and "no video files" in proc.stderr and not index.exists()


def test_bad_option_values_get_one_line_not_a_box(clips, tmp_path):
    for args in (("query", str(clips["exact"][0]), "-k", "0"), ("query", str(clips["exact"][0]), "--min-score", "2"),
                 ("ingest", "--bogus", "x"), ("nonsense",), ("query",)):
        proc = run_cli(*args, "--index", str(tmp_path / "ix"))
        assert proc.returncode == 1, (args, proc.stderr)
        assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("vsearch: error: "), proc.stderr
        assert "╭" not in proc.stderr and "│" not in proc.stderr
        assert "--help" in proc.stderr or "give query clips" in proc.stderr, proc.stderr


def test_exit_codes_are_the_documented_ones():
    """The README's table is a contract: each code means what it says there."""
    import re
    from pathlib import Path

    from vsearch import cli, errors

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    table = dict(re.findall(r"^\| (\d+) \| (.+) \|$", readme.split("### Exit codes", 1)[1], re.M))
    expected = {
        errors.VsearchError: 1, errors.VideoError: 1, errors.NotIndexedError: 1, errors.IndexTypeError: 1,
        cli.EXIT_PARTIAL: 2, errors.IndexNotFoundError: 3, errors.IndexLockedError: 4, errors.ConfigMismatchError: 5,
        errors.RebuildNeededError: 5, errors.IndexCorruptError: 6, errors.DeviceError: 7, cli.EXIT_INTERNAL: 70,
    }
    for what, code in expected.items():
        assert (what if isinstance(what, int) else what.exit_code) == code, what
        assert str(code) in table, code
    assert sorted(map(int, table)) == [0, 1, 2, 3, 4, 5, 6, 7, 70]
    words = {3: "no index", 4: "writer", 5: "settings", 6: "damaged", 7: "device", 70: "bug"}
    assert all(word in table[str(code)] for code, word in words.items())


def _damage_metadata(index: Path) -> None:
    """Overwrite the start of the LMDB file, as a disk error would (MDB_INVALID)."""
    with open(index / "meta.lmdb" / "data.mdb", "r+b") as handle:
        handle.write(b"\0" * 8192)


def test_each_row_of_the_exit_code_table(built_index, scratch_index, media, clips, tmp_path):
    """Each code of the README's table, from a real command that should give it."""
    from vsearch.device import _cupy_or_none
    from vsearch.lock import WriterLock

    ix, scratch, extra = str(built_index), str(scratch_index), str(media["extra"])
    exact, short = str(clips["exact"][0]), str(clips["too_short"][0])
    damaged = tmp_path / "damaged"
    shutil.copytree(built_index, damaged)
    _damage_metadata(damaged)
    unrepaired = tmp_path / "unrepaired"
    shutil.copytree(built_index, unrepaired)
    (unrepaired / "vectors.faiss").unlink()
    bug = ("import sys, vsearch.library.sharded as s; from vsearch import cli\n"
           "def broken(*a, **k): raise ZeroDivisionError('a bug')\n"
           f"s.open_library = broken; sys.argv = ['vsearch', 'stats', '--index', {ix!r}]; cli.run()")
    rows = {
        0: [("stats", "--index", ix), ("query", exact, "--index", ix)],
        1: [("rebuild", "--index-type", "HNSW32", "--index", scratch), ("query", exact, "-k", "0", "--index", ix),
            ("ingest", str(tmp_path / "no-such.mp4"), "--index", scratch), ("verify", "--index", str(unrepaired))],
        2: [("query", exact, short, "--index", ix)],
        3: [("stats", "--index", str(media["lib11"])), ("list", "--index", str(tmp_path / "none")),
            ("query", exact, "--index", str(tmp_path / "none"))],
        4: [("ingest", extra, "--index", scratch)],  # with the lock held below
        5: [("ingest", extra, "--window", "5", "--index", scratch)],
        6: [(command, "--index", str(damaged)) for command in ("stats", "list", "verify")]
        + [("query", exact, "--index", str(damaged))],
        7: [("query", exact, "--device", "gpu", "--index", ix)] if _cupy_or_none() is None else [],
    }
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    table = dict(re.findall(r"^\| (\d+) \| (.+) \|$", readme.split("### Exit codes", 1)[1], re.M))
    assert set(map(int, table)) == set(rows) | {70}
    for code, commands in rows.items():
        for args in commands:
            lock = WriterLock(scratch)
            if code == 4:
                lock.acquire()
            try:
                proc = run_cli(*args)
            finally:
                lock.release()
            assert proc.returncode == code, (code, args, proc.stderr)
            if code not in (0, 2) and args[0] != "verify":  # an error says why in one line (verify: a report)
                assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, (args, proc.stderr)
    proc = subprocess.run([sys.executable, "-c", bug], capture_output=True, text=True)
    assert proc.returncode == 70 and proc.stderr.startswith("vsearch: internal error: ZeroDivisionError: a bug")
    # Nothing that was refused changed the index.
    stats = json.loads(run_cli("stats", "--index", scratch, "--json", check=True).stdout)
    assert stats["index_type"] == "IDMap2,Flat (auto)" and stats["videos"] == 3


def test_a_file_given_as_index_is_no_index(media):
    for command in ("stats", "list", "verify"):
        proc = run_cli(command, "--index", str(media["lib11"]))
        assert proc.returncode == 3 and "no vsearch index here" in proc.stderr, proc.stderr
        assert "Expecting value" not in proc.stderr and "codec" not in proc.stderr


def test_query_accepts_folders_of_clips(built_index, clips, tmp_path):
    folder = tmp_path / "clips"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(clips["exact"][0], folder / "a.mp4")
    shutil.copy(clips["reencoded_small"][0], folder / "sub" / "b.mp4")
    (folder / "notes.txt").write_text("not a clip")
    proc = run_cli("query", str(folder), "--index", str(built_index), "--json", "-k", "1", check=True)
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [line["query"] for line in lines] == [str(folder / "a.mp4"), str(folder / "sub" / "b.mp4")]
    assert [line["hits"][0]["video"] for line in lines] == [str(clips["exact"][1]), str(clips["reencoded_small"][1])]


def _decimals(value: float) -> int:
    text = repr(value)
    return len(text.split(".")[1]) if "." in text else 0


def test_json_times_are_rounded_to_the_millisecond(built_index, clips, media, tmp_path):
    hit = json.loads(run_cli("query", str(clips["reencoded_small"][0]), "--index", str(built_index), "--json",
                             check=True).stdout)["hits"][0]
    assert all(_decimals(hit[f]) <= 3 for f in ("start", "end", "query_start", "query_end"))
    assert all(_decimals(hit[f]) <= 4 for f in ("score", "distance", "speed"))
    ingest = json.loads(run_cli("ingest", str(media["negative"]), "--index", str(tmp_path / "ix"), "--json",
                                check=True).stdout)
    assert ingest["results"][0]["duration_s"] > 11 and _decimals(ingest["results"][0]["duration_s"]) <= 3
    listed = json.loads(run_cli("list", "--index", str(tmp_path / "ix"), "--json", check=True).stdout)
    assert _decimals(listed[0]["duration_s"]) <= 3


COMMANDS = ("ingest", "query", "features", "stats", "list", "remove", "verify", "rebuild", "serve")


def test_every_command_has_examples_and_readable_help():
    for command in COMMANDS:
        text = run_cli(command, "--help", env={"COLUMNS": "80"}, check=True).stdout
        assert "Examples:" in text and f"vsearch {command} " in text, command
        assert "<bool>" not in text, command
        assert max(map(len, text.splitlines())) <= 80, command
        if command not in ("features",):
            # --index names its default and the environment variable.
            assert "$VSEARCH_INDEX" in text and "indexes/default" in text, command
    top = run_cli("--help", env={"COLUMNS": "80"}, check=True).stdout
    assert "<bool>" not in top and "$VSEARCH_INDEX" in top
    # Paragraphs are reflowed, not broken where the source broke them.
    ingest = run_cli("ingest", "--help", env={"COLUMNS": "200"}, check=True).stdout
    assert "giving different ones for an existing index is refused" in " ".join(ingest.split())
    assert not any(line.strip() in ("an", "is") for line in ingest.splitlines())


def test_progress_bar_in_a_real_terminal(media, tmp_path):
    """tmux gives the command a real terminal of a chosen width; the bar must keep to it."""
    import os
    import subprocess
    import sys
    import time

    tmux = shutil.which("tmux")
    if tmux is None:
        pytest.skip("tmux is not installed")
    folder = tmp_path / "lib"
    folder.mkdir()
    for name in ("lib11", "lib12", "lib13"):
        shutil.copy(media[name], folder / f"{name} with a rather long file name for the bar.mp4")
    for width in (80, 200):
        session = f"vsearch-test-{os.getpid()}-{width}"
        done = tmp_path / f"done-{width}"
        command = (f"{sys.executable} -m vsearch ingest '{folder}' --index '{tmp_path / f'ix{width}'}'; "
                   f"touch '{done}'; sleep 30")
        # A private tmux server per width (-L): nothing shared with a user's tmux or the other width.
        subprocess.run([tmux, "-L", session, "new-session", "-d", "-s", session, "-x", str(width), "-y", "20",
                        command], check=True, cwd=os.path.dirname(os.path.dirname(__file__)))
        try:
            deadline = time.monotonic() + 60
            while not done.exists() and time.monotonic() < deadline:
                time.sleep(0.2)
            screen = subprocess.run([tmux, "-L", session, "capture-pane", "-p", "-t", session], capture_output=True,
                                    text=True, check=True).stdout
        finally:
            subprocess.run([tmux, "-L", session, "kill-server"], capture_output=True)
        lines = [line for line in screen.splitlines() if line.strip()]
        bars = [line for line in lines if "3/3" in line]
        # The finished bar is one line holding the count, the rate and the times, not wrapped.
        assert len(bars) == 1 and "x" in bars[0] and "ETA" in bars[0], screen
        assert "3 added" in screen and all(len(line) <= width for line in lines)


def test_help_has_examples_and_completion():
    top = run_cli("--help", check=True).stdout
    assert "vsearch query clip.mp4" in top and "--install-completion" in top
    assert "Examples" in run_cli("query", "--help", check=True).stdout


def test_progress_stays_quiet_when_not_a_terminal(media, tmp_path):
    proc = run_cli("ingest", str(media["extra"]), "--index", str(tmp_path / "ix"), check=True)
    assert "video-s" not in proc.stderr and proc.stderr.strip() == ""
