"""Command-line interface: parse, call the library, turn typed errors into exit codes."""

from __future__ import annotations

import functools
import json
import logging
import sys
from pathlib import Path
from typing import Callable, List, Optional

import typer

from . import __version__
from .decode.source import DEFAULT_TIMEOUT
from .errors import IndexCorruptError, VsearchError
from .render import (PlainFlagsGroup, QueryOutput, ingest_progress, ingest_summary, list_text, print_error,
                     print_problem, show, stats_text, verify_text)

app = typer.Typer(
    cls=PlainFlagsGroup,
    # Plain (click) help: options and their help side by side, wrapped to the
    # terminal; the framed layout squeezes the help text into a narrow column at 80.
    rich_markup_mode=None,
    add_completion=True,
    no_args_is_help=True,
    help=(
        "Find where a video clip comes from in a library of videos.\n\n"
        "Examples:\n\n"
        "  vsearch ingest ~/footage --index indexes/footage\n\n"
        "  vsearch query clip.mp4 --index indexes/footage -k 5\n\n"
        "  vsearch stats --index indexes/footage\n\n"
        "The index is --index DIR, else $VSEARCH_INDEX, else indexes/default."
    ),
    pretty_exceptions_enable=False,
)

#: Exit code of `ingest` when some files failed (the others were indexed).
EXIT_PARTIAL = 2

IndexOpt = typer.Option(
    None, "--index", "-i", help="Index folder. Default: $VSEARCH_INDEX when set, else indexes/default.", show_default=False
)
IndexesOpt = typer.Option(
    None, "--index", "-i", show_default=False,
    help="Index folder, or a shard manifest (.json); repeat for a library of several shards. "
    "Default: $VSEARCH_INDEX when set, else indexes/default.",
)
RayOpt = typer.Option(False, "--ray", help='Run on a Ray cluster (pip install "vsearch[ray]"); without '
                      "--ray-address, a local one on this machine's cores.")
RayAddressOpt = typer.Option(
    None, "--ray-address", help="Join this Ray cluster (implies --ray): auto (the one 'ray start' runs here) or HOST:PORT."
)
DeviceOpt = typer.Option("auto", "--device", help="Compute device for descriptors: auto, cpu or gpu.")
TimeoutOpt = typer.Option(
    DEFAULT_TIMEOUT, "--decode-timeout", min=0.1,
    help="Abandon a file whose decoding makes no progress for this many seconds, or runs below 0.1x real time.",
)
MaxPixelsOpt = typer.Option(None, "--max-pixels", show_default=False, metavar="WxH", help="Refuse videos whose frames "
                            "are larger, WxH or a pixel count (read from the headers, before decoding) [7680x4320].")
JsonOpt = typer.Option(False, "--json", help="Machine-readable JSON output.")
FromFeaturesOpt = typer.Option(None, "--from-features", help="Another tool's features: files, folders or F.h5::NAME.")
LayoutOpt = typer.Option(None, "--layout", help="With --from-features: npz, npy or h5 [the files' suffix].")
RateOpt = typer.Option(None, "--rate", help="For feature files without times: features a second, or 'uniform'.")
ClipOpt = typer.Option(None, "--clip-seconds", help="For feature files without times: back-to-back clips of S seconds.")
StackOpt = typer.Option(None, "--stack", help="For feature files without times: frames per feature (I3D, R(2+1)D stacks).")
StepOpt = typer.Option(None, "--step", help="With --stack: frames from one feature to the next [the stack].")
FrameRateOpt = typer.Option(None, "--frame-rate", help="With --stack: the frame rate of the stacks [the file's fps].")


def _index_path(index: Optional[Path]) -> Path:
    from .library.index import default_index_path

    return index if index is not None else default_index_path()


def _index_paths(indexes: Optional[List[Path]]) -> List[Path]:
    """``--index`` values (folders or manifests), or the default index."""
    return list(indexes) if indexes else [_index_path(None)]


