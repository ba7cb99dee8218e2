"""The shared store on memcached, through pymemcache, JSON only.

Never pickle: memcached has no authentication, and unpickling a value that
someone else wrote there is running their code.  A value that is not valid
JSON reads as missing.

When memcached stops answering, calls fail fast for ``RETRY_AFTER`` seconds
(one timeout, not one per request) and answer ``None``, so callers use the
database; after that the next call tries memcached again.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from pymemcache.client.base import PooledClient
from pymemcache.client.hash import HashClient

from slowjobs.progress.base import RECORD_TTL, LiveStore

logger = logging.getLogger("slowjobs.progress")

TIMEOUT = 0.25  # seconds, to connect and for each call
# Compare-and-set rounds lost to other writers before a write gives up.
CAS_ROUNDS = 3
RETRY_AFTER = 2.0  # seconds memcached is left alone after a failure
MAX_VALUE_BYTES = 64 * 1024
JSON_FLAG = 1 << 4


class ValueTooLarge(ValueError):
    pass


class JsonSerde:
    """pymemcache serde that reads and writes JSON objects only."""

    def serialize(self, key: str | bytes, value: Any) -> tuple[bytes, int]:
        encoded = json.dumps(value, separators=(",", ":")).encode()
        if len(encoded) > MAX_VALUE_BYTES:
            raise ValueTooLarge(f"{key!r} would be {len(encoded)} bytes")
        return encoded, JSON_FLAG

    def deserialize(self, key: str | bytes, value: bytes, flags: int) -> Any:
        if flags != JSON_FLAG:
            return None
        try:
            decoded = json.loads(value)
        except ValueError:
            return None
        return decoded if isinstance(decoded, dict) else None


class MemcachedStore(LiveStore):
    shared = True

    def __init__(self, servers: tuple[tuple[str, int], ...]) -> None:
        self.servers = servers
        options: dict[str, Any] = {
            "serde": JsonSerde(),
            "connect_timeout": TIMEOUT,
            "timeout": TIMEOUT,
            "max_pool_size": 32,  # a connection per thread in use, shared safely
            "ignore_exc": False,
            "default_noreply": False,
            "no_delay": True,
        }
        # One server needs no hashing, which costs more than the round trip.
        self._client: PooledClient | HashClient = (
            PooledClient(servers[0], **options)
            if len(servers) == 1
            else HashClient(
                list(servers),
                use_pooling=True,
                retry_attempts=1,
                retry_timeout=0,
                dead_timeout=RETRY_AFTER,
                **options,
            )
        )
        # Guards _down_until.
        self._lock = threading.Lock()
        self._down_until = 0.0

    @property
    def available(self) -> bool:
        return time.monotonic() >= self._down_until

    def _failed(self, operation: str, exc: Exception) -> None:
        with self._lock:
            first = self._down_until <= time.monotonic()
            self._down_until = time.monotonic() + RETRY_AFTER
        if first:
            logger.warning(
                "slowjobs: memcached at %s did not answer a %s (%s); progress and "
                "cancel requests go through the database for the next %.0f s",
                ", ".join(f"{host}:{port}" for host, port in self.servers),
                operation,
                f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__,
                RETRY_AFTER,
            )

    def set(self, key: str, value: dict[str, Any], ttl: int = RECORD_TTL) -> bool:
        if not self.available:
            return False
        try:
            return bool(self._client.set(key, value, expire=ttl, noreply=False))
        except ValueTooLarge as exc:
            logger.warning("slowjobs: not cached: %s", exc)
            return False
        except Exception as exc:
            self._failed("set", exc)
            return False

    def set_unless(
        self,
        key: str,
        value: dict[str, Any],
        ttl: int = RECORD_TTL,
        *,
        unless: Callable[[dict[str, Any]], bool],
    ) -> bool | None:
        """``gets`` then ``cas`` (``add`` where there is nothing): a writer
        that slept between its look and its write cannot write over what
        another wrote meanwhile."""
        if not self.available:
            return None
        client = self._client
        try:
            for _ in range(CAS_ROUNDS):
                current, token = client.gets(key)
                if current is not None and unless(current):
                    return False
                if token is None:
                    stored = client.add(key, value, expire=ttl, noreply=False)
                else:
                    stored = client.cas(key, value, token, expire=ttl, noreply=False)
                if stored:
                    return True
            return False
        except ValueTooLarge as exc:
            logger.warning("slowjobs: not cached: %s", exc)
            return False
        except Exception as exc:
            self._failed("set", exc)
            return None

    def get_many(self, keys: list[str]) -> dict[str, dict[str, Any]] | None:
        if not self.available:
            return None
        try:
            found = self._client.get_many(keys)
        except Exception as exc:
            self._failed("get", exc)
            return None
        return {key: value for key, value in found.items() if value is not None}

    def delete_many(self, keys: list[str]) -> bool:
        if not self.available:
            return False
        try:
            self._client.delete_many(keys, noreply=False)
            return True
        except Exception as exc:
            self._failed("delete", exc)
            return False

    def close(self) -> None:
        self._client.close()
