"""The HTTP API: a FastAPI application over a :class:`LiveIndex`, served by uvicorn.

Queries run in a pool of ``query_workers`` threads (decoding runs in decoder
processes, descriptors and FAISS release the GIL), so the event loop only moves
bytes. Writes go to the :class:`JobRunner`'s single thread. Errors are the CLI's
one-line messages with a 4xx status (see :data:`STATUS_OF`); a bug answers 500 with
one line and the traceback goes to the server's log only.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import re
import shutil
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Optional

from fastapi import APIRouter, Depends, FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.middleware.trustedhost import TrustedHostMiddleware

from .. import __version__
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
from .config import ServerConfig
from .jobs import Job, JobRunner
from .live import LiveIndex
from .security import AllowedRoots, check_bind, is_loopback, token_matches

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

#: Room for the multipart framing and form fields around an upload.
_FORM_OVERHEAD = 1 << 20


class ErrorBody(BaseModel):
    """Every error: one line, as the command line prints it."""

    detail: str


class Health(BaseModel):
    status: str = "ok"
    version: str = __version__


class AddVideos(BaseModel):
    """Files or folders (searched recursively) under an allowed folder; relative paths
    start at the first ``--allow-dir``."""

    paths: list[str] = Field(min_length=1, examples=[["news/2024-06-01.mp4", "archive/"]])


def _errors(*codes: int) -> dict:
    return {code: {"model": ErrorBody} for code in codes}


def status_of(exc: VsearchError) -> int:
    return next(code for cls, code in STATUS_OF if isinstance(exc, cls))


class _BodyTooLarge(Exception):
    pass


class UploadLimit:
    """ASGI middleware: a request body over ``max_bytes`` is answered 413 before it is
    all read (a declared Content-Length at once, a chunked body when it passes)."""

    def __init__(self, app, *, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def _refuse(self, scope, send) -> None:
        body = {"detail": f"request body larger than {self.max_bytes / (1 << 20):.0f} MiB"}
        await JSONResponse(body, status_code=413, headers={"Connection": "close"})(scope, None, send)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, send)
            return
        received, over = 0, False

        async def counted_receive():
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    over = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message) -> None:
            if not over:  # the app's answer to a body cut short is replaced by ours
                await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not over:
                raise
        if over:
            await self._refuse(scope, send)


def _upload_suffix(filename: str) -> str:
    """The upload's extension if it is a plain one (it helps nothing else; names are never used)."""
    suffix = Path(filename).suffix.lower()
    return suffix if re.fullmatch(r"\.[a-z0-9]{1,8}", suffix) else ""


async def _save_upload(upload: UploadFile, folder: Path, limit: int, shown: str) -> Path:
    fd, name = tempfile.mkstemp(prefix="clip-", suffix=_upload_suffix(shown), dir=folder)
    written = 0
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := await upload.read(1 << 20):
                written += len(chunk)
                if written > limit:
                    raise UploadTooLargeError(shown, f"larger than the {limit / (1 << 20):g} MiB allowed")
                await run_in_threadpool(out.write, chunk)
    except BaseException:
        os.unlink(name)
        raise
    return Path(name)