def _exits(command: Callable) -> Callable:
    """The command, with a vsearch error it raises turned into one line (a traceback
    too with -v) and the error's exit code."""
    @functools.wraps(command)
    def run_command(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except VsearchError as exc:
            print_error(str(exc), exc)
            raise typer.Exit(exc.exit_code) from None

    return run_command


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


@app.command(
    epilog="Examples:\n\n  vsearch ingest ~/footage --index indexes/footage\n\n"
    "  vsearch ingest new.mp4 --index indexes/footage --quiet\n\n"
    "  vsearch ingest ~/footage -i indexes/seed --features seed --window 3\n\n"
    "  vsearch ingest ~/footage -i indexes/clip --features onnx:clip-b32.onnx\n\n"
    "  vsearch ingest --from-features feats/ --rate 1 --videos ~/footage -i indexes/r50\n\n"
    "  vsearch ingest ~/footage -i shards.json --ray-address auto   (a Ray cluster, into shards)"
)
@_exits
def ingest(
    paths: Optional[List[Path]] = typer.Argument(
        None, metavar="PATH", help="Video files or folders (searched recursively)."
    ),
    index: Optional[List[Path]] = IndexesOpt,
    features: Optional[str] = typer.Option(
        None, "--features",
        help='New index only: v2 (default), seed, or onnx:MODEL.onnx (an image model; pip install "vsearch[onnx]").',
    ),
    from_features: Optional[List[Path]] = FromFeaturesOpt,
    layout: Optional[str] = LayoutOpt, rate: Optional[str] = RateOpt, clip_seconds: Optional[float] = ClipOpt,
    stack: Optional[int] = StackOpt, step: Optional[int] = StepOpt, frame_rate: Optional[float] = FrameRateOpt,
    videos: Optional[Path] = typer.Option(None, "--videos", help="With --from-features: name hits by the videos here."),
    block_seconds: Optional[float] = typer.Option(None, "--block", help="New index only: block seconds [0.5]."),
    window_blocks: Optional[int] = typer.Option(None, "--window", help="New index only: blocks per window [3]."),
    size: Optional[str] = typer.Option(None, "--size", help="New index only: working resolution WxH [128x96]."),
    analysis_fps: Optional[float] = typer.Option(None, "--fps", help="New index only: analysis frame rate [10]."),
    decoder: Optional[str] = typer.Option(
        None, "--decoder", help="New index only: pyav (default, FFmpeg) or decord. Queries use the index's."
    ),
    device: str = DeviceOpt,
    decode_timeout: float = TimeoutOpt,
    max_pixels: Optional[str] = MaxPixelsOpt,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output (errors are still shown)."),
    as_json: bool = JsonOpt,
    use_ray: bool = RayOpt,
    ray_address: Optional[str] = RayAddressOpt,
) -> None:
    """Add videos to an index (created if missing). Already indexed content is skipped.

    Index settings are fixed when the index is created; giving different ones for an
    existing index is refused. A damaged or truncated file is indexed as far as it
    plays and reported PARTIAL (exit code 0); a file that cannot be played at all is
    reported FAILED (exit code 2, the other files are still indexed), and so is one
    whose frames are larger than --max-pixels.

    With several --index (or a manifest) each file goes to one shard, by its content
    hash. With --ray, Ray tasks decode the files across a cluster while this process
    alone commits them, in order; run it again after an interruption to go on.
    """
    from .library.settings import plan_ingest
    from .library.sharded import open_library

    indexes = _index_paths(index)
    timing = dict(rate=rate, clip_seconds=clip_seconds, stack=stack, step=step, frame_rate=frame_rate)
    plan = plan_ingest(indexes, paths=paths or (), from_features=from_features or (), layout=layout, timing=timing,
                       videos=videos, features=features, size=size, block_seconds=block_seconds, decoder=decoder,
                       window_blocks=window_blocks, analysis_fps=analysis_fps, ray=bool(use_ray or ray_address),
                       max_pixels=max_pixels)
    reader = None
    if use_ray or ray_address:
        from .cluster import RayReader

        reader = RayReader.connected(ray_address)  # a cluster that cannot be joined fails before any change
    with open_library(indexes, settings=plan.settings, create=True, device=device) as vindex, ingest_progress(
        len(plan.files), bar=not quiet and not as_json and sys.stderr.isatty(), problems=not as_json
    ) as report:
        if plan.reading is not None:
            results = vindex.add_features(plan.files, reading=plan.reading, progress=report)
        else:
            results = vindex.add(plan.files, progress=report, timeout=decode_timeout, reader=reader,
                                 max_pixels=plan.max_pixels)
        stats = vindex.stats()
    counts = ingest_summary(results, stats, ", ".join(map(str, indexes)), as_json=as_json, quiet=quiet)
    if counts["failed"]:
        raise typer.Exit(EXIT_PARTIAL)


@app.command(
    epilog="Examples:\n\n  vsearch query clip.mp4 --index indexes/footage -k 5\n\n"
    "  vsearch query a.mp4 b.mp4 --json > hits.jsonl\n\n"
    "  vsearch query ~/clips/ --csv > hits.csv      (every video in the folder)\n\n"
    "  vsearch query clip.mp4 --report report.html\n\n"
    "  vsearch query --from-features clip.npy --layout npy --rate 1\n\n"
    "  vsearch query clip.mp4 -i shard-a -i shard-b      (or -i shards.json; add --ray for actors)"
)
@_exits
def query(
    clips: Optional[List[Path]] = typer.Argument(
        None, metavar="CLIP", help="Query clips, or folders of them (searched recursively)."
    ),
    index: Optional[List[Path]] = IndexesOpt,
    k: int = typer.Option(5, "-k", "--top", min=1, help="Number of segments to return per clip."),
    min_score: Optional[float] = typer.Option(None, "--min-score", min=0.0, max=1.0, help="Hide hits scoring below this [0.85]."),
    device: str = DeviceOpt,
    as_json: bool = JsonOpt,
    as_csv: bool = typer.Option(False, "--csv", help="CSV output, one row per hit (one per clip without hits)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Text output: nothing for clips without hits, no "
                               "report line (errors are still shown)."),
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
        None, "--report", help="Write a visual report of every clip on one page: .html (or .png)."
    ),
    decoder: Optional[str] = typer.Option(
        None, "--decoder", help="Decoder for the clips; must be the index's (the default)."
    ),
    decode_timeout: float = TimeoutOpt,
    max_pixels: Optional[str] = MaxPixelsOpt,
    features: Optional[str] = typer.Option(
        None, "--features", help="The index's ONNX model, if moved: onnx:PATH (another model is refused)."
    ),
    from_features: Optional[List[Path]] = FromFeaturesOpt,
    layout: Optional[str] = LayoutOpt, rate: Optional[str] = RateOpt, clip_seconds: Optional[float] = ClipOpt,
    stack: Optional[int] = StackOpt, step: Optional[int] = StepOpt, frame_rate: Optional[float] = FrameRateOpt,
    use_ray: bool = typer.Option(
        False, "--ray", help="Serve each shard from a Ray actor and fan each search out to them (\"vsearch[ray]\")."
    ),
    ray_address: Optional[str] = RayAddressOpt,
) -> None:
    """Find the library segments each clip comes from.

    With several --index (or a manifest) every shard is searched and the hits
    merged by score: the same hits as one index holding all the videos.
    """
    from .decode import prestart
    from .library.settings import plan_query
    from .library.sharded import open_library
    from .search.clip import parse_speeds
    from .search.tuning import DEFAULT_MIN_SCORE

    prestart()  # the decoder process starts while the index opens
    threshold = DEFAULT_MIN_SCORE if min_score is None else min_score
    speed_list = parse_speeds(speeds)
    output = QueryOutput(as_json=as_json, as_csv=as_csv, min_score=threshold, quiet=quiet,
                         report=report)  # checks they agree
    if report is not None:
        from .report import start_report

        start_report(report)
    timing = dict(rate=rate, clip_seconds=clip_seconds, stack=stack, step=step, frame_rate=frame_rate)
    plan = plan_query(clips or (), from_features=from_features or (), layout=layout, timing=timing,
                      report=report is not None, max_pixels=max_pixels)
    if use_ray or ray_address:
        from .cluster import open_remote_shards

        vindex = open_remote_shards(_index_paths(index), address=ray_address, device=device)
    else:
        vindex = open_library(_index_paths(index), device=device)
    vindex.check_decoder(decoder)
    vindex.use_features(features)
    with vindex:
        for clip in plan.clips:
            try:
                if from_features:
                    result = vindex.query_features(clip, reading=plan.reading, k=k, min_score=threshold)
                else:
                    result = vindex.query(clip, k=k, min_score=threshold, mirrored=mirrored, speeds=speed_list,
                                          inset=inset, rotations=rotations, timeout=decode_timeout,
                                          max_pixels=plan.max_pixels)
            except VsearchError as exc:
                output.fail(clip, exc)
                continue
            output.answer(result)
        output.finish(vindex)
    if output.failures:
        raise typer.Exit(EXIT_PARTIAL)


