"""``slowjobs.uploads``, kept for imports: the code lives in
``slowjobs.web.uploads``.
"""

from __future__ import annotations

from slowjobs.web.uploads import *  # noqa: F403
