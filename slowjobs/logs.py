"""``slowjobs.logs``, kept for imports: the code lives in
``slowjobs.monitoring.logs``.
"""

from __future__ import annotations

from slowjobs.monitoring.logs import *  # noqa: F403
