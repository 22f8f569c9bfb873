"""Rate limits: 429 with Retry-After once used up, per address or per token subject,
exact under concurrent requests, whichever store holds the counters (a local file shared
by the machine's processes, Redis or the database)."""

from __future__ import annotations

import asyncio
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from codoc_fhir.api.ratelimit import (
    Counter,
    DatabaseCounter,
    Limit,
    RateLimiter,
    RedisCounter,
    configured_limit,
    parse_limit,
)
from codoc_fhir.api.ratelimit_local import LocalCounter
from codoc_fhir.app import create_app
from codoc_fhir.config import Settings
from codoc_fhir.warehouse.schema import fhir_rate_limit
from tests.conftest import empty_tables
from tests.fhir_client import FhirTestClient
from tests.security.tokens import AUTH_ENV, bearer, hs256

PROBE = "/v4.3.0/Organization?_summary=count"  # /metadata is never counted
REDIS_URL = "redis://127.0.0.1:6379/0"
STORES = ["local", "database", "redis"]


def _redis_or_skip() -> RedisCounter:
    counter = RedisCounter(REDIS_URL, prefix=f"codoc-test:{uuid.uuid4().hex}:")
    try:
        counter.client.ping()
    except Exception as error:  # pragma: no cover - depends on the machine
        pytest.skip(f"no Redis at 127.0.0.1:6379 ({error})")
    return counter


def _store_env(store: str) -> dict[str, str]:
    """The settings of a store (Redis skipped where there is none)."""
    if store == "redis":
        client = _redis_or_skip().client
        for name in client.scan_iter("codoc-fhir:rate:*"):  # an earlier run's counters
            client.delete(name)
        return {"CODOC_RATE_LIMIT_STORE": "redis", "CODOC_REDIS_URL": REDIS_URL}
    return {"CODOC_RATE_LIMIT_STORE": store}


def _rate_limit_rows(engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(fhir_rate_limit)).scalar_one())


def test_sixth_anonymous_request_is_throttled(make_client):
    client = make_client(CODOC_RATE_LIMIT_ANONYMOUS="5/hour")
    answers = [client.get(PROBE) for _ in range(5)]
    assert [answer.status_code for answer in answers] == [200] * 5
    assert answers[-1].headers["x-ratelimit-remaining"] == "0"
    throttled = client.get(PROBE)
    assert throttled.status_code == 429
    assert 0 < int(throttled.headers["retry-after"]) <= 3600
    assert throttled.json()["issue"][0]["code"] == "throttled"


def test_authenticated_requests_count_per_subject(make_client):
    client = make_client(
        CODOC_RATE_LIMIT_ANONYMOUS="2/hour", CODOC_RATE_LIMIT_AUTHENTICATED="3/minute", **AUTH_ENV
    )
    alice, bob = bearer(hs256(sub="alice")), bearer(hs256(sub="bob"))
    assert [client.get(PROBE, headers=alice).status_code for _ in range(4)] == [200] * 3 + [429]
    assert client.get(PROBE, headers=bob).status_code == 200
    retry = client.get(PROBE, headers=alice).headers["retry-after"]
    assert 0 < int(retry) <= 60


def test_off_disables_the_limit(make_client):
    client = make_client(CODOC_RATE_LIMIT_ANONYMOUS="off")
    assert all(client.get(PROBE).status_code == 200 for _ in range(20))


@pytest.mark.parametrize(
    "text, expected",
    [
        ("100/hour", Limit(100, 3600)),
        ("5/minute", Limit(5, 60)),
        ("2/second", Limit(2, 1)),
        (" 10 / hours ", Limit(10, 3600)),
        ("off", None),
    ],
)
def test_limit_syntax(text, expected):
    assert parse_limit(text) == expected


def test_bad_limit_syntax_is_refused():
    with pytest.raises(ValueError, match="N/second"):
        parse_limit("100 per day")


def _hammer(counter, key: str, hits: int = 200) -> list[int]:
    with ThreadPoolExecutor(max_workers=16) as pool:
        return sorted(pool.map(lambda _: counter.hit(key, 0, 3600), range(hits)))


def test_database_counter_is_exact_under_concurrency(engine):
    counts = _hammer(DatabaseCounter(engine), f"test:{uuid.uuid4().hex}")
    assert counts == list(range(1, 201))


def test_redis_counter_is_exact_under_concurrency():
    assert _hammer(_redis_or_skip(), "k") == list(range(1, 201))


