"""Rate limits on sign-in and sign-up: per address and per e-mail, 429 with Retry-After, no side
effects when refused; the Redis backend (when CW_TEST_REDIS_URL is set) and the in-process one."""

from __future__ import annotations

import os

import pytest

from app import ratelimit
from app import redis as app_redis
from app.ratelimit import MemoryRateLimiter, RedisRateLimiter, address_bucket
from app.redis import get_redis
from tests.auth_helpers import client_from, count_sessions, count_users, reset_rate_limits
from tests.conftest import PASSWORD, unique_email

LIMIT = 3
WINDOW = 120
needs_redis = pytest.mark.skipif(not os.environ.get("CW_TEST_REDIS_URL"), reason="needs CW_TEST_REDIS_URL")


@pytest.fixture(autouse=True)
def small_limits(settings, monkeypatch):
    reset_rate_limits()
    monkeypatch.setattr(settings, "login_rate_limit", LIMIT)
    monkeypatch.setattr(settings, "login_rate_window_seconds", WINDOW)


async def _login(client, email, password=PASSWORD):
    return await client.post("/v1/auth/login", json={"email": email, "password": password})


def _assert_429(r):
    assert r.status_code == 429, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["type"].endswith("/rate-limited")
    retry_after = int(r.headers["retry-after"])
    assert 1 <= retry_after <= WINDOW
    assert str(retry_after) in r.json()["detail"]


async def test_login_is_limited_per_email_across_addresses(app, client, signup):
    account = await signup()
    for i in range(LIMIT):
        async with client_from(app, f"198.51.100.{i + 1}") as other:
            assert (await _login(other, account["email"], "wrong password!")).status_code == 401
    async with client_from(app, "198.51.100.99") as fresh:
        # The right password from a fresh address is still refused: the e-mail is over its limit.
        r = await _login(fresh, account["email"].upper())
    _assert_429(r)
    assert await count_sessions() == 1  # the sign-up's only: the refused attempt opened nothing


async def test_login_is_limited_per_address_across_emails(app, client, signup):
    account = await signup()
    for _ in range(LIMIT):
        assert (await _login(client, unique_email(), "wrong password!")).status_code == 401
    _assert_429(await _login(client, account["email"]))
    assert await count_sessions() == 1
    # Another address is not affected.
    async with client_from(app, "198.51.100.7") as other:
        assert (await _login(other, account["email"])).status_code == 200


async def test_successful_login_clears_the_email_count_but_not_the_address_count(app, client, signup):
    account = await signup()
    async with client_from(app, "198.51.100.20") as a:
        for _ in range(LIMIT - 1):
            assert (await _login(a, account["email"], "wrong password!")).status_code == 401
        assert (await _login(a, account["email"])).status_code == 200
        # The address has now used its allowance, success included: no interleaving bypass.
        _assert_429(await _login(a, unique_email(), "wrong password!"))
    async with client_from(app, "198.51.100.21") as b:
        # The e-mail's count restarted with the success.
        for _ in range(LIMIT):
            assert (await _login(b, account["email"], "wrong password!")).status_code == 401
        _assert_429(await _login(b, account["email"]))


async def test_signup_is_limited_per_address_and_refusal_creates_nothing(app, client):
    for _ in range(LIMIT):
        r = await client.post("/v1/auth/signup", json={"email": unique_email(), "password": PASSWORD})
        assert r.status_code == 201
    r = await client.post("/v1/auth/signup", json={"email": unique_email(), "password": PASSWORD})
    _assert_429(r)
    assert await count_users() == LIMIT and await count_sessions() == LIMIT
    # Sign-in is counted separately from sign-up.
    async with client_from(app, "198.51.100.30") as other:
        assert (await other.post("/v1/auth/signup", json={"email": unique_email(), "password": PASSWORD})
                ).status_code == 201


async def test_signup_is_limited_per_email(app):
    email = unique_email()
    for i in range(LIMIT):
        async with client_from(app, f"198.51.100.{40 + i}") as c:
            r = await c.post("/v1/auth/signup", json={"email": email, "password": PASSWORD})
            assert r.status_code == (201 if i == 0 else 409)
    async with client_from(app, "198.51.100.50") as c:
        _assert_429(await c.post("/v1/auth/signup", json={"email": email.upper(), "password": PASSWORD}))


async def test_invalid_bodies_are_not_counted(client, signup):
    account = await signup()
    for _ in range(LIMIT * 2):
        assert (await client.post("/v1/auth/login", json={"email": "nope"})).status_code == 422
    assert (await _login(client, account["email"])).status_code == 200


