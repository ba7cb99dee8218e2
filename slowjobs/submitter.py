"""``slowjobs.submitter``, kept for imports: the code lives in
``slowjobs.web.submitter``.
"""

from __future__ import annotations

from slowjobs.web.submitter import *  # noqa: F403
