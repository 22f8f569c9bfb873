"""The local rate-limit store: a memory-mapped table shared by the processes of a machine.

Exact under threads and processes, no lock left behind by a killed process, windows that
roll over, memory that stays bounded (ended windows reused, the least used counter forgotten
when every slot is live), one file per database, and no file of another user trusted.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from codoc_fhir.api.ratelimit import (
    DatabaseCounter,
    Limit,
    RateLimiter,
    RedisCounter,
    build_counter,
)
from codoc_fhir.api.ratelimit_local import PROBES, LocalCounter, counter_directory, counter_path
from codoc_fhir.config import Settings

HOUR = 3600


def _window(period: int = HOUR) -> int:
    return int(time.time()) // period * period


def _hammer(counter: LocalCounter, key: str, window: int, hits: int = 200) -> list[int]:
    with ThreadPoolExecutor(max_workers=16) as pool:
        return sorted(pool.map(lambda _: counter.hit(key, window, HOUR), range(hits)))


def test_exact_under_16_threads(tmp_path):
    counter = LocalCounter(tmp_path / "counters")
    assert _hammer(counter, "ip:10.0.0.1:3600", _window()) == list(range(1, 201))


def test_two_counters_on_one_file_share_the_counts(tmp_path):
    first, second = LocalCounter(tmp_path / "counters"), LocalCounter(tmp_path / "counters")
    window = _window()
    with ThreadPoolExecutor(max_workers=16) as pool:
        counts = list(pool.map(lambda n: (first, second)[n % 2].hit("k", window, HOUR), range(200)))
    assert sorted(counts) == list(range(1, 201))


def test_exact_across_forked_processes(tmp_path):
    """Children forked after the counter was opened (as with a preloading server) map the
    file again: flock on the parent's open file would not keep them apart."""
    counter = LocalCounter(tmp_path / "counters")
    window = _window()
    counter.hit("k", window, HOUR)
    children = []
    for _ in range(3):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            for _ in range(100):
                counter.hit("k", window, HOUR)
            os._exit(0)
        children.append(pid)
    for _ in range(100):
        counter.hit("k", window, HOUR)
    statuses = [os.waitpid(pid, 0)[1] for pid in children]
    assert statuses == [0, 0, 0]
    assert counter.hit("k", window, HOUR) == 1 + 3 * 100 + 100 + 1


def test_a_process_killed_holding_the_lock_leaves_no_lock(tmp_path):
    path = tmp_path / "counters"
    counter = LocalCounter(path)
    window = _window()
    assert counter.hit("k", window, HOUR) == 1
    ready_read, ready_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child: take the lock and hang
        holder = LocalCounter(path)
        fcntl.flock(holder._table.fd, fcntl.LOCK_EX)
        os.write(ready_write, b"x")
        time.sleep(600)
        os._exit(0)
    assert os.read(ready_read, 1) == b"x"
    probe = os.open(path, os.O_RDWR)
    with pytest.raises(BlockingIOError):  # held by the child...
        fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)  # ...and free once it is killed
    fcntl.flock(probe, fcntl.LOCK_UN)
    os.close(probe)
    assert counter.hit("k", window, HOUR) == 2


def test_the_window_rolls_over(tmp_path):
    limiter = RateLimiter(LocalCounter(tmp_path / "counters"), Limit(3, 60), None)
    start = _window(60) + 10.0
    answers = [limiter.check("ip:10.0.0.2", Limit(3, 60), now=start + n) for n in range(4)]
    assert answers == [(2, 50), (1, 49), (0, 48), (-1, 47)]
    assert limiter.check("ip:10.0.0.2", Limit(3, 60), now=start + 50) == (2, 60)  # next window
    assert limiter.check("ip:10.0.0.2", Limit(3, 60), now=start + 51) == (1, 59)


def test_ended_windows_are_reused_so_the_file_never_grows(tmp_path):
    path = tmp_path / "counters"
    counter = LocalCounter(path, slots=PROBES)  # every probe sequence covers the table
    size = path.stat().st_size
    for caller in range(PROBES):  # a full table of windows long ended
        counter.hit(f"old:{caller}", 0, 60)
    window = _window()
    assert [counter.hit(f"new:{caller}", window, HOUR) for caller in range(PROBES)] == [1] * PROBES
    assert [counter.hit(f"new:{caller}", window, HOUR) for caller in range(PROBES)] == [2] * PROBES
    assert path.stat().st_size == size


