"""``python -m slowjobs.processes FD NICENESS``: a job process (see ``child``)."""

from __future__ import annotations

import sys

from slowjobs.engine.processes import child

child.main(sys.argv)
