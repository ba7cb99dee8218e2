"""``slowjobs.csrf``, kept for imports: the code lives in
``slowjobs.web.csrf``.
"""

from __future__ import annotations

from slowjobs.web.csrf import *  # noqa: F403
