"""What the command line prints: text, CSV, JSON times, the progress bar."""

from __future__ import annotations

import csv
import io

from tests.conftest import run_cli


def test_csv_output_has_one_row_per_hit(built_index, clips):
    proc = run_cli("query", str(clips["exact"][0]), str(clips["negative"][0]), "--index", str(built_index),
                   "--csv", "-k", "2", check=True)
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
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
