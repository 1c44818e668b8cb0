"""What the command line prints: text, CSV, JSON times, the progress bar."""

from __future__ import annotations

import csv
import io
import json

import numpy as np

from tests.conftest import run_cli


def test_csv_output_has_one_row_per_hit(built_index, clips):
    proc = run_cli("query", str(clips["exact"][0]), str(clips["negative"][0]), "--index", str(built_index),
                   "--csv", "-k", "2", check=True)
    rows = [r for r in csv.DictReader(io.StringIO(proc.stdout)) if r["status"] == "matched"]
    assert rows and all(r["query"] == str(clips["exact"][0]) for r in rows)
    assert rows[0]["rank"] == "1" and rows[0]["video"] == str(clips["exact"][1])
    assert abs(float(rows[0]["start"]) - clips["exact"][2]) <= 0.15


def test_default_output_is_a_readable_table(built_index, clips):
    out = run_cli("query", str(clips["exact"][0]), "--index", str(built_index), check=True).stdout
    assert "1 hit" in out and " 0:00:05." in out and "score 0.9" in out


def test_human_times_read_h_mm_ss_mmm():
    from vsearch.render import hms

    assert hms(12.3666666) == "0:00:12.367"
    assert hms(3725.5) == "1:02:05.500"
    assert hms(36000 * 3 + 0.0004) == "30:00:00.000"


def test_progress_bar_fits_one_line_at_80_and_200_columns():
    import io
    import re

    from rich.console import Console
    from rich.progress import Progress

    from vsearch.render import progress_columns

    for width in (80, 200):
        buffer = io.StringIO()
        console = Console(file=buffer, width=width, force_terminal=True, color_system=None)
        bar = Progress(*progress_columns(width, "files"), console=console, auto_refresh=False)
        task = bar.add_task("a long [bold]file name[/bold] from someone's camera.mp4", total=12000, video_s=98765.0,
                            rate=12.5)
        bar.update(task, advance=4000)
        bar.start()
        bar.stop()
        frames = [re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", f) for f in re.split(r"[\r\n]", buffer.getvalue())]
        frames = [f for f in frames if f.strip()]
        assert frames and all(len(f) <= width for f in frames), (width, frames)
        # One line per refresh: the name (markup shown as typed), the bar, the count and the rate together.
        assert all("[bold]" in f and "4000/12000" in f and "12.5x" in f for f in frames), frames
        assert ("video-s" in frames[-1]) == (width >= 150)


def test_every_clip_gets_a_record_in_json_and_csv(built_index, clips):
    exact, negative, short = (str(clips[name][0]) for name in ("exact", "negative", "too_short"))
    proc = run_cli("query", exact, negative, short, "--index", str(built_index), "--csv", "-k", "1")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and short in proc.stderr
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert [(r["query"], r["status"]) for r in rows] == [(exact, "matched"), (negative, "unmatched"), (short, "failed")]
    assert rows[0]["reason"] == "" and rows[0]["mirrored"] == "false" and rows[0]["ambiguous"] == "false"
    assert rows[1]["reason"] == "no library segment scores 0.85 or more" and rows[1]["video"] == rows[1]["rank"] == ""
    assert "shorter than" in rows[2]["reason"] and rows[2]["video"] == ""
    lines = [json.loads(line) for line in run_cli("query", exact, negative, short, "--index", str(built_index),
                                                   "--json", "-k", "1").stdout.splitlines()]
    assert [(line["query"], line["status"]) for line in lines] == [
        (exact, "matched"), (negative, "unmatched"), (short, "failed")]
    assert lines[1]["hits"] == [] and lines[1]["duration"] > 4.5 and lines[1]["reason"] == rows[1]["reason"]
    assert lines[2] == {"query": short, "status": "failed", "reason": rows[2]["reason"], "duration": None, "hits": []}


def _words(text: str) -> list[str]:
    return text.split()


def test_query_lines_fit_80_columns_without_breaking_a_word(built_index, clips):
    args = ("query", str(clips["exact"][0]), str(clips["reencoded_small"][0]), "--index", str(built_index))
    whole = run_cli(*args, env={"COLUMNS": ""}, check=True).stdout  # into a pipe: whole lines
    assert max(map(len, whole.splitlines())) > 80  # else this proves nothing
    for width in (80, 60):
        fitted = run_cli(*args, env={"COLUMNS": str(width)}, check=True).stdout
        assert max(map(len, fitted.splitlines())) <= width, fitted
        assert _words(fitted) == _words(whole)  # the same words, none cut in two
        assert "score 0.9" in fitted and " - 0:00:" in fitted  # a score or a span is never split from its words
    wide = run_cli(*args, env={"COLUMNS": "200"}, check=True).stdout
    assert wide == whole


def test_stats_lines_fit_80_columns(built_index):
    whole = run_cli("stats", "--index", str(built_index), env={"COLUMNS": ""}, check=True).stdout
    features = next(line for line in whole.splitlines() if line.startswith("features "))
    assert len(features) > 80
    fitted = run_cli("stats", "--index", str(built_index), env={"COLUMNS": "80"}, check=True).stdout
    assert max(map(len, fitted.splitlines())) <= 80 and _words(fitted) == _words(whole)
    # A continued line starts under the value, not under the label.
    continued = [line for line in fitted.splitlines() if line.startswith(" ")]
    assert continued and all(line.startswith(" " * 11) and line[11] != " " for line in continued)


def test_stats_of_imported_features_shows_no_decoding_settings(tmp_path):
    features = tmp_path / "video.npy"
    np.save(features, np.random.default_rng(5).random((20, 64), dtype=np.float32))
    run_cli("ingest", "--from-features", str(features), "--rate", "1", "--index", str(tmp_path / "ix"), check=True)
    text = run_cli("stats", "--index", str(tmp_path / "ix"), check=True).stdout
    assert "imported   64 dimensions per block" in text and "features   imported" in text
    assert "fps" not in text and "128x96" not in text and "pyav" not in text
    assert "decoder    none: features imported (index format 2)" in text


def test_fit_wraps_between_words_and_keeps_marked_spaces(monkeypatch):
    from vsearch.render import KEEP, fit

    assert fit(f"aaa bbb{KEEP}ccc ddd", width=9, indent=2) == "aaa\n  bbb ccc\n  ddd"
    assert fit("a " + "x" * 20 + " b", width=10) == "a\n" + "x" * 20 + "\nb"  # a long path stays whole
    monkeypatch.delenv("COLUMNS", raising=False)  # and output is captured, not a terminal: whole lines
    assert fit(f"one{KEEP}two three " * 20) == "one two three " * 20
    monkeypatch.setenv("COLUMNS", "30")
    assert max(map(len, fit("one two three " * 20).splitlines())) <= 30
