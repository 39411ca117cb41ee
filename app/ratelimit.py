"""Attempt counters that slow down password guessing and mass sign-ups, in Redis or in process.

Design, and why:

- Sign-in and sign-up are each limited per client address AND per e-mail address:
  `settings.login_rate_limit` attempts per `settings.login_rate_window_seconds`. The address
  limit stops one machine from trying many accounts; the e-mail limit stops many machines
  (a botnet) from trying one account. The price of the e-mail limit is that anybody can hold a
  victim's sign-in shut for one window by failing on purpose; that is the usual trade-off, and
  the window is short.
- An attempt is counted when it arrives, before the password is verified (verification is the
  expensive part and the thing being guessed). A refused attempt changes nothing else: the
  caller raises before touching the database.
- A successful sign-in clears the e-mail counter (only the holder of the password can do that,
  so it opens no bypass, and a user who mistyped a few times is not punished later). It never
  clears the address counter: otherwise an attacker could interleave sign-ins to an account of
  their own and guess without limit.
- IPv6 clients are counted per /64, the block one subscriber usually gets, so that cycling through
  one's own addresses does not multiply the allowance.
- Fixed windows that start at the first attempt (Redis INCR, then PEXPIRE on the first hit, in one
  Lua script so the pair is atomic). A burst at the edge of two windows can reach twice the limit,
  which is acceptable for this purpose and costs one key per counter.
- Key names carry an HMAC of the e-mail or address, never the value itself, so Redis holds no
  e-mail addresses.
- When Redis is configured but unreachable, counting falls back to this process's memory (logged)
  rather than refusing every sign-in or dropping the protection altogether.
- The in-process counters are guarded by a lock (safe from threads and tasks) and bounded in
  number; past the bound the oldest windows, which are also the next to expire, are dropped first.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.config import get_settings
from app.errors import RateLimited
from app.redis import get_redis

log = structlog.get_logger(__name__)

Action = Literal["login", "signup"]
KEY_PREFIX = "cw:rl:"
DEFAULT_MAX_KEYS = 100_000

# KEYS[1]: the counter; ARGV[1]: window in ms. Returns {count, remaining ms}. A key without an expiry
# (PTTL -1) gets one too, so a counter can never become permanent.
_HIT_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
"""


@dataclass(frozen=True, slots=True)
class Counter:
    """One counter after an attempt: how many attempts this window, and seconds until it resets."""

    count: int
    reset_in: float


class MemoryRateLimiter:
    """Fixed-window counters in this process's memory, bounded to `max_keys` windows."""

    def __init__(self, max_keys: int = DEFAULT_MAX_KEYS, clock: Callable[[], float] = time.monotonic) -> None:
        self._max_keys = max_keys
        self._clock = clock
        self._lock = threading.Lock()
        # key -> (window end, count), in window-start order: with one window length per key kind,
        # the front holds the windows that expire first.
        self._windows: OrderedDict[str, tuple[float, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._windows)

    async def hit(self, keys: Sequence[str], window_seconds: int) -> list[Counter]:
        now = self._clock()
        out = []
        with self._lock:
            for key in keys:
                entry = self._windows.get(key)
                if entry is None or entry[0] <= now:
                    entry = (now + window_seconds, 1)
                    self._windows[key] = entry
                    self._windows.move_to_end(key)
                else:
                    entry = (entry[0], entry[1] + 1)
                    self._windows[key] = entry
                out.append(Counter(count=entry[1], reset_in=entry[0] - now))
            self._evict(now)
        return out

    async def forget(self, keys: Sequence[str]) -> None:
        with self._lock:
            for key in keys:
                self._windows.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._windows.clear()

    def _evict(self, now: float) -> None:
        while self._windows:
            key, (ends, _count) = next(iter(self._windows.items()))
            if ends > now and len(self._windows) <= self._max_keys:
                break
            del self._windows[key]


class RedisRateLimiter:
    """Fixed-window counters shared by every replica through Redis."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._script = redis.register_script(_HIT_SCRIPT)

    async def hit(self, keys: Sequence[str], window_seconds: int) -> list[Counter]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                await self._script(keys=[key], args=[window_seconds * 1000], client=pipe)
            results = await pipe.execute()
        return [Counter(count=int(count), reset_in=max(int(ttl), 0) / 1000) for count, ttl in results]

    async def forget(self, keys: Sequence[str]) -> None:
        if keys:
            await self.redis.delete(*keys)


_memory = MemoryRateLimiter()
_redis_limiter: RedisRateLimiter | None = None


def memory_limiter() -> MemoryRateLimiter:
    """The process-wide in-memory backend (also the fallback when Redis is unreachable)."""
    return _memory


def _backend() -> RedisRateLimiter | None:
    global _redis_limiter
    redis = get_redis()
    if redis is None:
        return None
    if _redis_limiter is None or _redis_limiter.redis is not redis:  # first use, or a reopened client
        _redis_limiter = RedisRateLimiter(redis)
    return _redis_limiter


@lru_cache(maxsize=4)
def _hmac_key(secret: str) -> bytes:
    # A key of its own, derived from the signing key, so the counters' names reveal nothing.
    return hmac.new(secret.encode(), b"cloudwizard rate-limit keys v1", hashlib.sha256).digest()


def _digest(value: str) -> str:
    key = _hmac_key(get_settings().resolved_jwt_secret())
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:32]


def address_bucket(address: str | None) -> str:
    """The unit an address is counted in: the IPv4 address, or the /64 an IPv6 address is in."""
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return str(ip)


def address_key(action: Action, address: str | None) -> str:
    return f"{KEY_PREFIX}{action}:addr:{_digest(address_bucket(address))}"


def email_key(action: Action, email: str) -> str:
    return f"{KEY_PREFIX}{action}:email:{_digest(email.strip().lower())}"


async def _hit(keys: list[str], window: int) -> list[Counter]:
    backend = _backend()
    if backend is not None:
        try:
            return await backend.hit(keys, window)
        except (TimeoutError, RedisError, OSError) as exc:
            log.warning("rate_limit_backend_unavailable", backend="redis", error_type=type(exc).__name__)
    return await _memory.hit(keys, window)


async def enforce(action: Action, *, address: str | None, email: str) -> None:
    """Count one attempt against the client address and the e-mail; raise RateLimited when either
    is over the limit. Call before verifying anything, and before any write."""
    settings = get_settings()
    limit, window = settings.login_rate_limit, settings.login_rate_window_seconds
    keys = [address_key(action, address), email_key(action, email)]
    counters = await _hit(keys, window)
    over = [(scope, c) for scope, c in zip(("address", "email"), counters, strict=True) if c.count > limit]
    if over:
        retry_after = max(1, min(window, max(math.ceil(c.reset_in) for _, c in over)))
        log.warning("rate_limited", action=action, scopes=[scope for scope, _ in over],
                    retry_after=retry_after)
        raise RateLimited(retry_after)


async def forget_email(action: Action, email: str) -> None:
    """Clear the e-mail counter (after a successful sign-in); the address counter is kept."""
    keys = [email_key(action, email)]
    backend = _backend()
    if backend is not None:
        try:
            await backend.forget(keys)
        except (TimeoutError, RedisError, OSError) as exc:
            log.warning("rate_limit_backend_unavailable", backend="redis", error_type=type(exc).__name__)
    await _memory.forget(keys)
