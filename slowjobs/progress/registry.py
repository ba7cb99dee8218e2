"""This process's live store, made on first use and after a fork."""

from __future__ import annotations

import os
import threading

from django.core.signals import setting_changed

from slowjobs import conf
from slowjobs.progress.base import LiveStore
from slowjobs.progress.local import LocalStore
from slowjobs.progress.memcached import MemcachedStore

# Guards _store.
_lock = threading.Lock()
_store: LiveStore | None = None


def get_store() -> LiveStore:
    global _store
    with _lock:
        if _store is None:
            servers = conf.get().memcached
            _store = MemcachedStore(servers) if servers else LocalStore()
        return _store


def reset_store() -> None:
    """Forget the store (settings changed, or tests); the next use makes one."""
    global _store
    with _lock:
        store, _store = _store, None
    if isinstance(store, MemcachedStore):
        store.close()


def _forget_after_fork() -> None:
    global _store, _lock
    _store = None  # the parent's sockets are not ours to use
    _lock = threading.Lock()


def _settings_changed(*, setting: str, **kwargs: object) -> None:
    if setting == "SLOWJOBS_MEMCACHED":
        reset_store()


os.register_at_fork(after_in_child=_forget_after_fork)
setting_changed.connect(_settings_changed)
