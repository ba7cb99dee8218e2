"""``slowjobs.context``, kept for imports: the code lives in
``slowjobs.engine.context``.
"""

from __future__ import annotations

from slowjobs.engine.context import *  # noqa: F403
