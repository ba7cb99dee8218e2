"""``slowjobs.jobfiles``, kept for imports: the code lives in
``slowjobs.jobs.files``.
"""

from __future__ import annotations

from slowjobs.jobs.files import *  # noqa: F403
