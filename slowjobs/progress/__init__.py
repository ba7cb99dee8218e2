"""The live store: progress and cancel flags that every process can read.

``get_store()`` gives this process's store: memcached when
``SLOWJOBS_MEMCACHED`` names servers, otherwise an embedded in-process store
(enough for one process).  Every operation answers ``None`` when the store
cannot, and callers then use the database, which stays the source of truth.
"""

from __future__ import annotations

from slowjobs.progress.base import LiveStore
from slowjobs.progress.registry import get_store, reset_store

__all__ = ["LiveStore", "get_store", "reset_store"]
