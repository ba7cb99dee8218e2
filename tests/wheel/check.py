"""Build the wheel, install it into a clean virtual environment, use it.

Run by ``./dev test``: the wheel must carry the templates, static files
and migrations, and a bare site must work from it alone (nothing from this
checkout on the path).
"""

from __future__ import annotations

import argparse
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
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--extra", help="install the wheel with this extra")
    extra = parser.parse_args().extra
    with tempfile.TemporaryDirectory(prefix="slowjobs-wheel-") as scratch:
        folder = Path(scratch)
        dist, venv, site = folder / "dist", folder / "venv", folder / "site"
        run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", dist, ROOT)
        wheel = next(dist.glob("slowjobs-*.whl"))
        run(sys.executable, "-m", "venv", venv)
        python = venv / "bin" / "python"
        requirement = f"{wheel}[{extra}]" if extra else str(wheel)
        run(python, "-m", "pip", "install", "-q", requirement)
        site.mkdir()
        for name in ("smokesite.py", "smokeurls.py", "smoke.py"):
            shutil.copy(HERE / name, site / name)
        run(python, "-m", "django", "migrate", "-v0", "--settings", "smokesite",
            cwd=site)  # fmt: skip
        run(python, "smoke.py", cwd=site)
        version = subprocess.run(
            [python, "-c", "import django; print(django.get_version())"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        print(f"checked {wheel.name} on Django {version}")


if __name__ == "__main__":
    main()
