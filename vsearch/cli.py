"""Command-line interface: parse, call the library, turn typed errors into exit codes."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import List, Optional

import typer

from . import __version__
from .config import IndexConfig
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
JsonOpt = typer.Option(False, "--json", help="Machine-readable JSON output.")


def _index_path(index: Optional[Path]) -> Path:
    from .index import default_index_path

    return index if index is not None else default_index_path()


def _show(path: str) -> str:
    """A path printable on any terminal (non-UTF-8 bytes shown escaped)."""
    return path.encode("utf-8", "backslashreplace").decode("utf-8")


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


@app.command()
def ingest(
    paths: List[Path] = typer.Argument(..., help="Video files or folders (searched recursively)."),
    index: Optional[Path] = IndexOpt,
    features: str = typer.Option("v1", "--features", help="Feature kind for a new index: v1 or seed."),
    block_seconds: float = typer.Option(0.5, "--block", help="Block length in seconds (new index only)."),
    window_blocks: int = typer.Option(4, "--window", help="Blocks per window (new index only)."),
    device: str = DeviceOpt,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output."),
    as_json: bool = JsonOpt,
) -> None:
    """Add videos to an index (created if missing). Already indexed content is skipped."""
    from .decode import iter_video_files
    from .index import VideoIndex

    path = _index_path(index)
    try:
        config = IndexConfig(features=features, block_seconds=block_seconds, window_blocks=window_blocks)
        files = list(iter_video_files(paths))
        exists = VideoIndex.exists(path)
        with VideoIndex.open(path, config=None if exists and _defaults(features, block_seconds, window_blocks) else config,
                             create=True, device=device) as vindex:
            show = not quiet and not as_json and sys.stderr.isatty()
            done = [0]

            def report(result):  # one line per file, so a long run shows where it is
                done[0] += 1
                if as_json or quiet:
                    return
                if result.status == "failed":
                    typer.echo(f"[{done[0]}/{len(files)}] FAILED {_show(result.path)}: {result.reason}", err=True)
                elif show or result.status != "added":
                    typer.echo(f"[{done[0]}/{len(files)}] {result.status} {_show(result.path)}", err=True)

            results = vindex.add(files, progress=report)
            stats = vindex.stats()
    except VsearchError as exc:
        raise _fail(exc)
    counts = {s: sum(r.status == s for r in results) for s in ("added", "replaced", "moved", "skipped", "failed")}
    if as_json:
        typer.echo(json.dumps({"results": [r.__dict__ for r in results], "summary": counts}))
    elif not quiet or counts["failed"]:
        summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "nothing to do"
        typer.echo(f"{summary}; index {_show(str(path))} has {stats.videos} videos, {stats.vectors} vectors")
    if counts["failed"]:
        raise typer.Exit(EXIT_PARTIAL)


def _defaults(features: str, block_seconds: float, window_blocks: int) -> bool:
    default = IndexConfig()
    return (features, block_seconds, window_blocks) == (default.features, default.block_seconds, default.window_blocks)


@app.command()
def query(
    clips: List[Path] = typer.Argument(..., help="Query clips."),
    index: Optional[Path] = IndexOpt,
    k: int = typer.Option(5, "-k", "--top", min=1, help="Number of segments to return per clip."),
    min_score: Optional[float] = typer.Option(None, "--min-score", min=0.0, max=1.0, help="Hide hits scoring below this."),
    device: str = DeviceOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Find the library segments each clip comes from."""
    from .index import VideoIndex
    from .query import DEFAULT_MIN_SCORE

    threshold = DEFAULT_MIN_SCORE if min_score is None else min_score
    failed = 0
    try:
        vindex = VideoIndex.open(_index_path(index), device=device)
    except VsearchError as exc:
        raise _fail(exc)
    with vindex:
        for clip in clips:
            try:
                result = vindex.query(clip, k=k, min_score=threshold)
            except VsearchError as exc:
                typer.echo(f"vsearch: error: {_show(str(exc))}", err=True)
                failed += 1
                continue
            if as_json:
                typer.echo(json.dumps(result.to_dict()))
                continue
            count = len(result.hits)
            typer.echo(f"{_show(result.query)} ({result.duration:.2f} s): {count or 'no'} hit{'' if count == 1 else 's'}")
            for rank, hit in enumerate(result.hits, 1):
                typer.echo(
                    f"  {rank}. {_show(hit.video)}  {_hms(hit.start)}-{_hms(hit.end)}  "
                    f"score {hit.score:.3f}  (clip {hit.query_start:.2f}-{hit.query_end:.2f} s)"
                )
    if failed:
        raise typer.Exit(EXIT_PARTIAL)


