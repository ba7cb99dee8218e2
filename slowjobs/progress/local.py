"""The embedded store: a dict in this process, for a single-process site."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from slowjobs.progress.base import RECORD_TTL, LiveStore


class LocalStore(LiveStore):
    shared = False

    def __init__(self) -> None:
        # Guards _values: job threads write while request threads read.
        self._lock = threading.Lock()
        self._values: dict[str, tuple[float, dict[str, Any]]] = {}

    def set(self, key: str, value: dict[str, Any], ttl: int = RECORD_TTL) -> bool:
        with self._lock:
            self._values[key] = (time.monotonic() + ttl, value)
        return True

    def set_unless(
        self,
        key: str,
        value: dict[str, Any],
        ttl: int = RECORD_TTL,
        *,
        unless: Callable[[dict[str, Any]], bool],
    ) -> bool | None:
        with self._lock:
            entry = self._values.get(key)
            if entry is not None and entry[0] >= time.monotonic() and unless(entry[1]):
                return False
            self._values[key] = (time.monotonic() + ttl, value)
        return True

    def get_many(self, keys: list[str]) -> dict[str, dict[str, Any]] | None:
        now = time.monotonic()
        found = {}
        with self._lock:
            for key in keys:
                entry = self._values.get(key)
                if entry is None:
                    continue
                if entry[0] < now:
                    del self._values[key]
                    continue
                found[key] = entry[1]
        return found

    def delete_many(self, keys: list[str]) -> bool:
        with self._lock:
            for key in keys:
                self._values.pop(key, None)
        return True
