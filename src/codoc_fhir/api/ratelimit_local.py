"""Rate-limit counters shared by every process of one machine, without a database write:
a fixed-size hash table of fixed-window counters in a memory-mapped file.

Every worker and every `codoc-fhir serve` process of the same database on the same machine
maps the same file (its name is a hash of the database, in /dev/shm when there is one) and
counts under an exclusive `flock`, so a count is exact whichever process answers. The lock
is the kernel's: it goes with the process, so a process killed mid-update leaves no stuck
lock, and each update is a few aligned 8-byte stores, so it leaves at worst one counter
forgotten, never a torn one read as another's. Threads of one process share the file's
open description (flock does not tell them apart), hence the threading lock as well.

A slot holds a 64-bit tag (hash of caller key and window start; 0 is an empty slot), the
window's end and the count. A caller's slot is found by linear probing over at most
PROBES slots; slots whose window has ended are reused, which bounds the memory. Only when
every probed slot is live (more than about SLOTS callers inside their windows) is the
smallest count forgotten, with a warning: such a server needs Redis.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import logging
import mmap
import os
import stat
import struct
import tempfile
import threading
import time
import weakref
from pathlib import Path

from sqlalchemy.engine import make_url

log = logging.getLogger("codoc_fhir.ratelimit")

SLOTS = 1 << 16  # 65,536 live (caller, window) counters: 1.5 MiB
PROBES = 32
WORDS = 3  # tag, window end, count: unsigned 64-bit words
MAGIC = b"CODOCRL1"
HEADER = struct.Struct("<8sQQ")  # magic, slots, words per slot
HEADER_WORDS = 8  # the slots start after 64 bytes
REPLACED_CHECK_SECONDS = 1.0
FULL_WARNING_SECONDS = 60.0

_open_counters: weakref.WeakSet[LocalCounter] = weakref.WeakSet()


def counter_directory(configured: str | None) -> Path:
    """Where the counter files live: the setting, else /dev/shm (memory, shared by every
    process of the machine), else the temporary directory."""
    if configured:
        return Path(configured)
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK):
        return shm
    return Path(tempfile.gettempdir())


def database_identity(database_url: str) -> str:
    """What makes two URLs the same database here: backend, host, port and database (a
    SQLite file by its absolute path); not the driver, user or password."""
    url = make_url(database_url)
    backend = url.get_backend_name()
    if backend == "sqlite" and url.database not in (None, "", ":memory:"):
        return f"sqlite:{os.path.realpath(str(url.database))}"
    return f"{backend}://{url.host or ''}:{url.port or ''}/{url.database or ''}"


def counter_path(database_url: str, directory: str | None) -> Path:
    """The counter file of a database: same database, same machine, same file. The name
    carries the layout too, so a server of another layout (during an upgrade) never
    resizes a file this one has mapped."""
    digest = hashlib.sha256(database_identity(database_url).encode()).hexdigest()[:24]
    layout = f"{MAGIC.decode().lower()}-{SLOTS}x{WORDS}"
    return counter_directory(directory) / f"codoc-fhir-ratelimit-{digest}-{layout}"


def tag_of(key: str, window_start: int) -> int:
    """The slot tag of a caller's window (never 0, which marks an empty slot)."""
    digest = hashlib.blake2b(f"{key}\0{window_start}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") or 1


class _Table:
    """One process's mapping of the counter file."""

    def __init__(self, path: Path, slots: int) -> None:
        size = (HEADER_WORDS + slots * WORDS) * 8
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        self.file = os.fdopen(fd, "r+b", buffering=0)  # closes the descriptor when collected
        try:
            _refuse_foreign(fd, path)
            _lock(fd)
            try:
                _initialise(fd, size, slots)
            finally:
                _unlock(fd)
            self.map = mmap.mmap(fd, size)
        except BaseException:
            self.file.close()
            raise
        self.fd = fd
        self.words = memoryview(self.map).cast("Q")
        self.identity = _file_identity(os.fstat(fd))

    def count(self, tag: int, window_end: int, now: int, slots: int) -> tuple[int, bool]:
        """Count one request of `tag` (the lock held): (its count, whether a live counter
        had to be forgotten to make room)."""
        words, reusable = self.words, -1
        for probe in range(PROBES):
            base = HEADER_WORDS + ((tag + probe) % slots) * WORDS
            found = words[base]
            if found == tag:
                words[base + 2] += 1
                return words[base + 2], False
            if found == 0:
                self._store(reusable if reusable >= 0 else base, tag, window_end)
                return 1, False
            if reusable < 0 and words[base + 1] <= now:
                reusable = base
        if reusable >= 0:
            self._store(reusable, tag, window_end)
            return 1, False
        self._store(self._least_used(tag, slots), tag, window_end)
        return 1, True

    def _least_used(self, tag: int, slots: int) -> int:
        """The probed slot with the smallest count (the least harm when forgotten)."""
        bases = [HEADER_WORDS + ((tag + probe) % slots) * WORDS for probe in range(PROBES)]
        return min(bases, key=lambda base: (self.words[base + 2], self.words[base + 1]))

    def _store(self, base: int, tag: int, window_end: int) -> None:
        """A new counter at 1; the tag goes last, so an interrupted store is not a count."""
        self.words[base] = 0
        self.words[base + 1] = window_end
        self.words[base + 2] = 1
        self.words[base] = tag

    def close(self) -> None:
        self.words.release()
        self.map.close()
        self.file.close()