@app.command(
    epilog="Examples:\n\n  vsearch features a.mp4 -o a.npz\n\n"
    "  vsearch features ~/footage -o feats/      (one .npz per video)\n\n"
    "  vsearch features a.mp4 b.mp4 -o all.h5 --features seed"
)
@_exits
def features(
    videos: List[Path] = typer.Argument(..., metavar="VIDEO", help="Video files or folders."),
    out: Path = typer.Option(..., "-o", "--out", help="Output: .npy, .npz, .h5 or a folder."),
    kind: str = typer.Option(
        "v2", "--features", help="v2 (cells), seed for the original 7-D per-block output, or onnx:MODEL.onnx."
    ),
    block_seconds: float = typer.Option(0.5, "--block", help="Block length in seconds."),
    device: str = DeviceOpt,
) -> None:
    """Export per-block descriptors with their timestamps, without building an index."""
    from .featurefiles.write import export_videos

    for path in export_videos(videos, out, features=kind, block_seconds=block_seconds, device=device):
        typer.echo(f"wrote {show(str(path))}")


def _on_index(index: Optional[Path], action, **open_args):
    """Open the index and run ``action(index)``."""
    from .library.index import VideoIndex

    with VideoIndex.open(_index_path(index), device="cpu", **open_args) as vindex:
        return action(vindex)


