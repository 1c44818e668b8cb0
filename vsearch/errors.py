"""Typed errors raised at vsearch's boundaries.

Every error carries a one-line, user-facing message; the CLI prints it and maps the
class to an exit code, library users catch the class they care about.
"""

from __future__ import annotations


class VsearchError(Exception):
    """Base class of every error vsearch raises on purpose."""

    exit_code = 1


class VideoError(VsearchError):
    """A video file cannot be used: unreadable, not a video, broken header, too short."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class ClipTooShortError(VideoError):
    """A query clip is shorter than one window, so it has no vector to search with."""


class ClipTooLongError(VideoError):
    """A query clip runs longer than the caller allows (the server's clip limit)."""


class UploadTooLargeError(VideoError):
    """An uploaded clip is larger than the server accepts."""


class IndexNotFoundError(VsearchError):
    """No vsearch index at that path: a missing folder, a folder without an index, or a
    file that is not a shard manifest."""

    exit_code = 3


class IndexLockedError(VsearchError):
    """Another live process holds the index's writer lock."""

    exit_code = 4


class ConfigMismatchError(VsearchError):
    """Settings or on-disk format differ from the ones the index was built with."""

    exit_code = 5


class RebuildNeededError(ConfigMismatchError):
    """The index was written by an older vsearch whose vectors this one cannot use.

    ``vsearch rebuild`` (:func:`vsearch.library.upgrade.upgrade_index`) decodes its videos
    again into the current format.
    """


class IndexCorruptError(VsearchError):
    """The index is damaged beyond automatic repair: its metadata store (the source of
    truth) cannot be read whole. A damaged vector file raises it too when loaded; an
    open index rebuilds that file from the metadata store rather than pass it on."""

    exit_code = 6


class IndexTypeError(VsearchError):
    """A FAISS index type vsearch refuses (it cannot remove a video in place, or is not
    a factory string), or one this library has too few vectors to train: a bad value."""


class DeviceError(VsearchError):
    """The requested compute device is not available."""

    exit_code = 7


class NotIndexedError(VsearchError):
    """A video named for removal is not in the index."""


class FeatureFileError(VideoError):
    """A file of precomputed features cannot be used: wrong layout, shape, dimension
    or time axis, or a pickle (never read: it can run code)."""


class PathNotAllowedError(VsearchError):
    """A server-side path lies outside the folders the server was allowed to read."""


class MissingExtraError(VsearchError):
    """An optional feature's dependencies are not installed; the message names the extra."""

    def __init__(self, feature: str, extra: str) -> None:
        self.extra = extra
        super().__init__(f"{feature} needs the '{extra}' extra: pip install \"vsearch[{extra}]\"")