def test_a_full_table_forgets_the_least_used_counter(tmp_path, caplog):
    counter = LocalCounter(tmp_path / "counters", slots=PROBES)
    window = _window()
    for caller in range(PROBES):
        counter.hit(f"busy:{caller}", window, HOUR)
        if caller:  # every caller but busy:0 made two requests
            counter.hit(f"busy:{caller}", window, HOUR)
    with caplog.at_level(logging.WARNING, logger="codoc_fhir.ratelimit"):
        assert counter.hit("newcomer", window, HOUR) == 1
    assert "full" in caplog.text and "CODOC_REDIS_URL" in caplog.text
    assert [counter.hit(f"busy:{caller}", window, HOUR) for caller in range(1, PROBES)] == [3] * (
        PROBES - 1
    )
    assert counter.hit("busy:0", window, HOUR) == 1  # the one forgotten starts over


def test_a_replaced_file_is_mapped_again(tmp_path, caplog):
    path = tmp_path / "counters"
    counter = LocalCounter(path)
    window = _window()
    counter.hit("k", window, HOUR)
    path.unlink()  # a temporary-files cleaner
    counter._next_replaced_check = 0.0  # the once-a-second check is due
    with caplog.at_level(logging.WARNING, logger="codoc_fhir.ratelimit"):
        assert counter.hit("k", window, HOUR) == 1
    assert path.exists() and "replaced" in caplog.text
    assert LocalCounter(path).hit("k", window, HOUR) == 2  # a newcomer shares the new file


def test_one_file_per_database(tmp_path):
    directory = str(tmp_path)
    first = counter_path("postgresql+psycopg://app:secret@db.example.org:5432/codoc", directory)
    same = counter_path("postgresql+asyncpg://other@db.example.org:5432/codoc", directory)
    other = counter_path("postgresql+psycopg://app:secret@db.example.org:5432/codoc2", directory)
    assert first == same != other
    assert first.parent == tmp_path and "secret" not in first.name
    relative = counter_path("sqlite:///codoc.db", directory)
    absolute = counter_path(f"sqlite:///{Path.cwd() / 'codoc.db'}", directory)
    assert relative == absolute


def test_counters_live_in_shared_memory_when_the_machine_has_it():
    if not os.access("/dev/shm", os.W_OK):
        pytest.skip("no writable /dev/shm here")
    assert counter_directory(None) == Path("/dev/shm")
    assert counter_directory("/srv/codoc") == Path("/srv/codoc")


def _settings(tmp_path: Path, **values: str) -> Settings:
    values.setdefault("CODOC_DATABASE_URL", f"sqlite:///{tmp_path}/codoc.db")
    values.setdefault("CODOC_RATE_LIMIT_DIR", str(tmp_path))
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_the_store_setting_picks_the_counters(tmp_path, engine):
    redis_url = "redis://127.0.0.1:6379/0"
    assert isinstance(build_counter(_settings(tmp_path), engine), LocalCounter)
    with_redis = _settings(tmp_path, CODOC_REDIS_URL=redis_url)
    assert isinstance(build_counter(with_redis, engine), RedisCounter)
    forced = _settings(tmp_path, CODOC_REDIS_URL=redis_url, CODOC_RATE_LIMIT_STORE="database")
    assert isinstance(build_counter(forced, engine), DatabaseCounter)
    forced_local = _settings(tmp_path, CODOC_REDIS_URL=redis_url, CODOC_RATE_LIMIT_STORE="local")
    assert isinstance(build_counter(forced_local, engine), LocalCounter)
    with pytest.raises(ValueError, match="CODOC_REDIS_URL"):
        build_counter(_settings(tmp_path, CODOC_RATE_LIMIT_STORE="redis"), engine)


def test_a_file_others_may_write_is_not_trusted(tmp_path, engine, caplog):
    settings = _settings(tmp_path)
    path = counter_path(settings.database_url, str(tmp_path))
    path.write_bytes(b"")
    path.chmod(0o666)
    with caplog.at_level(logging.WARNING, logger="codoc_fhir.ratelimit"):
        counter = build_counter(settings, engine)
    assert isinstance(counter, DatabaseCounter)  # still shared and exact, only slower
    assert "in the database" in caplog.text