class LocalCounter:
    """Fixed-window counters shared through a memory-mapped file (see the module doc)."""

    def __init__(self, path: Path, slots: int = SLOTS) -> None:
        self.path = path
        self.slots = slots
        self._thread_lock = threading.Lock()
        self._table = _Table(path, slots)
        self._next_replaced_check = time.monotonic() + REPLACED_CHECK_SECONDS
        self._next_full_warning = 0.0
        _open_counters.add(self)

    @classmethod
    def for_database(cls, database_url: str, directory: str | None) -> LocalCounter:
        path = counter_path(database_url, directory)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        return cls(path)

    def hit(self, key: str, window_start: int, period: int) -> int:
        tag, window_end = tag_of(key, window_start), window_start + period
        with self._thread_lock:
            table = self._current_table()
            _lock(table.fd)
            try:
                count, forgot = table.count(tag, window_end, int(time.time()), self.slots)
            finally:
                _unlock(table.fd)
        if forgot:
            self._warn_full()
        return count

    async def hit_async(self, key: str, window_start: int, period: int) -> int:
        """Same as hit: a few microseconds, not worth a thread hand-off."""
        return self.hit(key, window_start, period)

    def close(self) -> None:
        with self._thread_lock:
            _open_counters.discard(self)
            self._table.close()

    async def aclose(self) -> None:
        self.close()

    def _current_table(self) -> _Table:
        """The table, mapped again if its file was deleted or replaced (a temporary-files
        cleaner, systemd's RemoveIPC): checked once a second, so processes meet again."""
        if time.monotonic() < self._next_replaced_check:
            return self._table
        self._next_replaced_check = time.monotonic() + REPLACED_CHECK_SECONDS
        try:
            on_disk = _file_identity(os.stat(self.path, follow_symlinks=False))
        except FileNotFoundError:
            on_disk = None
        if on_disk != self._table.identity:
            log.warning("rate-limit counter file %s was replaced; counting starts over", self.path)
            self._reopen()
        return self._table

    def _reopen(self) -> None:
        """A mapping of its own (after a fork the child shares the parent's open file, on
        which flock would not keep them apart). Should the new one fail, the old one
        stays: the processes that still map it keep counting together."""
        table = _Table(self.path, self.slots)
        self._table.close()
        self._table = table

    def _after_fork(self) -> None:
        self._thread_lock = threading.Lock()  # another thread of the parent may hold it
        self._reopen()

    def _warn_full(self) -> None:
        if time.monotonic() >= self._next_full_warning:
            self._next_full_warning = time.monotonic() + FULL_WARNING_SECONDS
            log.warning(
                "rate-limit table %s is full (%d live counters): the least used are "
                "forgotten; set CODOC_REDIS_URL for this many callers",
                self.path,
                self.slots,
            )


def _reopen_after_fork() -> None:
    for counter in list(_open_counters):
        counter._after_fork()


os.register_at_fork(after_in_child=_reopen_after_fork)


def _lock(fd: int) -> None:
    """Wait for the file's exclusive lock (held for microseconds by any other process)."""
    fcntl.flock(fd, fcntl.LOCK_EX)


def _unlock(fd: int) -> None:
    fcntl.flock(fd, fcntl.LOCK_UN)


def _refuse_foreign(fd: int, path: Path) -> None:
    """A file another user made (or may write) could forge the counts: refuse it."""
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise PermissionError(errno.EPERM, "not a private file of this user", str(path))


def _initialise(fd: int, size: int, slots: int) -> None:
    """Make the file a table of `slots` slots unless it already is one (the lock held).

    The space is allocated at once: a write into a hole of a full tmpfs would kill the
    process with SIGBUS, an allocation failure here is an OSError at start-up instead.
    """
    header = os.pread(fd, HEADER.size, 0)
    expected = HEADER.pack(MAGIC, slots, WORDS)
    if header == expected and os.fstat(fd).st_size == size:
        return
    os.ftruncate(fd, 0)
    os.ftruncate(fd, size)
    os.posix_fallocate(fd, 0, size)
    os.pwrite(fd, expected, 0)


def _file_identity(info: os.stat_result) -> tuple[int, int]:
    return info.st_dev, info.st_ino