def test_redis_counter_is_exact_from_the_event_loop():
    """The middleware's path: the asyncio client, 200 hits in flight at once."""
    counter = _redis_or_skip()

    async def hammer() -> list[int]:
        counts = await asyncio.gather(*(counter.hit_async("k", 0, 3600) for _ in range(200)))
        await counter.aclose()
        return sorted(counts)

    assert asyncio.run(hammer()) == list(range(1, 201))


def _counter(store: str, engine, tmp_path) -> Counter:
    if store == "redis":
        return _redis_or_skip()
    if store == "database":
        return DatabaseCounter(engine)
    return LocalCounter(tmp_path / "counters")


@pytest.mark.parametrize("store", STORES)
def test_the_window_rolls_over_in_every_store(engine, tmp_path, store):
    limit = Limit(2, 60)
    limiter = RateLimiter(_counter(store, engine, tmp_path), None, limit)
    key, start = f"sub:rollover-{uuid.uuid4().hex}", time.time() // 60 * 60 + 30
    assert [limiter.check(key, limit, now=start + n) for n in range(3)] == [
        (1, 30),
        (0, 29),
        (-1, 28),
    ]
    assert limiter.check(key, limit, now=start + 30) == (1, 60)  # the next window


@pytest.mark.parametrize("store", STORES)
def test_throttled_answer_and_headers_in_every_store(make_client, store):
    """A subject of its own, so counts in a shared Redis never mix with another test's."""
    client = make_client(CODOC_RATE_LIMIT_AUTHENTICATED="3/minute", **AUTH_ENV, **_store_env(store))
    caller = bearer(hs256(sub=f"caller-{uuid.uuid4().hex}"))
    answers = [client.get(PROBE, headers=caller) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [200] * 3
    assert [answer.headers["x-ratelimit-limit"] for answer in answers] == ["3"] * 3
    assert [answer.headers["x-ratelimit-remaining"] for answer in answers] == ["2", "1", "0"]
    throttled = client.get(PROBE, headers=caller)
    assert throttled.status_code == 429
    assert throttled.headers["content-type"].startswith("application/fhir+json")
    assert 0 < int(throttled.headers["retry-after"]) <= 60
    assert throttled.headers["x-ratelimit-limit"] == "3"
    assert throttled.headers["x-ratelimit-remaining"] == "0"
    assert throttled.json()["issue"][0]["code"] == "throttled"


@pytest.mark.parametrize("store", STORES)
def test_only_the_database_store_writes_rows(make_client, engine, store):
    client = make_client(CODOC_RATE_LIMIT_ANONYMOUS="50/hour", **_store_env(store))
    assert all(client.get(PROBE).status_code == 200 for _ in range(5))
    assert _rate_limit_rows(engine) == (1 if store == "database" else 0)


def test_metadata_is_never_throttled(make_client):
    client = make_client(CODOC_RATE_LIMIT_ANONYMOUS="2/hour")
    assert [client.get(PROBE).status_code for _ in range(3)] == [200, 200, 429]
    assert all(client.get("/v4.3.0/metadata").status_code == 200 for _ in range(5))
    assert client.get("/v4.3.0/metadata/").status_code == 200


def _default_client(database_url: str, **values: str) -> FhirTestClient:
    """An app on the settings' own defaults (make_settings turns the limits off)."""
    settings = Settings(_env_file=None, CODOC_DATABASE_URL=database_url, **values)  # type: ignore[call-arg]
    return FhirTestClient(create_app(settings))


def test_default_limits_apply_to_a_served_database_only(database_url, engine):
    empty_tables(engine)  # fresh counters
    embedded = database_url.startswith("sqlite")
    with _default_client(database_url) as client:
        answer = client.get(PROBE)
    assert answer.status_code == 200
    if embedded:  # the local demo: one user, no limit unless asked for
        assert "x-ratelimit-limit" not in answer.headers
    else:
        assert answer.headers["x-ratelimit-limit"] == "100"
    with _default_client(database_url, CODOC_RATE_LIMIT_ANONYMOUS="7/hour") as client:
        assert client.get(PROBE).headers["x-ratelimit-limit"] == "7"  # explicit always wins


def test_default_limits_apply_on_sqlite_once_auth_is_on(tmp_path):
    settings = Settings(_env_file=None, CODOC_DATABASE_URL=f"sqlite:///{tmp_path}/a.db", **AUTH_ENV)  # type: ignore[call-arg]
    assert configured_limit(settings, "rate_limit_anonymous") == Limit(100, 3600)
    assert configured_limit(settings, "rate_limit_authenticated") == Limit(1000, 3600)