class Server:
    """The state behind the routes: the live index, the job runner, the query pool."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.roots = AllowedRoots(list(config.allow_dirs))
        index = VideoIndex.open(config.index, create=True, device=config.device)
        try:
            self.live = LiveIndex(index, refresh_interval=config.refresh_interval)
            self.jobs = JobRunner(self.live, decode_timeout=config.decode_timeout)
        except BaseException:
            index.close()
            raise
        self.pool = ThreadPoolExecutor(max_workers=config.query_workers, thread_name_prefix="vsearch-query")
        base = Path(config.upload_dir) if config.upload_dir else Path(tempfile.gettempdir())
        self.upload_dir = Path(tempfile.mkdtemp(prefix="vsearch-serve-", dir=base))

    async def in_pool(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    def query(self, clip: Path, k: int, min_score: float) -> QueryResult:
        with self.live.reading() as view:  # one view for the whole query, whatever is committed meanwhile
            return view.query(clip, k=k, min_score=min_score, timeout=self.config.decode_timeout,
                              max_duration=self.config.max_clip_seconds)

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
        self.live.close()
        shutil.rmtree(self.upload_dir, ignore_errors=True)


def create_app(config: ServerConfig) -> FastAPI:
    """The application for ``config``; opens (or creates) the index now, so a bad
    index fails here, before anything listens."""
    server = Server(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
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
    )
    app.state.server = server
    app.add_middleware(UploadLimit, max_bytes=config.max_upload_bytes + _FORM_OVERHEAD)
    if is_loopback(config.host):
        # A web page the user visits must not reach a loopback server by a DNS name of its own.
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=["127.0.0.1", "localhost", "[::1]", "::1"])

    @app.exception_handler(VsearchError)
    async def _vsearch_error(request: Request, exc: VsearchError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status_of(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = [f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'request'}: {e.get('msg')}" for e in exc.errors()]
        return JSONResponse({"detail": "; ".join(parts)}, status_code=422)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"detail": f"internal error: {type(exc).__name__} (details in the server's log)"},
                            status_code=500)

    bearer = HTTPBearer(auto_error=False, description="The server's --token, when it has one.")

    def authorised(request: Request, _: Optional[HTTPAuthorizationCredentials] = Depends(bearer)) -> None:
        if config.token is not None and not token_matches(request.headers.get("authorization"), config.token):
            raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})

    @app.get("/health", response_model=Health, tags=["server"])
    async def health() -> Health:
        """Whether the server is up (no token needed, tells nothing about the index)."""
        return Health()

    api = APIRouter(dependencies=[Depends(authorised)], responses=_errors(401))

    @api.post("/query", response_model=QueryResult, tags=["search"], responses=_errors(403, 413, 422))
    async def query(
        clip: Optional[UploadFile] = File(None, description="The clip, uploaded."),
        path: Optional[str] = Form(None, description="Or a clip's path under an allowed folder."),
        k: int = Form(5, ge=1, le=1000, description="Segments to return."),
        min_score: float = Form(DEFAULT_MIN_SCORE, ge=0.0, le=1.0, description="Hide hits scoring below this."),
    ) -> dict:
        """Find the library segments a clip comes from; the JSON of `vsearch query --json`."""
        if (clip is None) == (path is None):
            raise HTTPException(422, "give either a clip upload (field 'clip') or a server-side path (field 'path')")
        if path is not None:
            real = await run_in_threadpool(server.roots.resolve_file, path)
            try:
                result = await server.in_pool(server.query, real, k, min_score)
            except VideoError as exc:  # named as the client named it
                raise type(exc)(path, exc.reason) from None
            return dataclasses.replace(result, query=path).to_dict()
        shown = clip.filename or "upload"
        saved = await _save_upload(clip, server.upload_dir, config.max_upload_bytes, shown)
        try:
            result = await server.in_pool(server.query, saved, k, min_score)
        except VideoError as exc:
            raise type(exc)(shown, exc.reason) from None
        finally:
            os.unlink(saved)
        return dataclasses.replace(result, query=shown).to_dict()

    @api.post("/videos", status_code=202, response_model=Job, tags=["library"], responses=_errors(403, 409, 422))
    async def add_videos(body: AddVideos) -> Job:
        """Add video files or folders; returns the job (see `GET /jobs/{id}`)."""
        files = await run_in_threadpool(server.roots.expand, body.paths)
        if not files:
            raise HTTPException(422, f"{', '.join(body.paths)}: no video files there")
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
            raise HTTPException(404, f"job {job_id}: no such job (jobs are kept in memory until the server stops)")
        return job

    @api.get("/stats", response_model=IndexStats, tags=["library"])
    async def stats() -> dict:
        """What the index holds and how it was built (`vsearch stats --json`)."""
        return (await run_in_threadpool(server.stats)).to_dict()

    app.include_router(api)
    return app


def serve(config: ServerConfig) -> None:
    """Check the settings, open the index, and serve until interrupted."""
    import uvicorn

    check_bind(config.host, config.token)
    app = create_app(config)
    stats = app.state.server.stats()
    print(f"vsearch serve: index {stats.path} ({stats.videos} videos) on http://{config.host}:{config.port}"
          f"{'' if config.token else ' (no token)'}; API at /docs", file=sys.stderr, flush=True)
    uvicorn.run(app, host=config.host, port=config.port, log_level="warning", access_log=False,
                timeout_graceful_shutdown=10)
