"""The HTTP API: a FastAPI application over a :class:`LiveIndex`, served by uvicorn.

Queries run in a pool of ``query_workers`` threads (decoding runs in decoder
processes, as many kept started as there are threads; descriptors and FAISS release
the GIL), so the event loop only moves bytes. Writes go to the :class:`JobRunner`'s
single thread. Errors are the CLI's one-line messages with a 4xx status (see
:data:`STATUS_OF`); a bug answers 500 with one line and the traceback goes to the
server's log only.

Before a request reaches a route it has passed, outermost first: the ``Host`` check
(loopback), the token (:class:`~.guard.TokenGuard`, before any body byte is read),
and the body's size and pace (:class:`~.guard.BodyLimit`); the connection itself is
bounded by :mod:`.connections`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Optional

from fastapi import APIRouter, Depends, FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPBearer
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.staticfiles import StaticFiles

from .. import __version__
from ..decode.source import keep_warm
from ..errors import (
    ClipTooLongError,
    ConfigMismatchError,
    IndexCorruptError,
    IndexLockedError,
    NotIndexedError,
    PathNotAllowedError,
    UploadTooLargeError,
    VideoError,
    VsearchError,
)
from ..library.index import VideoIndex
from ..lock import WriterLock
from ..models import IndexStats, QueryResult, VideoRecord
from ..search.tuning import DEFAULT_MIN_SCORE
from .config import BODY_IDLE_TIMEOUT, MAX_JSON_BYTES, MAX_PATHS, ServerConfig
from .connections import connection_cap, listen, quiet_accept_errors, raise_fd_limit, uvicorn_settings
from .guard import BodyLimit, TokenGuard, size_text
from .jobs import Job, JobRunner
from .live import LiveIndex
from .security import AllowedRoots, check_bind, is_loopback, loopback_host_names, shown_path
from .uploads import UploadFolder, upload_route

log = logging.getLogger(__name__)

#: HTTP status of each error class (the first that matches).
STATUS_OF: tuple[tuple[type[VsearchError], int], ...] = (
    (PathNotAllowedError, 403),
    (NotIndexedError, 404),
    (IndexLockedError, 409),
    (UploadTooLargeError, 413),
    (ClipTooLongError, 413),
    (VideoError, 422),
    (ConfigMismatchError, 400),
    (IndexCorruptError, 500),
    (VsearchError, 400),
)

#: Room for the form fields and multipart framing around a clip upload (the clip's
#: own limit is checked as it is written: this only bounds what comes with it).
_FORM_ROOM = 1 << 20

#: Form fields of ``POST /query`` (clip, path, k, min_score), with room for stray ones.
_QUERY_FIELDS = 8

#: Bytes of one form field that is not a file (a path is refused past MAX_PATH_BYTES).
_FIELD_BYTES = 64 << 10

#: Characters of a request path quoted in the log.
_LOGGED_PATH = 200


class ErrorBody(BaseModel):
    """Every error: one line, as the command line prints it."""

    detail: str


class Health(BaseModel):
    status: str = "ok"
    version: str = __version__


class AddVideos(BaseModel):
    """Video files or folders to add."""

    paths: list[str] = Field(min_length=1, max_length=MAX_PATHS, examples=[["news/2024-06-01.mp4", "archive/"]],
                             description="Files or folders (searched recursively) under an allowed folder (a relative "
                                         "one is taken from the first --allow-dir).")


def _errors(*codes: int) -> dict:
    return {code: {"model": ErrorBody} for code in codes}


def status_of(exc: VsearchError) -> int:
    return next(code for cls, code in STATUS_OF if isinstance(exc, cls))


class Server:
    """The state behind the routes: the live index, the job runner, the query pool."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.roots = AllowedRoots(list(config.allow_dirs))
        index = VideoIndex.open(config.index, create=True, device=config.device)
        try:
            self.live = LiveIndex(index, refresh_interval=config.refresh_interval)
            self.jobs = JobRunner(self.live, decode_timeout=config.decode_timeout, max_pixels=config.max_pixels)
        except BaseException:
            index.close()
            raise
        self.pool = ThreadPoolExecutor(max_workers=config.query_workers, thread_name_prefix="vsearch-query")
        self.uploads = UploadFolder(Path(config.upload_dir) if config.upload_dir else Path(tempfile.gettempdir()))
        # A decoder process per query thread, started now and kept: a burst of queries
        # waits for no interpreter to start and import PyAV.
        self._stop_warm_decoders = keep_warm(config.query_workers)

    async def in_pool(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    def query(self, clip: Path, k: int, min_score: float) -> QueryResult:
        with self.live.reading() as view:  # one view for the whole query, whatever is committed meanwhile
            return view.query(clip, k=k, min_score=min_score, timeout=self.config.decode_timeout,
                              max_duration=self.config.max_clip_seconds, max_pixels=self.config.max_pixels)

    def videos(self) -> list[VideoRecord]:
        with self.live.reading() as view:
            return view.videos()

    def stats(self) -> IndexStats:
        with self.live.reading() as view:
            return view.stats()

    def check_writable(self) -> None:
        """Fail now, rather than in the job, if another process is writing the index."""
        if self.jobs.busy():
            return  # our own job holds it, or will wait its turn
        probe = WriterLock(self.live.index.path)
        probe.acquire()
        probe.release()

    def close(self) -> None:
        self.jobs.close()
        self.pool.shutdown(wait=True, cancel_futures=True)
        self._stop_warm_decoders()
        self.live.close()
        self.uploads.close()


def _body_limit(config: ServerConfig):
    """Bytes of body each request may send (a clip upload's, or a little JSON), and
    what a larger one is told."""
    upload = (config.max_upload_bytes + _FORM_ROOM, f"upload larger than the {size_text(config.max_upload_bytes)} "
                                                    "allowed (--max-upload-mb)")
    other = (MAX_JSON_BYTES, f"request body larger than the {size_text(MAX_JSON_BYTES)} allowed")

    def limit_of(scope) -> tuple[int, str]:
        return upload if scope["path"] == "/query" else other

    return limit_of


def _add_docs(app: FastAPI) -> None:
    """The API page, Swagger UI from the ``swagger-ui-bundle-v2`` package (no CDN: it
    works offline), behind the token like every other page."""
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/docs/assets", StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url, title=f"{app.title} API",
                                   swagger_js_url="/docs/assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs/assets/swagger-ui.css",
                                   swagger_favicon_url="/docs/assets/favicon-32x32.png")