async def test_ipv6_clients_are_counted_per_64(app, signup):
    account = await signup()
    for i in range(LIMIT):
        async with client_from(app, f"2001:db8:1:2::{i + 1}") as c:
            assert (await _login(c, unique_email(), "wrong password!")).status_code == 401
    async with client_from(app, "2001:db8:1:2:ffff::1") as c:
        _assert_429(await _login(c, account["email"]))
    async with client_from(app, "2001:db8:1:3::1") as c:
        assert (await _login(c, account["email"])).status_code == 200


def test_address_buckets():
    assert address_bucket("203.0.113.10") == "203.0.113.10"
    assert address_bucket("::ffff:203.0.113.10") == "203.0.113.10"
    assert address_bucket("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert address_bucket(None) == "unknown"
    assert address_bucket("testclient") == "testclient"


def test_key_names_do_not_contain_the_email_or_address():
    key = ratelimit.email_key("login", "Alice@Example.com")
    assert "alice" not in key.lower() and "example" not in key.lower()
    assert key == ratelimit.email_key("login", "alice@example.com")
    assert key != ratelimit.email_key("signup", "alice@example.com")
    assert "203.0.113" not in ratelimit.address_key("login", "203.0.113.10")


# --- the in-process backend ---------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_memory_window_resets_after_the_window():
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)
    counts = [(await limiter.hit(["k"], 60))[0] for _ in range(3)]
    assert [c.count for c in counts] == [1, 2, 3]
    clock.now += 59
    c = (await limiter.hit(["k"], 60))[0]
    assert c.count == 4 and c.reset_in == pytest.approx(1)
    clock.now += 1
    c = (await limiter.hit(["k"], 60))[0]
    assert c.count == 1 and c.reset_in == pytest.approx(60)
    await limiter.forget(["k"])
    assert (await limiter.hit(["k"], 60))[0].count == 1


async def test_memory_is_bounded_and_drops_the_oldest_windows_first():
    clock = FakeClock()
    limiter = MemoryRateLimiter(max_keys=100, clock=clock)
    for i in range(250):
        clock.now += 0.01
        await limiter.hit([f"key-{i}"], 60)
    assert len(limiter) == 100
    # The newest windows survived with their counts; the oldest were dropped.
    assert (await limiter.hit(["key-249"], 60))[0].count == 2
    assert (await limiter.hit(["key-0"], 60))[0].count == 1
    # Expired windows are dropped as soon as time passes them, well before the bound.
    clock.now += 61
    await limiter.hit(["late"], 60)
    assert len(limiter) == 1


async def test_memory_counts_are_exact_under_concurrency():
    import asyncio
    import threading

    limiter = MemoryRateLimiter()

    def worker():
        for _ in range(200):
            asyncio.run(limiter.hit(["shared"], 60))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (await limiter.hit(["shared"], 60))[0].count == 801


# --- the Redis backend --------------------------------------------------------------------------------


@needs_redis
async def test_redis_backend_is_used_and_stores_only_digests(client, signup):
    redis = get_redis()
    assert redis is not None
    account = await signup()
    for _ in range(LIMIT):
        await _login(client, account["email"], "wrong password!")
    _assert_429(await _login(client, account["email"]))
    keys = [k async for k in redis.scan_iter(match=f"{ratelimit.KEY_PREFIX}*")]
    assert keys, "the counters should be in Redis"
    assert len(ratelimit.memory_limiter()) == 0, "nothing should fall back to memory"
    for key in keys:
        assert account["email"].split("@")[0] not in key and "203.0.113" not in key
        ttl = await redis.ttl(key)
        assert 0 < ttl <= WINDOW
    assert int(await redis.get(ratelimit.email_key("login", account["email"]))) == LIMIT + 1


@needs_redis
async def test_redis_counters_are_atomic_under_concurrency():
    import asyncio

    limiter = RedisRateLimiter(get_redis())
    results = await asyncio.gather(*[limiter.hit(["cw:rl:test:concurrent"], 60) for _ in range(50)])
    assert sorted(r[0].count for r in results) == list(range(1, 51))
    assert 0 < await get_redis().pttl("cw:rl:test:concurrent") <= 60_000


async def test_unreachable_redis_falls_back_to_memory(client, signup, settings, monkeypatch):
    """Redis configured but down (a closed port): sign-in keeps working and stays limited."""
    account = await signup()
    monkeypatch.setattr(settings, "redis_url", "redis://127.0.0.1:1/0")
    monkeypatch.setattr(app_redis, "_client", None)  # let get_redis() connect to the dead address
    try:
        for _ in range(LIMIT):
            assert (await _login(client, account["email"], "wrong password!")).status_code == 401
        _assert_429(await _login(client, account["email"]))
        assert len(ratelimit.memory_limiter()) > 0
    finally:
        dead = app_redis.get_redis()
        assert dead is not None and dead.connection_pool.connection_kwargs["port"] == 1
        await dead.aclose()
