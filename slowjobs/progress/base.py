"""What a live store offers; values are small JSON objects keyed by ticket."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from slowjobs.progress.records import opened

# A live record lives this long after its last write: a crashed process's
# records vanish on their own, and the database has the rest.
RECORD_TTL = 24 * 3600

KEY_PREFIX = "slowjobs:"


def live_key(ticket: str) -> str:
    return f"{KEY_PREFIX}{ticket}:live"


def log_key(ticket: str) -> str:
    return f"{KEY_PREFIX}{ticket}:log"


def cancel_key(ticket: str) -> str:
    return f"{KEY_PREFIX}{ticket}:cancel"


def cancel_flagged(store: LiveStore, ticket: str) -> bool:
    """Whether ``store`` holds a cancel request for ``ticket`` that slowjobs wrote."""
    key = cancel_key(ticket)
    stored = store.get(key)
    return stored is not None and opened(key, stored) is not None


class LiveStore(ABC):
    # Whether other processes see what this store holds.
    shared: bool = False

    @abstractmethod
    def set(self, key: str, value: dict[str, Any], ttl: int = RECORD_TTL) -> bool:
        """Store ``value``; False when the store could not."""

    @abstractmethod
    def set_unless(
        self,
        key: str,
        value: dict[str, Any],
        ttl: int = RECORD_TTL,
        *,
        unless: Callable[[dict[str, Any]], bool],
    ) -> bool | None:
        """Store ``value`` unless the value there now makes ``unless`` true,
        atomically against every other writer: True when stored, False
        when the value there was kept, None when the store is unavailable."""

    @abstractmethod
    def get_many(self, keys: list[str]) -> dict[str, dict[str, Any]] | None:
        """The values found (missing keys left out), or None when unavailable."""

    @abstractmethod
    def delete_many(self, keys: list[str]) -> bool: ...

    @property
    def available(self) -> bool:
        return True

    def get(self, key: str) -> dict[str, Any] | None:
        found = self.get_many([key])
        return None if found is None else found.get(key)