@app.command(
    epilog="Examples:\n\n  vsearch stats --index indexes/footage\n\n"
    "  VSEARCH_INDEX=indexes/footage vsearch stats --json\n\n"
    "  vsearch stats -i shards.json      (each shard, then the library)"
)
@_exits
def stats(index: Optional[List[Path]] = IndexesOpt, as_json: bool = JsonOpt) -> None:
    """Show what an index holds and how it was built (each shard and the total for several)."""
    from .library.sharded import open_library

    with open_library(_index_paths(index), device="cpu") as library:
        info = library.stats()
    typer.echo(json.dumps(info.to_dict()) if as_json else stats_text(info))


@app.command(
    "list",
    epilog="Examples:\n\n  vsearch list --index indexes/footage\n\n"
    "  vsearch list --index indexes/footage --json > videos.json",
)
@_exits
def list_videos(index: Optional[Path] = IndexOpt, as_json: bool = JsonOpt) -> None:
    """List the indexed videos."""
    records = _on_index(index, lambda ix: ix.videos())
    typer.echo(json.dumps([r.to_dict() for r in records]) if as_json else list_text(records, str(_index_path(index))))


@app.command(
    epilog="Examples:\n\n  vsearch remove ~/footage/old.mp4 --index indexes/footage\n\n"
    "  vsearch remove a.mp4 b.mp4 --index indexes/footage"
)
@_exits
def remove(videos: List[Path] = typer.Argument(..., metavar="VIDEO", help="Indexed video paths."), index: Optional[Path] = IndexOpt) -> None:
    """Remove videos from an index; other videos keep their ids."""
    removed = _on_index(index, lambda ix: ix.remove(videos))
    for r in removed:
        typer.echo(f"removed {show(r.path)}")


@app.command(
    epilog="Examples:\n\n  vsearch verify --index indexes/footage\n\n"
    "  vsearch verify --index indexes/footage --repair\n\n"
    "  vsearch verify --index indexes/footage --json || echo inconsistent"
)
@_exits
def verify(
    index: Optional[Path] = IndexOpt, as_json: bool = JsonOpt,
    repair: bool = typer.Option(False, "--repair", help="Restore a repairable vector file (takes the writer lock)."),
) -> None:
    """Check that the vector file agrees with the metadata store: exit 1 if it does not
    (repairable: the metadata store restores it), 6 if the metadata store is damaged.

    A pure check unless --repair: every other command that opens the index repairs
    the vector file from the metadata store; verify only reports what it finds.
    """
    report = _on_index(index, lambda ix: ix.verify(repair=repair), repair=False)
    typer.echo(json.dumps(report.to_dict()) if as_json else verify_text(report, str(_index_path(index))))
    if not report.ok:
        raise typer.Exit(IndexCorruptError.exit_code if report.damage else 1)


