"""Clip uploads: written once, as they arrive, into the server's own upload folder.

- :class:`UploadFolder`: ``vsearch-serve-PID-*`` under ``--upload-dir`` (or the
  system's temporary folder), locked while its server runs and removed when it
  stops; the folders of servers that died (``kill -9``) are removed at the next start.
- :func:`upload_route`: a FastAPI route class whose requests read a multipart form
  with each file part written straight to a named file in that folder, its size
  checked as it arrives. (Starlette spools a file part to the temporary folder, and
  the server would then copy it where the decoder can open it: twice the disk.)
  The files are deleted when the request ends, with the form.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import re
import shutil
import stat
import tempfile
import time
from pathlib import Path
from typing import Callable

from fastapi import HTTPException, Request
from fastapi.routing import APIRoute
from python_multipart import MultipartParser
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, Headers, UploadFile

from .guard import size_text

log = logging.getLogger(__name__)

FOLDER_PREFIX = "vsearch-serve-"

#: A folder of an older vsearch (no owner lock) is removed once unused this long.
_LEGACY_IDLE_S = 600.0


class UploadFolder:
    """This server's folder for uploads, under ``base``, locked (``flock`` on the
    folder itself) until :meth:`close` removes it."""

    def __init__(self, base: Path) -> None:
        remove_stale_folders(base)
        self.path = Path(tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}{os.getpid()}-", dir=base))
        self._fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        os.close(self._fd)


def remove_stale_folders(base: Path) -> list[Path]:
    """Remove the upload folders under ``base`` that no running server holds (their
    server was killed); returns them. Only this user's real folders are touched."""
    removed = []
    for folder in base.glob(f"{FOLDER_PREFIX}*"):
        try:
            info = os.lstat(folder)
            fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
                continue
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            ours = re.fullmatch(rf"{FOLDER_PREFIX}\d+-.*", folder.name)
            if ours or time.time() - info.st_mtime > _LEGACY_IDLE_S:
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):  # else: its server runs
                log.warning("%s: cannot check or remove a stale upload folder (%s)", folder, exc.strerror)
        finally:
            os.close(fd)
    if removed:
        log.warning("removed %d upload folder(s) of servers that stopped without cleaning up: %s", len(removed),
                    ", ".join(str(p) for p in removed))
    return removed


def upload_suffix(filename: str) -> str:
    """The upload's extension if it is a plain one (it helps nothing else; names are never used)."""
    suffix = Path(filename).suffix.lower()
    return suffix if re.fullmatch(r"\.[a-z0-9]{1,8}", suffix) else ""


