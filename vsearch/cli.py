"""Command-line interface: parse, call the library, turn typed errors into exit codes."""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import List, Optional

import typer

from . import __version__
from .decode.source import DEFAULT_TIMEOUT
from .errors import VsearchError

app = typer.Typer(
    add_completion=True,
    no_args_is_help=True,
    help=(
        "Find where a video clip comes from in a library of videos.\n\n"
        "Examples:\n\n"
        "  vsearch ingest ~/footage --index indexes/footage\n\n"
        "  vsearch query clip.mp4 --index indexes/footage -k 5\n\n"
        "  vsearch stats --index indexes/footage"
    ),
    pretty_exceptions_enable=False,
)

#: Exit code of `ingest` when some files failed (the others were indexed).
EXIT_PARTIAL = 2

IndexOpt = typer.Option(
    None, "--index", "-i", help="Index folder [default: $VSEARCH_INDEX or indexes/default]", show_default=False
)
DeviceOpt = typer.Option("auto", "--device", help="Compute device for descriptors: auto, cpu or gpu.")
TimeoutOpt = typer.Option(
    DEFAULT_TIMEOUT, "--decode-timeout", min=0.1,
    help="Abandon a file whose decoding makes no progress for this many seconds, or runs below 0.1x real time.",
)
JsonOpt = typer.Option(False, "--json", help="Machine-readable JSON output.")


def _index_path(index: Optional[Path]) -> Path:
    from .index import default_index_path

    return index if index is not None else default_index_path()


def _show(path: str) -> str:
    """A path printable on any terminal (non-UTF-8 bytes shown escaped)."""
    return path.encode("utf-8", "backslashreplace").decode("utf-8")


def _problem_line(result) -> str:
    """``FAILED path: reason`` or ``PARTIAL path: reason`` for an ingest result ('' if fine)."""
    if result.status not in ("failed", "partial"):
        return ""
    return f"{result.status.upper()} {_show(result.path)}: {result.reason}"


def _fail(exc: VsearchError) -> "typer.Exit":
    typer.echo(f"vsearch: error: {_show(str(exc))}", err=True)
    if logging.getLogger().isEnabledFor(logging.DEBUG):
        import traceback

        traceback.print_exception(exc)
    return typer.Exit(exc.exit_code)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"vsearch {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log details and show tracebacks."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


