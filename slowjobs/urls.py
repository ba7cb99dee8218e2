"""``slowjobs.urls``, kept for imports: the code lives in
``slowjobs.web.urls``.
"""

from __future__ import annotations

from slowjobs.web.urls import *  # noqa: F403
