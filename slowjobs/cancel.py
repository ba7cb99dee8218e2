"""``slowjobs.cancel``, kept for imports: the code lives in
``slowjobs.jobs.cancel``.
"""

from __future__ import annotations

from slowjobs.jobs.cancel import *  # noqa: F403
