"""``slowjobs.responses``, kept for imports: the code lives in
``slowjobs.web.responses``.
"""

from __future__ import annotations

from slowjobs.web.responses import *  # noqa: F403
