"""``slowjobs.metrics``, kept for imports: the code lives in
``slowjobs.monitoring.metrics``.
"""

from __future__ import annotations

from slowjobs.monitoring.metrics import *  # noqa: F403
