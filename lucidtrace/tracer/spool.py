"""A durable on-disk spool of span batches waiting to be sent to a lucidtrace server.

Layout of a spool directory::

    segments/   one file per batch: ``<time ns>-<pid>-<counter>.seg``, sent in name order
    dead/       batches the server refused (a 4xx other than 401/403/408/429), kept for inspection
    corrupt/    files that could not be read back (truncated, damaged), kept for inspection

A segment is written to a temporary name, flushed and ``fsync``-ed, then renamed into
``segments/`` (and the directory is ``fsync``-ed): a segment either is there whole or not at all.
Its contents are a fixed header (magic, span count, CRC-32 and length of the payload) and the
payload: the gzip-compressed JSON batch exactly as it is sent (:mod:`lucidtrace.store.wire`).

Several processes may share one spool directory. A sender *claims* a segment with an exclusive,
non-blocking ``flock`` on the segment file before sending it, and checks after locking that the
file is still the one at that name; a segment claimed by another process is skipped. The lock
dies with the process, so a crashed sender leaves nothing stuck. (Where ``fcntl`` does not exist,
on Windows, segments are not locked: give each process its own ``spool_dir`` there.)

Nothing here touches the network; :mod:`lucidtrace.tracer.http_export` sends the segments.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import struct
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from lucidtrace.tracer._log import logger

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["Claim", "CorruptSegmentError", "Segment", "Spool", "default_spool_dir"]

MAGIC = b"LTSPOOL1"
_HEADER = struct.Struct(">8sIIQ")  # magic, span count, crc32 of the payload, payload length
SUFFIX = ".seg"
STALE_TEMP_S = 600.0
"""Age after which a temporary file left by a writer that died is moved to ``corrupt/``."""


class CorruptSegmentError(Exception):
    """A segment file that cannot be read back whole; the message says what is wrong."""


@dataclass(frozen=True)
class Segment:
    """One batch read back from the spool.

    Attributes:
        name: the file name in ``segments/``.
        spans: how many spans the batch holds.
        payload: the gzip-compressed JSON batch.
    """

    name: str
    spans: int
    payload: bytes


def default_spool_dir(endpoint: str) -> Path:
    """The spool directory used for ``endpoint`` when none is configured.

    ``<user cache dir>/lucidtrace/spool/<hash of the endpoint>``: one spool per server, shared
    by every process of the user that sends to it.
    """
    import hashlib  # noqa: PLC0415 - only needed here

    if os.name == "nt":  # pragma: no cover - Windows
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    digest = hashlib.sha256(endpoint.rstrip("/").encode("utf-8")).hexdigest()[:16]
    return base / "lucidtrace" / "spool" / digest


def encode_segment(payload: bytes, spans: int) -> bytes:
    """The bytes of a segment file holding ``payload`` (``spans`` spans)."""
    return _HEADER.pack(MAGIC, spans, zlib.crc32(payload), len(payload)) + payload


def decode_segment(name: str, data: bytes) -> Segment:
    """Read a segment file's bytes back.

    Raises:
        CorruptSegmentError: The header or the payload is damaged or cut short.
    """
    if len(data) < _HEADER.size:
        msg = f"{len(data)} bytes, shorter than the {_HEADER.size}-byte header"
        raise CorruptSegmentError(msg)
    magic, spans, crc, length = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise CorruptSegmentError("not a lucidtrace spool segment (bad magic)")
    payload = data[_HEADER.size :]
    if len(payload) != length:
        msg = f"payload is {len(payload)} bytes, the header says {length} (cut short?)"
        raise CorruptSegmentError(msg)
    if zlib.crc32(payload) != crc:
        raise CorruptSegmentError("payload checksum mismatch")
    return Segment(name, spans, payload)


class Claim:
    """The exclusive right of this process to send (then delete) one segment.

    Use as a context manager; leaving it releases the lock. :meth:`read` reads the segment.
    """

    def __init__(self, spool: Spool, name: str, fd: int) -> None:
        self.spool = spool
        self.name = name
        self._fd = fd

    def read(self) -> Segment:
        """The segment's contents.

        Raises:
            CorruptSegmentError: The file is damaged.
        """
        chunks = []
        os.lseek(self._fd, 0, os.SEEK_SET)
        while chunk := os.read(self._fd, 1 << 20):
            chunks.append(chunk)
        return decode_segment(self.name, b"".join(chunks))

    def release(self) -> None:
        """Release the lock (idempotent)."""
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            with contextlib.suppress(OSError):
                os.close(fd)  # closing the descriptor drops the flock

    def __enter__(self) -> Claim:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


class Spool:
    """Segments of spans on disk, bounded by ``max_bytes``.

    Args:
        directory: The spool directory (created if missing).
        max_bytes: Most bytes of segments kept; a batch that would go past it is refused.

    Raises:
        OSError: The directory cannot be created or written.
    """

    def __init__(self, directory: Path, *, max_bytes: int) -> None:
        if max_bytes < 1:
            msg = "max_bytes must be >= 1"
            raise ValueError(msg)
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.segments_dir = self.directory / "segments"
        self.dead_dir = self.directory / "dead"
        self.corrupt_dir = self.directory / "corrupt"
        # Spans hold prompts and answers: the spool is readable by its owner only (directories
        # 0o700, files 0o600), whatever the umask.
        self.directory.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
        for path in (self.segments_dir, self.dead_dir, self.corrupt_dir):
            path.mkdir(mode=PRIVATE_DIR_MODE, exist_ok=True)
            _make_private(path)
        probe = self.segments_dir / f".probe-{os.getpid()}-{threading.get_ident()}"
        _write_private(probe, b"")  # fail now, with a clear OSError, if it is not writable
        probe.unlink()
        self._lock = threading.Lock()
        self._counter = itertools.count()
        self._known: dict[str, tuple[int, int]] = {}  # name -> (bytes, spans), as last listed
        self._bytes = 0  # ... their totals
        self._spans = 0
        self._writing_bytes = 0  # reserved by writes in progress
        self._writing_spans = 0
        self._written_during_listing: dict[str, tuple[int, int]] | None = None
        self.list_ready()

    # ------------------------------------------------------------------ writing

    def append(self, payload: bytes, spans: int) -> str | None:
        """Write one batch durably; its segment name, or None when the cap refuses it.

        Raises:
            OSError: Writing failed (disk full, permissions); nothing is left behind.
        """
        data = encode_segment(payload, spans)
        size = len(data)
        with self._lock:
            if self._bytes + self._writing_bytes + size > self.max_bytes:
                return None
            self._writing_bytes += size  # reserved now, so that concurrent writers respect the cap
            self._writing_spans += spans
            name = f"{time.time_ns():020d}-{os.getpid()}-{next(self._counter):08d}{SUFFIX}"
        try:
            self._write(name, data)
        finally:
            with self._lock:
                self._writing_bytes -= size
                self._writing_spans -= spans
        self._add(name, (size, spans))
        return name

    def _add(self, name: str, info: tuple[int, int]) -> None:
        with self._lock:
            if name not in self._known:
                self._known[name] = info
                self._bytes += info[0]
                self._spans += info[1]
            if self._written_during_listing is not None:
                self._written_during_listing[name] = info

    def _write(self, name: str, data: bytes) -> None:
        temp = self.segments_dir / f".tmp-{os.getpid()}-{name}"
        try:
            _write_private(temp, data, sync=True)
            os.replace(temp, self.segments_dir / name)
        except BaseException:
            with contextlib.suppress(OSError):
                temp.unlink()
            raise
        _fsync_dir(self.segments_dir)

    # ------------------------------------------------------------------ reading

    @property
    def size_bytes(self) -> int:
        """Bytes of segments waiting (as of the last listing, plus this process's writes)."""
        return self._bytes + self._writing_bytes

    @property
    def pending_spans(self) -> int:
        """Spans in segments waiting (as of the last listing, plus this process's writes)."""
        return self._spans + self._writing_spans

    def names(self) -> list[str]:
        """The names of the segments waiting, oldest first (a plain listing)."""
        try:
            found = os.listdir(self.segments_dir)
        except OSError:
            return []
        return sorted(name for name in found if name.endswith(SUFFIX) and name[0] != ".")

    def list_ready(self) -> list[str]:
        """The names of the segments waiting, oldest first; refreshes the size tally.

        Other processes sharing the directory add and remove segments, so the tally is rebuilt
        from the directory listing each time.
        """
        with self._lock:
            self._written_during_listing = {}
        try:
            entries = list(os.scandir(self.segments_dir))
        except OSError:
            entries = []
        names = []
        known: dict[str, tuple[int, int]] = {}
        for entry in entries:
            if entry.name.startswith(".tmp-"):
                self._sweep_temp(entry)
                continue
            if not entry.name.endswith(SUFFIX):
                continue
            info = self._known.get(entry.name)
            if info is None:
                info = self._header_info(entry)
                if info is None:
                    continue
            known[entry.name] = info
            names.append(entry.name)
        names.sort()
        with self._lock:
            # Segments this process finished writing while the directory was being listed.
            for name, info in (self._written_during_listing or {}).items():
                known.setdefault(name, info)
            self._written_during_listing = None
            self._known = known
            self._bytes = sum(size for size, _ in known.values())
            self._spans = sum(spans for _, spans in known.values())
        return names

    def _header_info(self, entry: os.DirEntry[str]) -> tuple[int, int] | None:
        try:
            size = entry.stat().st_size
            with open(entry.path, "rb") as handle:
                head = handle.read(_HEADER.size)
        except OSError:
            return None  # removed by another process meanwhile
        if len(head) == _HEADER.size:
            magic, spans, _, _ = _HEADER.unpack(head)
            if magic == MAGIC:
                return size, spans
        return size, 0  # damaged: counted by size; the sender moves it aside when it reads it

    def _sweep_temp(self, entry: os.DirEntry[str]) -> None:
        """Move a temporary file that a dead writer left behind aside (never delete data)."""
        try:
            age = time.time() - entry.stat().st_mtime
        except OSError:
            return
        if age > STALE_TEMP_S:
            self._move_aside(entry.name, self.corrupt_dir, "an unfinished write (writer died)")

    def claim(self, name: str) -> Claim | None:
        """Lock segment ``name`` for sending; None if gone or claimed by another process."""
        path = self.segments_dir / name
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return None
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # Another sender may have sent and deleted it between our open() and our lock.
            if os.fstat(fd).st_ino != os.stat(path).st_ino:
                raise FileNotFoundError(path)
        except OSError:
            os.close(fd)
            return None
        return Claim(self, name, fd)

    # ------------------------------------------------------------------ after sending

    def remove(self, claim: Claim) -> None:
        """Delete a segment the server acknowledged (the caller holds its claim)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.segments_dir / claim.name)
        self._forget(claim.name)

    def replace(self, claim: Claim, parts: list[tuple[bytes, int]]) -> list[str]:
        """Replace a segment by several (a batch too large for the server, split in parts).

        The parts are written durably before the original is deleted, under names that sort
        where the original did, so the order of the spool is kept.
        """
        stem = claim.name.removesuffix(SUFFIX)
        names = []
        for index, (payload, spans) in enumerate(parts):
            name = f"{stem}-{index:04d}{SUFFIX}"
            data = encode_segment(payload, spans)
            self._write(name, data)
            self._add(name, (len(data), spans))
            names.append(name)
        self.remove(claim)
        return names

    def dead_letter(self, claim: Claim, reason: str) -> Path:
        """Move a segment the server refused to ``dead/``, with the reason beside it."""
        target = self._move_aside(claim.name, self.dead_dir, reason)
        self._forget(claim.name)
        return target

    def quarantine(self, claim: Claim, reason: str) -> Path:
        """Move a damaged segment to ``corrupt/``, with the reason beside it."""
        target = self._move_aside(claim.name, self.corrupt_dir, reason)
        self._forget(claim.name)
        return target

    def _move_aside(self, name: str, where: Path, reason: str) -> Path:
        target = where / name.removeprefix(".tmp-")
        try:
            os.replace(self.segments_dir / name, target)
            _write_private(
                target.with_name(target.name + ".reason.txt"), (reason + "\n").encode("utf-8")
            )
        except OSError as exc:
            logger.warning("lucidtrace: could not move spool file %s aside: %s", name, exc)
        return target

    def _forget(self, name: str) -> None:
        with self._lock:
            info = self._known.pop(name, None)
            if info is not None:
                self._bytes -= info[0]
                self._spans -= info[1]


PRIVATE_DIR_MODE = 0o700
"""The mode of the spool's directories: only their owner may list or enter them."""
PRIVATE_FILE_MODE = 0o600
"""The mode of the spool's files: only their owner may read them."""


def _make_private(path: Path) -> None:
    """Take group and other permissions off a directory of ours (one made by an older version)."""
    with contextlib.suppress(OSError):
        if path.stat().st_mode & 0o077:
            path.chmod(PRIVATE_DIR_MODE)


def _write_private(path: Path, data: bytes, *, sync: bool = False) -> None:
    """Write ``data`` to ``path``, created with mode 0o600 (whatever the umask)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        if sync:
            handle.flush()
            os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some filesystems refuse fsync on directories
        pass
    finally:
        os.close(fd)