@contextmanager
def _progress(enabled: bool, total: int, unit: str):
    """A rich progress bar on stderr, or nothing (not a TTY, --quiet, --json)."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    columns = (
        TextColumn("[bold]{task.description:<28.28}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TextColumn("{task.fields[video_s]:>8.0f} video-s  {task.fields[rate]:>6.1f}x real time"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        yield bar, bar.add_task("starting", total=total, video_s=0.0, rate=0.0)


def _requested_settings(features, block_seconds, window_blocks, size, analysis_fps, decoder) -> dict:
    """The index settings given on the command line (only those given)."""
    given = {
        k: v
        for k, v in dict(features=features, block_seconds=block_seconds, window_blocks=window_blocks,
                         analysis_fps=analysis_fps, decoder=decoder).items()
        if v is not None
    }
    if size is not None:
        try:
            width, height = (int(v) for v in size.lower().split("x"))
        except ValueError:
            raise VsearchError(f"--size must look like 128x96, got {size!r}") from None
        given.update(width=width, height=height)
    return given


@app.command(
    epilog="Examples:\n\n  vsearch ingest ~/footage --index indexes/footage\n\n"
    "  vsearch ingest new.mp4 --index indexes/footage --quiet\n\n"
    "  vsearch ingest ~/footage --index indexes/seed --features seed --block 0.5 --window 3"
)
def ingest(
    paths: List[Path] = typer.Argument(..., help="Video files or folders (searched recursively)."),
    index: Optional[Path] = IndexOpt,
    features: Optional[str] = typer.Option(None, "--features", help="New index only: v1 (default) or seed."),
    block_seconds: Optional[float] = typer.Option(None, "--block", help="New index only: block seconds [0.5]."),
    window_blocks: Optional[int] = typer.Option(None, "--window", help="New index only: blocks per window [3]."),
    size: Optional[str] = typer.Option(None, "--size", help="New index only: working resolution WxH [128x96]."),
    analysis_fps: Optional[float] = typer.Option(None, "--fps", help="New index only: analysis frame rate [10]."),
    decoder: Optional[str] = typer.Option(
        None, "--decoder", help="New index only: pyav (default, FFmpeg) or decord. Queries use the index's."
    ),
    device: str = DeviceOpt,
    decode_timeout: float = TimeoutOpt,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output (errors are still shown)."),
    as_json: bool = JsonOpt,
) -> None:
    """Add videos to an index (created if missing). Already indexed content is skipped.

    Index settings are fixed when the index is created; giving different ones for an
    existing index is refused. A damaged or truncated file is indexed as far as it
    plays and reported PARTIAL (exit code 0); a file that cannot be played at all is
    reported FAILED (exit code 2, the other files are still indexed).
    """
    from .decode import iter_video_files
    from .index import VideoIndex

    path = _index_path(index)
    try:
        settings = _requested_settings(features, block_seconds, window_blocks, size, analysis_fps, decoder)
        files = list(iter_video_files(paths))
        with VideoIndex.open(path, settings=settings, create=True, device=device) as vindex, _progress(
            not quiet and not as_json and sys.stderr.isatty(), len(files), "files"
        ) as bar:
            started = time.monotonic()
            video_s = [0.0]

            def report(result):
                message = _problem_line(result)
                if message and not as_json:
                    bar[0].console.print(message, markup=False, highlight=False) if bar else typer.echo(message, err=True)
                if bar:
                    video_s[0] += result.duration_s if result.status in ("added", "replaced", "partial") else 0.0
                    rate = video_s[0] / max(time.monotonic() - started, 1e-6)
                    bar[0].update(bar[1], advance=1, description=Path(result.path).name, video_s=video_s[0], rate=rate)

            results = vindex.add(files, progress=report, timeout=decode_timeout)
            stats = vindex.stats()
    except VsearchError as exc:
        raise _fail(exc)
    counts = {s: sum(r.status == s for r in results)
              for s in ("added", "replaced", "partial", "moved", "skipped", "failed")}
    if as_json:
        typer.echo(json.dumps({"results": [dataclasses.asdict(r) for r in results], "summary": counts}))
    elif not quiet or counts["failed"]:
        summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "nothing to do"
        typer.echo(f"{summary}; index {_show(str(path))} has {stats.videos} videos, {stats.vectors} vectors")
    if counts["failed"]:
        raise typer.Exit(EXIT_PARTIAL)


_CSV_FIELDS = ("query", "rank", "video", "start", "end", "query_start", "query_end", "score", "distance", "speed",
               "mirrored", "inset", "rotation", "ambiguous")


@app.command(
    epilog="Examples:\n\n  vsearch query clip.mp4 --index indexes/footage -k 5\n\n"
    "  vsearch query a.mp4 b.mp4 --json > hits.jsonl\n\n"
    "  vsearch query clip.mp4 --csv > hits.csv\n\n"
    "  vsearch query clip.mp4 --report report.html"
)
def query(
    clips: List[Path] = typer.Argument(..., help="Query clips."),
    index: Optional[Path] = IndexOpt,
    k: int = typer.Option(5, "-k", "--top", min=1, help="Number of segments to return per clip."),
    min_score: Optional[float] = typer.Option(None, "--min-score", min=0.0, max=1.0, help="Hide hits scoring below this [0.85]."),
    device: str = DeviceOpt,
    as_json: bool = JsonOpt,
    as_csv: bool = typer.Option(False, "--csv", help="CSV output, one row per hit."),
    mirrored: bool = typer.Option(
        True, "--mirrored/--no-mirrored", help="Also search the horizontally flipped clip (finds flipped copies)."
    ),
    inset: bool = typer.Option(
        True, "--inset/--no-inset", help="Also search a picture-in-picture inset when the clip has one."
    ),
    rotations: bool = typer.Option(
        True, "--rotations/--no-rotations", help="Also search the clip turned by 90, 180 and 270 degrees."
    ),
    speeds: Optional[str] = typer.Option(
        None, "--speeds",
        help="Playback speeds to search, comma-separated [1,0.9,1.1,0.8,1.25]; '1' finds exact-speed copies only.",
    ),
    report: Optional[Path] = typer.Option(
        None, "--report", help="Write a visual report (.html or .png); with several clips, -N is added to the name."
    ),
    decoder: Optional[str] = typer.Option(
        None, "--decoder", help="Decoder for the clips; must be the index's (the default)."
    ),
    decode_timeout: float = TimeoutOpt,
) -> None:
    """Find the library segments each clip comes from."""
    from .decode import prestart
    from .embedding import DEFAULT_SPEEDS, check_speeds
    from .index import VideoIndex
    from .query import DEFAULT_MIN_SCORE

    prestart()  # the decoder process starts while the index opens
    if as_json and as_csv:
        raise _fail(VsearchError("--json and --csv cannot be used together"))
    try:
        speed_list = check_speeds(DEFAULT_SPEEDS if speeds is None else [float(s) for s in speeds.split(",") if s.strip()])
    except ValueError:
        raise _fail(VsearchError(f"--speeds must be comma-separated numbers, got {speeds!r}"))
    except VsearchError as exc:
        raise _fail(exc)
    threshold = DEFAULT_MIN_SCORE if min_score is None else min_score
    failed = 0
    writer = csv.writer(sys.stdout, lineterminator="\n") if as_csv else None
    if writer:
        writer.writerow(_CSV_FIELDS)
    try:
        vindex = VideoIndex.open(_index_path(index), device=device)
        vindex.check_decoder(decoder)
    except VsearchError as exc:
        raise _fail(exc)
    with vindex:
        for number, clip in enumerate(clips, 1):
            try:
                result = vindex.query(clip, k=k, min_score=threshold, mirrored=mirrored, speeds=speed_list,
                                      inset=inset, rotations=rotations, timeout=decode_timeout)
                if report is not None:
                    from .report import write_report

                    target = report if len(clips) == 1 else report.with_name(f"{report.stem}-{number}{report.suffix}")
                    write_report(vindex, result, target)
            except VsearchError as exc:
                typer.echo(f"vsearch: error: {_show(str(exc))}", err=True)
                failed += 1
                continue
            _print_result(result, as_json=as_json, writer=writer)
    if failed:
        raise typer.Exit(EXIT_PARTIAL)


def _print_result(result, *, as_json: bool, writer) -> None:
    if as_json:
        typer.echo(json.dumps(result.to_dict()))
    elif writer is not None:
        for rank, hit in enumerate(result.hits, 1):
            row = hit.to_dict()
            writer.writerow([result.query, rank, *(row[f] for f in _CSV_FIELDS[2:])])
    else:
        count = len(result.hits)
        typer.echo(f"{_show(result.query)} ({result.duration:.2f} s): {count or 'no'} hit{'' if count == 1 else 's'}")
        for rank, hit in enumerate(result.hits, 1):
            edits = ([f"speed {hit.speed:g}x"] if hit.speed != 1.0 else []) + (["mirrored"] if hit.mirrored else []) + (
                ["inset"] if hit.inset else []) + ([f"turned {hit.rotation} deg"] if hit.rotation else []) + (
                ["ambiguous: other places fit as well"] if hit.ambiguous else [])
            typer.echo(
                f"  {rank}. {_show(hit.video)}  {_hms(hit.start)} - {_hms(hit.end)}  score {hit.score:.3f}"
                f"  (clip {_hms(hit.query_start)} - {_hms(hit.query_end)}{''.join(', ' + e for e in edits)})"
            )


@app.command(
    epilog="Examples:\n\n  vsearch features a.mp4 -o a.npz\n\n"
    "  vsearch features ~/footage -o feats/          (one .npz per video)\n\n"
    "  vsearch features a.mp4 b.mp4 -o all.h5 --features seed"
)
def features(
    videos: List[Path] = typer.Argument(..., help="Video files or folders."),
    out: Path = typer.Option(..., "-o", "--out", help="Output: .npy, .npz, .h5 or a folder."),
    kind: str = typer.Option("v1", "--features", help="v1, or seed for the original 7-D per-block output."),
    block_seconds: float = typer.Option(0.5, "--block", help="Block length in seconds."),
    device: str = DeviceOpt,
) -> None:
    """Export per-block descriptors with their timestamps, without building an index."""
    from .config import IndexConfig
    from .decode import iter_video_files
    from .device import resolve_device
    from .export import export_features

    try:
        config = IndexConfig(features=kind, block_seconds=block_seconds)
        written = export_features(list(iter_video_files(videos)), out, config, resolve_device(device))
    except VsearchError as exc:
        raise _fail(exc)
    for path in written:
        typer.echo(f"wrote {_show(str(path))}")


def _hms(seconds: float) -> str:
    ms = int(round(seconds * 1000))
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def _on_index(index: Optional[Path], action, **open_args):
    """Open the index, run ``action(index)``, turn vsearch errors into an exit code."""
    from .index import VideoIndex

    try:
        with VideoIndex.open(_index_path(index), device="cpu", **open_args) as vindex:
            return action(vindex)
    except VsearchError as exc:
        raise _fail(exc)


@app.command()
def stats(index: Optional[Path] = IndexOpt, as_json: bool = JsonOpt) -> None:
    """Show what an index holds and how it was built."""
    info = _on_index(index, lambda ix: ix.stats())
    if as_json:
        typer.echo(json.dumps(info.to_dict()))
        return
    cfg = info.config
    typer.echo(
        f"index      {_show(info.path)}\n"
        f"videos     {info.videos}" + (f" ({info.partial_videos} partial: see 'vsearch list')" if info.partial_videos else "") + "\n"
        f"duration   {_hms(info.duration_s)}\n"
        f"vectors    {info.vectors} x {info.dim} ({info.index_type})\n"
        f"on disk    {info.bytes / 1e6:.1f} MB\n"
        f"features   {cfg['features']} (version {cfg['feature_version']}), block {cfg['block_seconds']} s, "
        f"window {cfg['window_blocks']} blocks, {cfg['width']}x{cfg['height']} @ {cfg['analysis_fps']} fps, "
        f"grid {cfg['grid'][0]}x{cfg['grid'][1]}, normalization {cfg['normalization']}\n"
        f"decoder    {cfg['decoder']} (index format {cfg['format_version']})\n"
        f"created    {info.created}\n"
        f"updated    {info.updated}"
    )


@app.command("list")
def list_videos(index: Optional[Path] = IndexOpt, as_json: bool = JsonOpt) -> None:
    """List the indexed videos."""
    records = _on_index(index, lambda ix: ix.videos())
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in records]))
        return
    for r in records:
        typer.echo(f"{r.id:>6}  {_hms(r.duration_s)}  {r.blocks:>7} blocks  {_show(r.path)}"
                   + (f"  PARTIAL ({r.reason})" if r.partial else ""))


@app.command()
def remove(videos: List[Path] = typer.Argument(..., help="Indexed video paths."), index: Optional[Path] = IndexOpt) -> None:
    """Remove videos from an index; other videos keep their ids."""
    removed = _on_index(index, lambda ix: ix.remove(videos))
    for r in removed:
        typer.echo(f"removed {_show(r.path)}")


@app.command()
def verify(index: Optional[Path] = IndexOpt, as_json: bool = JsonOpt) -> None:
    """Check that the vector file agrees with the metadata store (exit 1 if not).

    A pure check: unlike every other command it does not repair what it finds;
    any write command (or opening from Python) repairs from the metadata store.
    """
    report = _on_index(index, lambda ix: ix.verify(), repair=False)
    if as_json:
        typer.echo(json.dumps(report.to_dict()))
    else:
        partial = f" ({report.partial_videos} partial)" if report.partial_videos else ""
        typer.echo(f"{'consistent' if report.ok else 'INCONSISTENT'}: {report.videos} videos{partial}, "
                   f"{report.vectors} vectors")
        for problem in report.problems:
            typer.echo(f"  {_show(problem)}")
    if not report.ok:
        raise typer.Exit(1)


@app.command(
    epilog="Examples:\n\n  vsearch rebuild --index indexes/footage\n\n"
    "  vsearch rebuild --index indexes/footage --index-type IVF1024,Flat\n\n"
    "  vsearch rebuild --index indexes/old --drop-missing      (an index of an older vsearch)"
)
def rebuild(
    index: Optional[Path] = IndexOpt,
    index_type: Optional[str] = typer.Option(
        None, "--index-type", help="FAISS factory string to switch to, e.g. Flat or IVF1024,Flat."
    ),
    drop_missing: bool = typer.Option(
        False, "--drop-missing", help="Older index: leave out videos whose files are gone or no longer decode."
    ),
    device: str = DeviceOpt,
    decode_timeout: float = TimeoutOpt,
) -> None:
    """Re-create the vector index from stored descriptors, without decoding.

    An index written by an older vsearch is rebuilt by decoding its videos again,
    with the same settings; the old one stays in place until the new one is complete.
    """
    from .upgrade import needs_upgrade, upgrade_index

    path = _index_path(index)
    try:
        if needs_upgrade(path):
            typer.echo(f"{_show(str(path))}: written by an older vsearch; decoding its videos again", err=True)

            def report(result):
                if message := _problem_line(result):
                    typer.echo(message, err=True)

            results = upgrade_index(path, device=device, drop_missing=drop_missing, timeout=decode_timeout,
                                    progress=report)
            kept = sum(r.ok for r in results)
            typer.echo(f"rebuilt {kept} videos in the current format ({len(results) - kept} left out)")
            if index_type is None:
                return
    except VsearchError as exc:
        raise _fail(exc)
    total, kind = _on_index(index, lambda ix: (ix.rebuild(index_type=index_type), ix.index_type))
    typer.echo(f"rebuilt {total} vectors ({kind})")


@app.command(
    epilog="Examples:\n\n  vsearch serve --index indexes/footage --allow-dir ~/footage\n\n"
    "  VSEARCH_TOKEN=s3cret vsearch serve --index indexes/footage --host 0.0.0.0 --port 8000\n\n"
    "  curl -F clip=@clip.mp4 http://127.0.0.1:8000/query"
)
def serve(
    index: Optional[Path] = IndexOpt,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on; beyond loopback a token is required."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="Port to listen on."),
    token: Optional[str] = typer.Option(
        None, "--token", envvar="VSEARCH_TOKEN", show_envvar=True,
        help="Require 'Authorization: Bearer TOKEN' on every request but /health.",
    ),
    allow_dirs: List[Path] = typer.Option(
        [], "--allow-dir", help="A folder whose files clients may query or add by path (repeatable)."
    ),
    max_upload_mb: float = typer.Option(200, "--max-upload-mb", min=0.001, help="Largest clip upload, MiB."),
    max_clip_seconds: float = typer.Option(600, "--max-clip-seconds", min=1, help="Longest query clip, seconds."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Queries run at once [CPU count]."),
    upload_dir: Optional[Path] = typer.Option(
        None, "--upload-dir", help="Where uploads wait while queried (removed after each request) [system temp]."
    ),
    device: str = DeviceOpt,
    decode_timeout: float = TimeoutOpt,
) -> None:
    """Serve an index over HTTP: queries and additions at the same time (needs the 'serve' extra).

    The index stays open; queries run in a pool of threads, additions and removals
    are jobs run one at a time. The server holds the writer lock only while a job
    runs: a `vsearch ingest` in another process meanwhile is refused with the lock
    error (exit 4), and what another process commits is picked up for queries.
    """
    from .server import ServerConfig, require_extra, serve as run_server

    try:
        require_extra()
        config = ServerConfig(
            index=_index_path(index), host=host, port=port, token=token, allow_dirs=tuple(allow_dirs),
            max_upload_bytes=int(max_upload_mb * (1 << 20)), max_clip_seconds=max_clip_seconds,
            upload_dir=upload_dir, device=device, decode_timeout=decode_timeout,
            **({"query_workers": workers} if workers else {}),
        )
        run_server(config)
    except VsearchError as exc:
        raise _fail(exc)


#: Exit code for a bug (an exception vsearch did not raise on purpose).
EXIT_INTERNAL = 70


def run() -> None:
    """Console-script entry point: unexpected failures get one line too (traceback with -v)."""
    try:
        app(standalone_mode=True)
    except SystemExit:
        raise
    except Exception as exc:  # noqa: BLE001 - the last line of defence for users
        if logging.getLogger().isEnabledFor(logging.DEBUG):
            raise
        typer.echo(f"vsearch: internal error: {type(exc).__name__}: {_show(str(exc))} (run with --verbose for details)",
                   err=True)
        sys.exit(EXIT_INTERNAL)