@app.command(
    epilog="Examples:\n\n  vsearch rebuild --index indexes/footage\n\n"
    "  vsearch rebuild --index indexes/footage --index-type IVF1024,Flat\n\n"
    "  vsearch rebuild --index indexes/old --drop-missing   (older vsearch)"
)
@_exits
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
    from .library.upgrade import needs_upgrade, upgrade_index

    path = _index_path(index)
    if needs_upgrade(path):
        typer.echo(f"{show(str(path))}: written by an older vsearch; decoding its videos again", err=True)
        results = upgrade_index(path, device=device, drop_missing=drop_missing, timeout=decode_timeout,
                                progress=print_problem)
        kept = sum(r.ok for r in results)
        typer.echo(f"rebuilt {kept} videos in the current format ({len(results) - kept} left out)")
        if index_type is None:
            return
    total, kind = _on_index(index, lambda ix: (ix.rebuild(index_type=index_type), ix.index_type))
    typer.echo(f"rebuilt {total} vectors ({kind})")


@app.command(
    epilog="Examples:\n\n  vsearch serve --index indexes/footage --allow-dir ~/footage\n\n"
    "  VSEARCH_TOKEN=s3cret vsearch serve -i indexes/footage --host 0.0.0.0\n\n"
    "  curl -F clip=@clip.mp4 http://127.0.0.1:8000/query"
)
@_exits
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
    max_pixels: Optional[str] = MaxPixelsOpt,
    max_connections: int = typer.Option(256, "--max-connections", min=1, help="Connections held at once; past it "
                                        "the oldest one still sending its request is closed (503 when all are busy)."),
    header_timeout: float = typer.Option(10.0, "--header-timeout", min=0.1, help="Seconds allowed to send headers."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, max=64, help="Queries run at once, each with a "
                                          "decoder process kept started [CPU count; at most 64]."),
    upload_dir: Optional[Path] = typer.Option(None, "--upload-dir", help="Where uploads are written while queried "
                                              "(removed after each request) [system temp]."),
    device: str = DeviceOpt,
    decode_timeout: float = TimeoutOpt,
) -> None:
    """Serve an index over HTTP: queries and additions at the same time (needs the 'serve' extra).

    The index stays open; queries run in a pool of threads, additions and removals
    are jobs run one at a time. The server holds the writer lock only while a job
    runs: a `vsearch ingest` in another process meanwhile is refused with the lock
    error (exit 4), and what another process commits is picked up for queries.
    README's "Running it in production" lists every limit.
    """
    from .library.settings import parse_max_pixels
    from .server import ServerConfig, require_extra, serve as run_server

    require_extra()
    config = ServerConfig(
        index=_index_path(index), host=host, port=port, token=token, allow_dirs=tuple(allow_dirs),
        max_upload_bytes=int(max_upload_mb * (1 << 20)), max_clip_seconds=max_clip_seconds,
        max_pixels=parse_max_pixels(max_pixels), max_connections=max_connections, header_timeout=header_timeout,
        upload_dir=upload_dir, device=device, decode_timeout=decode_timeout,
        **({"query_workers": workers} if workers else {}),
    )
    run_server(config)


#: Exit code for a bug (an exception vsearch did not raise on purpose).
EXIT_INTERNAL = 70


def run() -> None:
    """Console-script entry point: every failure gets one line (a traceback with -v).

    Usage errors (a bad option value, a missing argument) exit with 1, like every
    other error, instead of click's framed box and code 2 (which means "some
    inputs failed" here).
    """
    try:
        code = app(standalone_mode=False)
    except typer.TyperException as exc:  # click's usage errors
        message = exc.format_message()
        if message:  # (empty when no arguments made click print the help)
            context = getattr(exc, "ctx", None)
            print_error(message + (f" (see '{context.command_path} --help')" if context is not None else ""))
        sys.exit(1)
    except typer.Abort:
        typer.echo("vsearch: aborted", err=True)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the last line of defence for users
        if logging.getLogger().isEnabledFor(logging.DEBUG):
            raise
        typer.echo(f"vsearch: internal error: {type(exc).__name__}: {show(str(exc))} (run with --verbose for details)",
                   err=True)
        sys.exit(EXIT_INTERNAL)
    sys.exit(code or 0)
