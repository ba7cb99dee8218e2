"""``slowjobs.gunicorn``, kept for imports: the code lives in
``slowjobs.lifecycle.gunicorn``.
"""

from __future__ import annotations

from slowjobs.lifecycle.gunicorn import *  # noqa: F403
