"""What the command line prints: human text, JSON lines, CSV rows and the ingest progress bar.

Human output gives times as ``h:mm:ss.mmm`` and fits the terminal's width, wrapped
between words (whole lines into a pipe or a file); JSON and CSV give seconds
to the millisecond and scores to 1e-4 (the models' ``to_dict``), and a record for
every clip, failed or without hits. Paths are printed with bytes that are not UTF-8
escaped, so any terminal shows them.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import shlex
import shutil
import sys
import textwrap
import time
import traceback
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import typer
from typer.core import TyperGroup

from .errors import VsearchError
from .models import IndexStats, IngestResult, LibraryStats, QueryResult, VerifyReport, VideoRecord

if TYPE_CHECKING:
    from .library.base import BaseIndex


class PlainFlagsGroup(TyperGroup):
    """Help as a reader expects it: flags without a ``<bool>`` type beside them.

    (Typer shows every option's type; for an on/off flag that is noise. The metavar
    is the documented way to replace it, set here for every command at once.)
    """

    @staticmethod
    def _plain_flags(params):
        for param in params:
            if getattr(param, "is_bool_flag", False) and param.metavar is None:
                param.metavar = ""
        return params

    def get_params(self, ctx):
        return self._plain_flags(super().get_params(ctx))

    def get_command(self, ctx, cmd_name):
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            self._plain_flags(command.get_params(ctx))
        return command


#: Columns of ``vsearch query --csv`` (one row per hit; one for a clip without hits or that failed).
CSV_FIELDS = ("query", "rank", "video", "start", "end", "query_start", "query_end", "score", "distance", "speed",
              "mirrored", "inset", "rotation", "part", "crop", "ambiguous", "status",
              "reason")

#: Ingest outcomes, in the order the summary names them.
STATUSES = ("added", "replaced", "partial", "moved", "skipped", "failed")


def show(path: str) -> str:
    """A path printable on any terminal (non-UTF-8 bytes shown escaped)."""
    return path.encode("utf-8", "backslashreplace").decode("utf-8")


def shown(crop) -> str:
    """What part of its frame a hit shows, in words: ``crop 72% x 72% at 28%, 28%``."""
    top, bottom, left, right = crop
    return f"crop{KEEP}{right - left:.0%}{KEEP}x{KEEP}{bottom - top:.0%}{KEEP}at{KEEP}{left:.0%},{KEEP}{top:.0%}"


def terminal_width() -> int | None:
    """Columns of the terminal output goes to (``$COLUMNS`` first); None when it goes to
    a pipe or a file, which get whole lines."""
    if os.environ.get("COLUMNS") or sys.stdout.isatty():
        return shutil.get_terminal_size((80, 24)).columns
    return None


#: Joins words that :func:`fit` keeps on one line ("score 0.991"); printed as a space.
KEEP = "\xa0"


def fit(line: str, *, indent: int = 0, width: int | None = None) -> str:
    """``line`` wrapped between words to ``width`` columns (the terminal's; whole if
    none), continued ``indent`` spaces in; never inside a word, nor at a :data:`KEEP`
    space. A word longer than a line (a long path) is kept whole."""
    width = width or terminal_width()
    if width is not None:
        line = textwrap.fill(line, width, subsequent_indent=" " * indent, break_long_words=False,
                             break_on_hyphens=False)
    return line.replace(KEEP, " ")


def hms(seconds: float) -> str:
    """``h:mm:ss.mmm``: to the millisecond, hours without padding (``1:02:05.500``)."""
    ms = int(round(seconds * 1000))
    return f"{ms // 3_600_000}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def problem_line(result: IngestResult) -> str:
    """``FAILED path: reason`` or ``PARTIAL path: reason`` for an ingest result ('' if fine)."""
    if result.status not in ("failed", "partial"):
        return ""
    return f"{result.status.upper()} {show(result.path)}: {result.reason}"


def print_error(message: str, exc: BaseException | None = None) -> None:
    """``vsearch: error: MESSAGE``, one line on stderr (and ``exc``'s traceback with --verbose)."""
    typer.echo(f"vsearch: error: {show(message)}", err=True)
    if exc is not None and logging.getLogger().isEnabledFor(logging.DEBUG):
        traceback.print_exception(exc)


def print_problem(result: IngestResult) -> None:
    """Print a file's ``FAILED``/``PARTIAL`` line on stderr (nothing for a file that went well)."""
    if message := problem_line(result):
        typer.echo(message, err=True)


class QueryOutput:
    """Prints each clip's outcome as asked: a JSON line or CSV rows (after a header) for
    every clip, answered or not, with its ``status`` (``matched``, ``unmatched``,
    ``failed``) and ``reason``; or text fitted to the terminal (``quiet``: nothing for a
    clip without hits). Failures also go to stderr. Keeps both for the visual
    ``report`` (:meth:`finish` writes it). JSON and CSV together are refused at once."""

    def __init__(self, *, as_json: bool, as_csv: bool, min_score: float, quiet: bool = False,
                 report: Path | None = None) -> None:
        if as_json and as_csv:
            raise VsearchError("--json and --csv cannot be used together")
        self.as_json, self.quiet, self.min_score, self.report = as_json, quiet, min_score, report
        self.answered: list[QueryResult] = []
        self.failures: list[tuple[str, str]] = []
        self._csv = csv.writer(sys.stdout, lineterminator="\n") if as_csv else None
        self._rows = 0

    def fail(self, clip: str | Path, exc: Exception) -> None:
        print_error(str(exc))
        self.failures.append((str(clip), str(exc)))
        reason = getattr(exc, "reason", str(exc))
        if self.as_json:
            typer.echo(json.dumps({"query": str(clip), "status": "failed", "reason": reason, "duration": None,
                                   "hits": []}))
        elif self._csv is not None:
            self._row(_clip_row(str(clip), "failed", reason))

    def finish(self, library: "BaseIndex") -> None:
        """Write the visual report of every clip, if one was asked for, and say where."""
        if self.report is None:
            return
        from .report import write_report  # noqa: PLC0415 - decoding and drawing, only for a report

        write_report(library, self.answered, self.report, threshold=self.min_score, failures=self.failures)
        if self.quiet:
            return
        count, failed = len(self.answered) + len(self.failures), len(self.failures)
        typer.echo(f"report: {show(str(self.report))} ({count} clip{'' if count == 1 else 's'}"
                   + (f", {failed} not answered" if failed else "") + ")", err=True)

    def answer(self, result: QueryResult) -> None:
        self.answered.append(result)
        status, reason = ("matched", "") if result.hits else (
            "unmatched", f"no library segment scores {self.min_score:g} or more")
        if self.as_json:
            typer.echo(json.dumps({"query": result.query, "status": status, "reason": reason, **result.to_dict()}))
        elif self._csv is not None:
            for rank, hit in enumerate(result.hits, 1):
                row = hit.to_dict()
                self._row([result.query, rank, *(_csv_value(row[f]) for f in CSV_FIELDS[2:-2]), status, reason])
            if not result.hits:
                self._row(_clip_row(result.query, status, reason))
        elif result.hits or not self.quiet:
            typer.echo(result_text(result))

    def _row(self, row: list) -> None:
        """A CSV row, after the header (written with the first row: none if the index cannot be opened)."""
        if not self._rows:
            self._csv.writerow(CSV_FIELDS)
        self._csv.writerow(row)
        self._rows += 1


def _clip_row(query: str, status: str, reason: str) -> list[str]:
    """The CSV row of a clip without hits: its name, status and reason, no hit fields."""
    return [query, *[""] * (len(CSV_FIELDS) - 3), status, reason]


def _csv_value(value: object) -> object:
    """A CSV cell as JSON writes the value (``true``/``false``, not Python's ``True``)."""
    if isinstance(value, (list, tuple)):  # a crop: its four shares
        return " ".join(f"{share:g}" for share in value)
    return json.dumps(value) if isinstance(value, bool) else value


def result_text(result: QueryResult, width: int | None = None) -> str:
    """A clip's hits as text: one line per hit where the terminal is wide enough (or
    there is none), else the video on a line of its own and the rest wrapped below it."""
    width = width or terminal_width() or 1 << 30
    count = len(result.hits)
    lines = [fit(f"{show(result.query)} ({result.duration:.2f} s): {count or 'no'} hit{'' if count == 1 else 's'}",
                 indent=2, width=width)]
    for rank, hit in enumerate(result.hits, 1):
        edits = ([f"speed{KEEP}{hit.speed:g}x"] if hit.speed != 1.0 else []) + (["mirrored"] if hit.mirrored else []) + (
            [hit.part if hit.part == "inset" else f"{hit.part}{KEEP}side"] if hit.inset else []) + (
            [f"turned{KEEP}{hit.rotation}{KEEP}deg"] if hit.rotation else []) + (
            [shown(hit.crop)] if tuple(hit.crop) != (0.0, 1.0, 0.0, 1.0) else []) + (
            ["ambiguous: other places fit as well"] if hit.ambiguous else [])
        details = (f"{hms(hit.start)}{KEEP}-{KEEP}{hms(hit.end)}  score{KEEP}{hit.score:.3f}  (clip{KEEP}"
                   f"{hms(hit.query_start)}{KEEP}-{KEEP}{hms(hit.query_end)}{''.join(', ' + e for e in edits)})")
        line = f"  {rank}. {show(hit.video)}  {details}".replace(KEEP, " ")
        lines.append(line if len(line) <= width else
                     f"  {rank}. {show(hit.video)}\n" + fit(" " * 5 + details, indent=5, width=width))
    return "\n".join(lines)


def progress_columns(width: int, unit: str) -> tuple:
    """Columns of the ingest progress bar that fit on one line of ``width`` terminal columns.

    The bar takes what the text leaves; the video-seconds count shows only where
    there is room for it (about 150 columns).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    wide = width >= 150
    name = 28 if wide else 18
    # name, count (up to 99999/99999), unit, rate, elapsed, "ETA", remaining, a space between
    # each, and the video-seconds count when wide; the bar gets the rest (one column spare).
    fixed = name + 11 + len(unit) + (16 if wide else 6) + 7 + 3 + 7 + 7 + (17 if wide else 0)
    text = [TextColumn("{task.fields[rate]:>5.1f}x real time")] if wide else [TextColumn("{task.fields[rate]:>5.1f}x")]
    if wide:
        text.insert(0, TextColumn("{task.fields[video_s]:>8.0f} video-s"))
    return (
        TextColumn(f"{{task.description:<{name}.{name}}}", style="bold", markup=False),
        BarColumn(bar_width=max(8, min(40, width - fixed - 1))),
        MofNCompleteColumn(),
        TextColumn(unit),
        *text,
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )


@contextmanager
def ingest_progress(total: int, *, bar: bool, problems: bool = True) -> Iterator[Callable[[IngestResult], None]]:
    """What to call with each file's result during an ingest: a rich progress bar on
    stderr (``bar``: a terminal, not --quiet or --json) that also prints the
    ``FAILED``/``PARTIAL`` lines (``problems``), or those lines alone on stderr."""
    if not bar:
        yield print_problem if problems else (lambda result: None)
        return
    from rich.console import Console
    from rich.progress import Progress

    console = Console(stderr=True)
    with Progress(*progress_columns(console.width, "files"), console=console, transient=False) as progress:
        task = progress.add_task("starting", total=total, video_s=0.0, rate=0.0)
        started, video_s = time.monotonic(), 0.0

        def report(result: IngestResult) -> None:
            nonlocal video_s
            message = problem_line(result)
            if message and problems:
                progress.console.print(message, markup=False, highlight=False)
            video_s += result.duration_s if result.status in ("added", "replaced", "partial") else 0.0
            rate = video_s / max(time.monotonic() - started, 1e-6)
            progress.update(task, advance=1, description=Path(result.path).name, video_s=video_s, rate=rate)

        yield report


def ingest_summary(results: list[IngestResult], stats: IndexStats | LibraryStats, path: str, *, as_json: bool,
                   quiet: bool) -> dict[str, int]:
    """Print what an ingest did (JSON, or a line unless ``quiet`` and nothing failed:
    the counts, why files were skipped, what the index holds); returns the count of each status."""
    counts = {s: sum(r.status == s for r in results) for s in STATUSES}
    if as_json:
        typer.echo(json.dumps({"results": [r.to_dict() for r in results], "summary": counts}))
    elif not quiet or counts["failed"]:
        skipped = Counter(show(r.reason) for r in results if r.status == "skipped" and r.reason)
        why = "; ".join(reason if n == 1 else f"{n} {reason}" for reason, n in skipped.items())
        summary = ", ".join(f"{n} {s}" + (f" ({why})" if s == "skipped" and why else "") for s, n in counts.items() if n)
        typer.echo(fit(f"{summary or 'nothing to do'}; index {show(path)} has {stats.videos} videos, "
                       f"{stats.vectors} vectors", indent=2))
    return counts


def stats_text(info: IndexStats | LibraryStats) -> str:
    """``vsearch stats`` for one index, or each shard then the library, fitted to the terminal."""
    if not isinstance(info, LibraryStats):
        return index_stats_text(info)
    lines = [f"shard {number}    {show(shard.path)}: {shard.videos} videos, {hms(shard.duration_s)}, "
             f"{shard.vectors} vectors ({shard.index_type}), {shard.bytes / 1e6:.1f} MB"
             for number, shard in enumerate(info.shards)]
    lines.append(f"library    {len(info.shards)} shards: {info.videos} videos"
                 + (f" ({info.partial_videos} partial)" if info.partial_videos else "")
                 + f", {hms(info.duration_s)}, {info.vectors} vectors, {info.bytes / 1e6:.1f} MB")
    lines.append(settings_text(info.shards[0].config))  # the same for every shard
    return _fit_labelled(lines)


def index_stats_text(info: IndexStats) -> str:
    return _fit_labelled([
        f"index      {show(info.path)}",
        f"videos     {info.videos}" + (f" ({info.partial_videos} partial: see 'vsearch list')" if info.partial_videos else ""),
        f"duration   {hms(info.duration_s)}",
        f"vectors    {info.vectors} x {info.dim} ({info.index_type})",
        f"on disk    {info.bytes / 1e6:.1f} MB",
        settings_text(info.config),
        f"created    {info.created}",
        f"updated    {info.updated}",
    ])


def _fit_labelled(lines: list[str]) -> str:
    """``label      value`` lines, each value wrapped to the terminal under itself."""
    return "\n".join(fit(line, indent=11) for text in lines for line in text.split("\n"))


def settings_text(cfg: dict) -> str:
    """How the index computes its vectors: decoding and picture settings only where it
    decodes videos itself (not for imported features)."""
    imported = cfg["features"] == "imported"
    return (
        f"features   {cfg['features']} (version{KEEP}{cfg['feature_version']}), block{KEEP}{cfg['block_seconds']}{KEEP}s, "
        f"window{KEEP}{cfg['window_blocks']}{KEEP}blocks"
        + ("" if imported else f", {cfg['width']}x{cfg['height']}{KEEP}@{KEEP}{cfg['analysis_fps']}{KEEP}fps")
        # The pooling grid and normalisation are the kernels' own; a model has neither.
        + (f", grid{KEEP}{cfg['grid'][0]}x{cfg['grid'][1]} of{KEEP}{cfg['cells'][0]}x{cfg['cells'][1]}{KEEP}cells, "
           f"normalization{KEEP}{cfg['normalization']}" if cfg["features"] == "v2" else "")
        + (f", normalization{KEEP}{cfg['normalization']}" if cfg["features"] == "seed" else "") + "\n"
        + (f"model      {show(cfg['model_path'])} (hash {cfg['model_hash'][:12]}), "
           f"{cfg['embedding_dim']} dimensions per block\n" if cfg.get("model_hash") else "")
        + (f"imported   {cfg['embedding_dim']} dimensions per block\n" if imported else "")
        + (f"decoder    none: features imported (index format {cfg['format_version']})" if imported else
           f"decoder    {cfg['decoder']} (index format {cfg['format_version']})")
    )


def list_text(records: list[VideoRecord], index: str) -> str:
    """``vsearch list``: a line per video, or says that the index holds none."""
    if not records:
        return f"no videos in {show(index)} (add some with 'vsearch ingest')"
    return "\n".join(video_line(record) for record in records)


def video_line(record: VideoRecord) -> str:
    """One line of ``vsearch list``."""
    return (f"{record.id:>6}  {hms(record.duration_s)}  {record.blocks:>7} blocks  {show(record.path)}"
            + (f"  PARTIAL ({record.reason})" if record.partial else ""))


def verify_text(report: VerifyReport, index: str) -> str:
    """``vsearch verify``: what was repaired, the verdict and what to do, then each problem."""
    partial = f" ({report.partial_videos} partial)" if report.partial_videos else ""
    counts = f"{report.videos} videos{partial}, {report.vectors} vectors"
    verdict = {
        "consistent": f"consistent: {counts}",
        "repairable": f"repairable: {counts}; the vector file is out of step with the metadata store, from "
                      "which any command that opens the index repairs it; or run "
                      f"`vsearch verify --repair --index {shlex.quote(index)}`",
        "damaged": f"DAMAGED: {counts}; the metadata store itself is damaged, beyond automatic repair: "
                   "index the videos again into a new index",
    }[report.status]
    lines = ([fit("repaired from the metadata store:")] + [fit(f"  {show(p)}", indent=4) for p in report.repaired]
             if report.repaired else [])
    lines.append(fit(verdict, indent=2))
    return "\n".join(lines + [fit(f"  {show(p)}", indent=4) for p in report.damage + report.problems])
