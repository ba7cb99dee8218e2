"""``python -m slowjobs.processes FD NICENESS``: a job process (see ``child``)."""

from __future__ import annotations

import sys

from slowjobs.processes import child

child.main(sys.argv)