def _hms(seconds: float) -> str:
    ms = int(round(seconds * 1000))
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


@app.command()
def stats(index: Optional[Path] = IndexOpt, as_json: bool = JsonOpt) -> None:
    """Show what an index holds and how it was built."""
    from .index import VideoIndex

    try:
        with VideoIndex.open(_index_path(index), device="cpu") as vindex:
            info = vindex.stats()
    except VsearchError as exc:
        raise _fail(exc)
    if as_json:
        typer.echo(json.dumps(info.to_dict()))
        return
    cfg = info.config
    typer.echo(
        f"index      {_show(info.path)}\n"
        f"videos     {info.videos}\n"
        f"duration   {_hms(info.duration_s)}\n"
        f"vectors    {info.vectors} x {info.dim} ({info.index_type})\n"
        f"on disk    {info.bytes / 1e6:.1f} MB\n"
        f"features   {cfg['features']} (version {cfg['feature_version']}), block {cfg['block_seconds']} s, "
        f"window {cfg['window_blocks']} blocks, {cfg['width']}x{cfg['height']} @ {cfg['analysis_fps']} fps, "
        f"grid {cfg['grid'][0]}x{cfg['grid'][1]}, normalization {cfg['normalization']}\n"
        f"created    {info.created}\n"
        f"updated    {info.updated}"
    )


@app.command("list")
def list_videos(index: Optional[Path] = IndexOpt, as_json: bool = JsonOpt) -> None:
    """List the indexed videos."""
    from .index import VideoIndex

    try:
        with VideoIndex.open(_index_path(index), device="cpu") as vindex:
            records = vindex.videos()
    except VsearchError as exc:
        raise _fail(exc)
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in records]))
        return
    for r in records:
        typer.echo(f"{r.id:>6}  {_hms(r.duration_s)}  {r.blocks:>7} blocks  {_show(r.path)}")


@app.command()
def remove(videos: List[Path] = typer.Argument(..., help="Indexed video paths."), index: Optional[Path] = IndexOpt) -> None:
    """Remove videos from an index; other videos keep their ids."""
    from .index import VideoIndex

    try:
        with VideoIndex.open(_index_path(index), device="cpu") as vindex:
            removed = vindex.remove(videos)
    except VsearchError as exc:
        raise _fail(exc)
    for r in removed:
        typer.echo(f"removed {_show(r.path)}")


@app.command()
def verify(index: Optional[Path] = IndexOpt, as_json: bool = JsonOpt) -> None:
    """Check that the vector file agrees with the metadata store (exit 1 if not)."""
    from .index import VideoIndex

    try:
        with VideoIndex.open(_index_path(index), device="cpu") as vindex:
            report = vindex.verify()
    except VsearchError as exc:
        raise _fail(exc)
    if as_json:
        typer.echo(json.dumps(report.to_dict()))
    else:
        typer.echo(f"{'consistent' if report.ok else 'INCONSISTENT'}: {report.videos} videos, {report.vectors} vectors")
        for problem in report.problems:
            typer.echo(f"  {_show(problem)}")
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def rebuild(
    index: Optional[Path] = IndexOpt,
    index_type: Optional[str] = typer.Option(
        None, "--index-type", help="FAISS factory string to switch to, e.g. Flat or IVF1024,Flat."
    ),
) -> None:
    """Re-create the vector index from stored descriptors, without decoding."""
    from .index import VideoIndex

    try:
        with VideoIndex.open(_index_path(index), device="cpu") as vindex:
            total = vindex.rebuild(index_type=index_type)
            kind = vindex.index_type
    except VsearchError as exc:
        raise _fail(exc)
    typer.echo(f"rebuilt {total} vectors ({kind})")


def run() -> None:
    """Console-script entry point."""
    os.environ.setdefault("KMP_DUPLICATE_LIB_OK", "TRUE")
    app()