class _FormReader:
    """python-multipart callbacks building a form: fields in memory (each at most
    ``max_part_size`` bytes), files in ``folder`` (each at most ``max_file_bytes``)."""

    def __init__(self, folder: Path, *, max_file_bytes: int, max_files: int, max_fields: int,
                 max_part_size: int) -> None:
        self.folder, self.max_file_bytes = folder, max_file_bytes
        self.max_files, self.max_fields, self.max_part_size = max_files, max_fields, max_part_size
        self.items: list[tuple[str, str | UploadFile]] = []
        self.files: list[UploadFile] = []
        self.fields = 0
        self._pending: list[bytes] = []
        self._header_name = self._header_value = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._name = ""
        self._data = bytearray()
        self._file: UploadFile | None = None

    def callbacks(self) -> dict[str, Callable]:
        return {"on_part_begin": self._part_begin, "on_part_data": self._part_data, "on_part_end": self._part_end,
                "on_header_field": self._header_field, "on_header_value": self._header_value_part,
                "on_header_end": self._header_end, "on_headers_finished": self._headers_finished}

    def _part_begin(self) -> None:
        self._headers, self._data, self._file = [], bytearray(), None

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _header_value_part(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        self._headers.append((self._header_name.lower(), self._header_value))
        self._header_name = self._header_value = b""

    def _headers_finished(self) -> None:
        disposition = dict(self._headers).get(b"content-disposition", b"")
        _, options = parse_options_header(disposition)
        if b"name" not in options:
            raise HTTPException(422, "multipart part without a name")
        self._name = options[b"name"].decode("utf-8", "replace")
        if b"filename" not in options:
            self.fields += 1
            if self.fields > self.max_fields:
                raise HTTPException(422, f"more than {self.max_fields} form fields")
            return
        if len(self.files) >= self.max_files:
            raise HTTPException(422, f"more than {self.max_files} file{'s' if self.max_files != 1 else ''} uploaded")
        filename = options[b"filename"].decode("utf-8", "replace")
        handle = tempfile.NamedTemporaryFile(prefix="clip-", suffix=upload_suffix(filename), dir=self.folder)
        self._file = UploadFile(handle, size=0, filename=filename, headers=Headers(raw=self._headers))
        self.files.append(self._file)

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if self._file is None:
            if len(self._data) + len(chunk) > self.max_part_size:
                raise HTTPException(413, f"form field {self._name!r} larger than the "
                                         f"{size_text(self.max_part_size)} allowed")
            self._data += chunk
            return
        self._file.size += len(chunk)
        if self._file.size > self.max_file_bytes:
            raise HTTPException(413, f"{self._file.filename or 'upload'}: larger than the "
                                     f"{size_text(self.max_file_bytes)} allowed")
        self._pending.append(chunk)

    def _part_end(self) -> None:
        if self._file is None:
            self.items.append((self._name, self._data.decode("utf-8", "replace")))
        else:
            self.items.append((self._name, self._file))

    async def write_pending(self) -> None:
        """Write what arrived of the current file (in a thread: disks can be slow)."""
        if self._pending and self._file is not None:
            data, self._pending = b"".join(self._pending), []
            await run_in_threadpool(self._file.file.write, data)

    def discard(self) -> None:
        for upload in self.files:
            upload.file.close()  # deletes it


class _UploadRequest(Request):
    """A request whose multipart form keeps its file (one at most) in the upload folder."""

    def __init__(self, request: Request, *, folder: Path, max_file_bytes: int, max_fields: int,
                 max_field_bytes: int) -> None:
        super().__init__(request.scope, request.receive)
        self.folder, self.max_file_bytes = folder, max_file_bytes
        self.max_fields, self.max_field_bytes = max_fields, max_field_bytes

    def form(self, **_limits):
        """The form (FastAPI's limits are replaced by the route's own)."""
        content_type, _ = parse_options_header(self.headers.get("content-type", ""))
        if content_type != b"multipart/form-data":  # URL-encoded fields: no file to keep
            return super().form(max_files=0, max_fields=self.max_fields, max_part_size=self.max_field_bytes)
        return self._multipart()

    async def _multipart(self) -> FormData:
        _, options = parse_options_header(self.headers["content-type"])
        if not options.get(b"boundary"):
            raise HTTPException(422, "multipart body without a boundary")
        reader = _FormReader(self.folder, max_file_bytes=self.max_file_bytes, max_files=1,
                             max_fields=self.max_fields, max_part_size=self.max_field_bytes)
        try:
            parser = MultipartParser(options[b"boundary"], reader.callbacks())
            async for chunk in self.stream():
                parser.write(chunk)
                await reader.write_pending()
            parser.finalize()
        except MultipartParseError as exc:
            reader.discard()
            raise HTTPException(422, f"malformed multipart body ({exc})") from None
        except BaseException:
            reader.discard()
            raise
        for upload in reader.files:
            upload.file.flush()
        return FormData(reader.items)


def upload_route(folder: Path, *, max_file_bytes: int, max_fields: int, max_field_bytes: int) -> type[APIRoute]:
    """A route class (FastAPI's custom ``APIRoute`` pattern) whose form holds one file
    at most, written once, to ``folder``, of at most ``max_file_bytes``, and
    ``max_fields`` other fields of ``max_field_bytes`` each (413 or 422 past them)."""

    class UploadRoute(APIRoute):
        def get_route_handler(self):
            handle = super().get_route_handler()

            async def handler(request: Request):
                return await handle(_UploadRequest(request, folder=folder, max_file_bytes=max_file_bytes,
                                                   max_fields=max_fields, max_field_bytes=max_field_bytes))

            return handler

    return UploadRoute
