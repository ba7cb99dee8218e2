"""Build the wheel, install it into a clean virtual environment, use it.

Run by ``./dev test``: the wheel must carry the templates, static files
and migrations, and a bare site must work from it alone (nothing from this
checkout on the path).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def run(*args: str | Path, cwd: Path | None = None) -> None:
    subprocess.run([str(a) for a in args], cwd=cwd, check=True)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="slowjobs-wheel-") as scratch:
        folder = Path(scratch)
        dist, venv, site = folder / "dist", folder / "venv", folder / "site"
        run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", dist, ROOT)
        wheel = next(dist.glob("slowjobs-*.whl"))
        run(sys.executable, "-m", "venv", venv)
        python = venv / "bin" / "python"
        run(python, "-m", "pip", "install", "-q", wheel)
        site.mkdir()
        for name in ("smokesite.py", "smokeurls.py", "smoke.py"):
            shutil.copy(HERE / name, site / name)
        run(python, "-m", "django", "migrate", "-v0", "--settings", "smokesite",
            cwd=site)  # fmt: skip
        run(python, "smoke.py", cwd=site)
        print(f"checked {wheel.name}")


if __name__ == "__main__":
    main()
