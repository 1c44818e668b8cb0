"""Command-line interface: parse, call the library, turn typed errors into exit codes."""

from __future__ import annotations

import csv
import json
import logging
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import List, Optional

import typer
from typer.core import TyperGroup

from . import __version__
from .decode.source import DEFAULT_TIMEOUT
from .errors import VsearchError

class _Group(TyperGroup):
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


app = typer.Typer(
    cls=_Group,
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
JsonOpt = typer.Option(False, "--json", help="Machine-readable JSON output.")
LayoutOpt = typer.Option(None, "--layout", help="With --from-features: npz, npy or h5 [the files' suffix].")
RateOpt = typer.Option(
    None, "--rate", help="With --from-features: features per second where a file has no time axis [1], or 'uniform' "
    "(spread over the file's duration).",
)


def _index_path(index: Optional[Path]) -> Path:
    from .index import default_index_path

    return index if index is not None else default_index_path()


def _index_paths(indexes: Optional[List[Path]]) -> List[Path]:
    """``--index`` values (folders or manifests), or the default index."""
    return list(indexes) if indexes else [_index_path(None)]


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
def _progress(enabled: bool, total: int, unit: str):
    """A rich progress bar on stderr, or nothing (not a TTY, --quiet, --json)."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress

    console = Console(stderr=True)
    with Progress(*progress_columns(console.width, unit), console=console, transient=False) as bar:
        yield bar, bar.add_task("starting", total=total, video_s=0.0, rate=0.0)


def _requested_settings(block_seconds, window_blocks, size, analysis_fps, decoder) -> dict:
    """The index settings given on the command line (only those given)."""
    given = {
        k: v
        for k, v in dict(block_seconds=block_seconds, window_blocks=window_blocks,
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
    "  vsearch ingest ~/footage -i indexes/seed --features seed --window 3\n\n"
    "  vsearch ingest ~/footage -i indexes/clip --features onnx:clip-b32.onnx\n\n"
    "  vsearch ingest --from-features feats/ --layout npy --rate 1 -i indexes/r50\n\n"
    "  vsearch ingest ~/footage -i shards.json --ray-address auto   (a Ray cluster, into shards)"
)
def ingest(
    paths: Optional[List[Path]] = typer.Argument(
        None, metavar="PATH", help="Video files or folders (searched recursively)."
    ),
    index: Optional[List[Path]] = IndexesOpt,
    features: Optional[str] = typer.Option(
        None, "--features",
        help='New index only: v1 (default), seed, or onnx:MODEL.onnx (an image model; pip install "vsearch[onnx]").',
    ),
    from_features: Optional[Path] = typer.Option(
        None, "--from-features", help="Index features computed by another tool: a file or folder of .npz/.npy/.h5."
    ),
    layout: Optional[str] = LayoutOpt,
    rate: Optional[str] = RateOpt,
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
    use_ray: bool = RayOpt,
    ray_address: Optional[str] = RayAddressOpt,
) -> None:
    """Add videos to an index (created if missing). Already indexed content is skipped.

    Index settings are fixed when the index is created; giving different ones for an
    existing index is refused. A damaged or truncated file is indexed as far as it
    plays and reported PARTIAL (exit code 0); a file that cannot be played at all is
    reported FAILED (exit code 2, the other files are still indexed).

    With several --index (or a manifest) each file goes to one shard, by its content
    hash. With --ray, Ray tasks decode the files across a cluster while this process
    alone commits them, in order; run it again after an interruption to go on.
    """
    from .decode import iter_video_files
    from .extractors import feature_settings
    from .featurefiles.read import FeatureRate, feature_files, imported_settings
    from .shards import library_exists, open_library

    indexes = _index_paths(index)
    path = ", ".join(map(str, indexes))
    try:
        if bool(paths) == (from_features is not None):
            raise VsearchError("give video files or folders, or --from-features DIR (one of them)")
        if from_features is None and (layout is not None or rate is not None):
            raise VsearchError("--layout and --rate go with --from-features")
        settings = _requested_settings(block_seconds, window_blocks, size, analysis_fps, decoder)
        if features is not None:
            kind = feature_settings(features)
            if size is not None or library_exists(indexes):  # the model's input size is only a default
                kind = {k: v for k, v in kind.items() if k not in ("width", "height")}
            settings.update(kind)
        if from_features is not None:
            feature_rate = FeatureRate.parse(rate)
            files = feature_files([from_features])
            if not library_exists(indexes):
                settings.update(imported_settings(files, layout=layout, rate=feature_rate))
        else:
            files = list(iter_video_files(paths))
        if not files and not library_exists(indexes):
            # Nothing to add: an empty index would only hide the mistake.
            raise VsearchError(f"no video files in {', '.join(map(str, paths or [from_features]))}; "
                               "no index created")
        reader = None
        if use_ray or ray_address:
            if from_features is not None:
                raise VsearchError("--ray decodes videos; --from-features reads no video")
            from .cluster import RayReader

            reader = RayReader.connected(ray_address)  # a cluster that cannot be joined fails before any change
        with open_library(indexes, settings=settings, create=True, device=device) as vindex, _progress(
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

            if from_features is not None:
                results = vindex.add_features(files, layout=layout, rate=feature_rate, progress=report)
            else:
                results = vindex.add(files, progress=report, timeout=decode_timeout, reader=reader)
            stats = vindex.stats()
    except VsearchError as exc:
        raise _fail(exc)
    counts = {s: sum(r.status == s for r in results)
              for s in ("added", "replaced", "partial", "moved", "skipped", "failed")}
    if as_json:
        typer.echo(json.dumps({"results": [r.to_dict() for r in results], "summary": counts}))
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
    "  vsearch query ~/clips/ --csv > hits.csv      (every video in the folder)\n\n"
    "  vsearch query clip.mp4 --report report.html\n\n"
    "  vsearch query --from-features clip.npy --layout npy --rate 1\n\n"
    "  vsearch query clip.mp4 -i shard-a -i shard-b      (or -i shards.json; add --ray for actors)"
)
def query(
    clips: Optional[List[Path]] = typer.Argument(
        None, metavar="CLIP", help="Query clips, or folders of them (searched recursively)."
    ),
    index: Optional[List[Path]] = IndexesOpt,
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
        None, "--report", help="Write a visual report of every clip on one page: .html (or .png)."
    ),
    decoder: Optional[str] = typer.Option(
        None, "--decoder", help="Decoder for the clips; must be the index's (the default)."
    ),
    decode_timeout: float = TimeoutOpt,
    features: Optional[str] = typer.Option(
        None, "--features", help="The index's ONNX model, if moved: onnx:PATH (another model is refused)."
    ),
    from_features: Optional[List[Path]] = typer.Option(
        None, "--from-features", help="Query with a clip's features computed by another tool (plain reading only)."
    ),
    layout: Optional[str] = LayoutOpt,
    rate: Optional[str] = RateOpt,
    use_ray: bool = typer.Option(
        False, "--ray", help="Serve each shard from a Ray actor and fan each search out to them (\"vsearch[ray]\")."
    ),
    ray_address: Optional[str] = RayAddressOpt,
) -> None:
    """Find the library segments each clip comes from.

    With several --index (or a manifest) every shard is searched and the hits
    merged by score: the same hits as one index holding all the videos.
    """
    from .decode import iter_video_files, prestart
    from .search.clip import DEFAULT_SPEEDS, check_speeds
    from .featurefiles.read import FeatureRate
    from .query import DEFAULT_MIN_SCORE
    from .shards import open_library

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
    if report is not None:
        from .report import check_report_path

        try:
            check_report_path(report)
        except VsearchError as exc:
            raise _fail(exc)
        # An old report must not pass for this run's, whatever happens below.
        report.unlink(missing_ok=True)
    try:
        if bool(clips) == bool(from_features):
            raise VsearchError("give query clips, or --from-features FILE (one of them)")
        if not from_features and (layout is not None or rate is not None):
            raise VsearchError("--layout and --rate go with --from-features")
        if from_features and report is not None:
            raise VsearchError("--report shows the clip's frames: it needs a video clip, not --from-features")
        feature_rate = FeatureRate.parse(rate)
        inputs = list(from_features) if from_features else list(iter_video_files(clips))
        if not inputs:
            raise VsearchError(f"no video files in {', '.join(map(str, clips))}")
        if use_ray or ray_address:
            from .cluster import open_remote_shards

            vindex = open_remote_shards(_index_paths(index), address=ray_address, device=device)
        else:
            vindex = open_library(_index_paths(index), device=device)
        vindex.check_decoder(decoder)
        vindex.use_features(features)
    except VsearchError as exc:
        raise _fail(exc)
    writer = csv.writer(sys.stdout, lineterminator="\n") if as_csv else None
    if writer:
        writer.writerow(_CSV_FIELDS)
    answered, failures = [], []
    with vindex:
        for clip in inputs:
            try:
                if from_features:
                    result = vindex.query_features(clip, layout=layout, rate=feature_rate, k=k, min_score=threshold)
                else:
                    result = vindex.query(clip, k=k, min_score=threshold, mirrored=mirrored, speeds=speed_list,
                                          inset=inset, rotations=rotations, timeout=decode_timeout)
            except VsearchError as exc:
                typer.echo(f"vsearch: error: {_show(str(exc))}", err=True)
                failures.append((clip, str(exc)))
                continue
            answered.append(result)
            _print_result(result, as_json=as_json, writer=writer)
        if report is not None:
            from .report import write_report

            try:
                write_report(vindex, answered, report, threshold=threshold, failures=failures)
            except VsearchError as exc:
                raise _fail(exc)
            typer.echo(f"report: {_show(str(report))} ({len(answered)} clip{'' if len(answered) == 1 else 's'})",
                       err=True)
    if failures:
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
    "  vsearch features ~/footage -o feats/      (one .npz per video)\n\n"
    "  vsearch features a.mp4 b.mp4 -o all.h5 --features seed"
)
def features(
    videos: List[Path] = typer.Argument(..., metavar="VIDEO", help="Video files or folders."),
    out: Path = typer.Option(..., "-o", "--out", help="Output: .npy, .npz, .h5 or a folder."),
    kind: str = typer.Option(
        "v1", "--features", help="v1, seed for the original 7-D per-block output, or onnx:MODEL.onnx."
    ),
    block_seconds: float = typer.Option(0.5, "--block", help="Block length in seconds."),
    device: str = DeviceOpt,
) -> None:
    """Export per-block descriptors with their timestamps, without building an index."""
    from .config import IndexConfig
    from .decode import iter_video_files
    from .device import resolve_device
    from .featurefiles.write import export_features
    from .extractors import feature_settings

    try:
        config = IndexConfig(**feature_settings(kind), block_seconds=block_seconds)
        written = export_features(list(iter_video_files(videos)), out, config, resolve_device(device))
    except VsearchError as exc:
        raise _fail(exc)
    for path in written:
        typer.echo(f"wrote {_show(str(path))}")


def _hms(seconds: float) -> str:
    """``h:mm:ss.mmm``: to the millisecond, hours without padding (``1:02:05.500``)."""
    ms = int(round(seconds * 1000))
    return f"{ms // 3_600_000}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def _on_index(index: Optional[Path], action, **open_args):
    """Open the index, run ``action(index)``, turn vsearch errors into an exit code."""
    from .index import VideoIndex

    try:
        with VideoIndex.open(_index_path(index), device="cpu", **open_args) as vindex:
            return action(vindex)
    except VsearchError as exc:
        raise _fail(exc)


@app.command(
    epilog="Examples:\n\n  vsearch stats --index indexes/footage\n\n"
    "  VSEARCH_INDEX=indexes/footage vsearch stats --json\n\n"
    "  vsearch stats -i shards.json      (each shard, then the library)"
)
def stats(index: Optional[List[Path]] = IndexesOpt, as_json: bool = JsonOpt) -> None:
    """Show what an index holds and how it was built (each shard and the total for several)."""
    from .models import LibraryStats
    from .shards import open_library

    try:
        with open_library(_index_paths(index), device="cpu") as library:
            info = library.stats()
    except VsearchError as exc:
        raise _fail(exc)
    if as_json:
        typer.echo(json.dumps(info.to_dict()))
        return
    if not isinstance(info, LibraryStats):
        typer.echo(_index_stats_text(info))
        return
    for number, shard in enumerate(info.shards):
        typer.echo(f"shard {number}    {_show(shard.path)}: {shard.videos} videos, {_hms(shard.duration_s)}, "
                   f"{shard.vectors} vectors ({shard.index_type}), {shard.bytes / 1e6:.1f} MB")
    typer.echo(f"library    {len(info.shards)} shards: {info.videos} videos"
               + (f" ({info.partial_videos} partial)" if info.partial_videos else "")
               + f", {_hms(info.duration_s)}, {info.vectors} vectors, {info.bytes / 1e6:.1f} MB")
    typer.echo(_settings_text(info.shards[0].config))  # the same for every shard


def _index_stats_text(info) -> str:
    return (
        f"index      {_show(info.path)}\n"
        f"videos     {info.videos}" + (f" ({info.partial_videos} partial: see 'vsearch list')" if info.partial_videos else "") + "\n"
        f"duration   {_hms(info.duration_s)}\n"
        f"vectors    {info.vectors} x {info.dim} ({info.index_type})\n"
        f"on disk    {info.bytes / 1e6:.1f} MB\n"
        + _settings_text(info.config) + "\n"
        f"created    {info.created}\n"
        f"updated    {info.updated}"
    )


def _settings_text(cfg: dict) -> str:
    return (
        f"features   {cfg['features']} (version {cfg['feature_version']}), block {cfg['block_seconds']} s, "
        f"window {cfg['window_blocks']} blocks, {cfg['width']}x{cfg['height']} @ {cfg['analysis_fps']} fps"
        # The pooling grid and normalisation are the kernels' own; a model has neither.
        + (f", grid {cfg['grid'][0]}x{cfg['grid'][1]}, normalization {cfg['normalization']}"
           if cfg["features"] in ("v1", "seed") else "") + "\n"
        + (f"model      {_show(cfg['model_path'])} (hash {cfg['model_hash'][:12]}), "
           f"{cfg['embedding_dim']} dimensions per block\n" if cfg.get("model_hash") else "")
        + (f"imported   {cfg['embedding_dim']} dimensions per block\n" if cfg["features"] == "imported" else "") +
        f"decoder    {cfg['decoder']} (index format {cfg['format_version']})"
    )


@app.command(
    "list",
    epilog="Examples:\n\n  vsearch list --index indexes/footage\n\n"
    "  vsearch list --index indexes/footage --json > videos.json",
)
def list_videos(index: Optional[Path] = IndexOpt, as_json: bool = JsonOpt) -> None:
    """List the indexed videos."""
    records = _on_index(index, lambda ix: ix.videos())
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in records]))
        return
    for r in records:
        typer.echo(f"{r.id:>6}  {_hms(r.duration_s)}  {r.blocks:>7} blocks  {_show(r.path)}"
                   + (f"  PARTIAL ({r.reason})" if r.partial else ""))


@app.command(
    epilog="Examples:\n\n  vsearch remove ~/footage/old.mp4 --index indexes/footage\n\n"
    "  vsearch remove a.mp4 b.mp4 --index indexes/footage"
)
def remove(videos: List[Path] = typer.Argument(..., metavar="VIDEO", help="Indexed video paths."), index: Optional[Path] = IndexOpt) -> None:
    """Remove videos from an index; other videos keep their ids."""
    removed = _on_index(index, lambda ix: ix.remove(videos))
    for r in removed:
        typer.echo(f"removed {_show(r.path)}")


@app.command(
    epilog="Examples:\n\n  vsearch verify --index indexes/footage\n\n"
    "  vsearch verify --index indexes/footage --json || echo damaged"
)
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
    "  vsearch rebuild --index indexes/old --drop-missing   (older vsearch)"
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
    "  VSEARCH_TOKEN=s3cret vsearch serve -i indexes/footage --host 0.0.0.0\n\n"
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
            hint = f" (see '{context.command_path} --help')" if context is not None else ""
            typer.echo(f"vsearch: error: {_show(message)}{hint}", err=True)
        sys.exit(1)
    except typer.Abort:
        typer.echo("vsearch: aborted", err=True)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the last line of defence for users
        if logging.getLogger().isEnabledFor(logging.DEBUG):
            raise
        typer.echo(f"vsearch: internal error: {type(exc).__name__}: {_show(str(exc))} (run with --verbose for details)",
                   err=True)
        sys.exit(EXIT_INTERNAL)
    sys.exit(code or 0)