def create_app(config: ServerConfig) -> FastAPI:
    """The application for ``config``; opens (or creates) the index now, so a bad
    index fails here, before anything listens."""
    server = Server(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        quiet_accept_errors(asyncio.get_running_loop())
        try:
            yield
        finally:
            await run_in_threadpool(server.close)

    app = FastAPI(
        title="vsearch",
        version=__version__,
        description="Find which library video, and which seconds, a clip comes from. Every endpoint but "
                    "/health needs `Authorization: Bearer TOKEN` when the server has a token.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.server = server
    # Added innermost first: a request meets the Host check, then the token, then the body's limits.
    app.add_middleware(BodyLimit, limit_of=_body_limit(config), idle_timeout=BODY_IDLE_TIMEOUT)
    if config.token is not None:
        app.add_middleware(TokenGuard, token=config.token)
    if is_loopback(config.host):
        # A web page the user visits must not reach a loopback server by a DNS name of its own.
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=loopback_host_names(config.host))

    @app.exception_handler(VsearchError)
    async def _vsearch_error(request: Request, exc: VsearchError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status_of(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = [f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'request'}: {e.get('msg')}" for e in exc.errors()]
        return JSONResponse({"detail": "; ".join(dict.fromkeys(parts))}, status_code=422)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.error("internal error on %s %s", request.method, shown_path(request.url.path, _LOGGED_PATH), exc_info=exc)
        return JSONResponse({"detail": f"internal error: {type(exc).__name__} (details in the server's log)"},
                            status_code=500)

    _add_docs(app)
    # The token is checked by TokenGuard before the body is read; this only documents it.
    bearer = HTTPBearer(auto_error=False, description="The server's --token, when it has one.")

    @app.get("/health", response_model=Health, tags=["server"])
    async def health() -> Health:
        """Whether the server is up (no token needed, tells nothing about the index)."""
        return Health()

    api = APIRouter(dependencies=[Depends(bearer)], responses=_errors(401))
    uploads = APIRouter(dependencies=[Depends(bearer)], responses=_errors(401), route_class=upload_route(
        server.uploads.path, max_file_bytes=config.max_upload_bytes, max_fields=_QUERY_FIELDS,
        max_field_bytes=_FIELD_BYTES))

    @uploads.post("/query", response_model=QueryResult, tags=["search"], responses=_errors(403, 408, 413, 422))
    async def query(
        clip: Optional[UploadFile] = File(None, description="The clip, uploaded."),
        path: Optional[str] = Form(None, description="Or a clip's path under an allowed folder (a relative one is "
                                                     "taken from the first --allow-dir)."),
        k: int = Form(5, ge=1, le=1000, description="Segments to return."),
        min_score: float = Form(DEFAULT_MIN_SCORE, ge=0.0, le=1.0, description="Hide hits scoring below this."),
    ) -> dict:
        """Find the library segments a clip comes from; the JSON of `vsearch query --json`."""
        if (clip is None) == (path is None):
            raise HTTPException(422, "give either a clip upload (field 'clip') or a server-side path (field 'path')")
        if path is not None:
            real, shown = await run_in_threadpool(server.roots.resolve_file, path), shown_path(path)
        else:  # written to the upload folder as it arrived; deleted with the request
            real, shown = Path(clip.file.name), shown_path(clip.filename or "upload")
        try:
            result = await server.in_pool(server.query, real, k, min_score)
        except VideoError as exc:  # named as the client named it
            raise type(exc)(shown, exc.reason) from None
        return dataclasses.replace(result, query=shown).to_dict()

    @api.post("/videos", status_code=202, response_model=Job, tags=["library"], responses=_errors(403, 409, 413, 422))
    async def add_videos(body: AddVideos) -> Job:
        """Add video files or folders; returns the job (see `GET /jobs/{id}`)."""
        files = await run_in_threadpool(server.roots.expand, body.paths)
        if not files:
            raise HTTPException(422, f"{', '.join(map(shown_path, body.paths))}: no video files there")
        await run_in_threadpool(server.check_writable)
        return server.jobs.add(files)

    @api.get("/videos", response_model=list[VideoRecord], tags=["library"])
    async def list_videos() -> list[dict]:
        """The indexed videos, in id order."""
        return [r.to_dict() for r in await run_in_threadpool(server.videos)]  # may re-read the index

    @api.delete("/videos/{video_id}", status_code=202, response_model=Job, tags=["library"],
                responses=_errors(404, 409))
    async def remove_video(video_id: int) -> Job:
        """Remove one video (other ids never change); returns the job."""
        record = next((r for r in await run_in_threadpool(server.videos) if r.id == video_id), None)
        if record is None:
            raise NotIndexedError(f"video {video_id}: not in the index")
        await run_in_threadpool(server.check_writable)
        return server.jobs.remove(record.path)

    @api.get("/jobs/{job_id}", response_model=Job, tags=["library"], responses=_errors(404))
    async def get_job(job_id: str) -> Job:
        """An addition's or removal's progress and per-file status."""
        job = server.jobs.get(job_id)
        if job is None:
            raise HTTPException(404, f"job {shown_path(job_id)}: no such job (jobs are kept in memory until the "
                                     "server stops)")
        return job

    @api.get("/stats", response_model=IndexStats, tags=["library"])
    async def stats() -> dict:
        """What the index holds and how it was built (`vsearch stats --json`)."""
        return (await run_in_threadpool(server.stats)).to_dict()

    app.include_router(uploads)
    app.include_router(api)
    return app


def serve(config: ServerConfig) -> None:
    """Check the settings, listen, open the index, and serve until interrupted."""
    import uvicorn

    check_bind(config.host, config.token)
    sock = listen(config.host, config.port)  # a port in use fails here, before the index is touched
    try:
        fd_limit = raise_fd_limit()
        # The decoders kept warm: one per query worker, and one more idle at most.
        connections = connection_cap(config.max_connections, fd_limit, decoders=config.query_workers + 1)
        app = create_app(config)
        stats = app.state.server.stats()
        print(f"vsearch serve: index {stats.path} ({stats.videos} videos) on http://{config.host}:{config.port}"
              f"{'' if config.token else ' (no token)'}; API at /docs", file=sys.stderr, flush=True)
        if connections < config.max_connections:
            print(f"vsearch serve: at most {connections} connections (--max-connections {config.max_connections}): "
                  f"the open-files limit is {fd_limit}", file=sys.stderr, flush=True)
        server = uvicorn.Server(uvicorn.Config(app, **uvicorn_settings(config, connections)))
        server.run(sockets=[sock])
    finally:
        sock.close()
