"""Peak memory of a whole stack: the PSS of every process it runs.

PSS (proportional set size) splits pages shared between processes (a
forking server's copy-on-write pages) among them, so the sum over a stack is
what the stack costs the machine.
"""

from __future__ import annotations

import threading
from pathlib import Path


def children_of(roots: set[int]) -> set[int]:
    """The roots and all their descendants, from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # The command name may hold spaces: the fields follow its ")".
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found = {pid for pid in roots if pid in parents}
    grew = True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in found} - found
        found |= more
        grew = bool(more)
    return found


def pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class PeakMemory:
    """Samples the stack's total PSS in a thread until stopped."""

    def __init__(self, roots: set[int], interval: float = 0.25) -> None:
        self.roots = roots
        self.interval = interval
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def add(self, pid: int) -> None:
        self.roots.add(pid)

    def sample(self) -> int:
        total = sum(pss_kib(pid) for pid in children_of(set(self.roots)))
        self.peak_kib = max(self.peak_kib, total)
        return total

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    @property
    def peak_mib(self) -> float:
        return self.peak_kib / 1024
