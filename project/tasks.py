"""The demo site's tasks."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any, BinaryIO

from slowjobs.engine.context import JobContext
from slowjobs.jobs import files as jobfiles
from slowjobs.tasksapi import task

# A resumed report loses at most this much work.
CHECKPOINT_SECONDS = 1.0
CHUNK_BYTES = 1024 * 1024


@task
def noop() -> None:
    """Does nothing: what benchmarks and smoke tests enqueue."""


@task(takes_context=True)  # type: ignore[arg-type]
def crunch(context: JobContext, seconds: float) -> dict[str, Any]:
    """Pure CPU for ``seconds``: SHA-256 over and over, progress per round.

    What benchmarks run to see how CPU-bound jobs slow pages down, in a job
    thread or (``SLOWJOBS_RUNS_IN="process"``) in a job process.
    """
    called_at = time.time()  # when the task's code began, for the start-up cost
    digest = b"slowjobs"
    rounds = 0
    began = time.monotonic()
    ends = began + seconds
    while (now := time.monotonic()) < ends:
        for _ in range(1000):
            digest = hashlib.sha256(digest).digest()
        rounds += 1
        context.progress(int((now - began) * 1000), int(seconds * 1000))
    took = max(time.monotonic() - began, 1e-9)
    return {
        "hashes": rounds * 1000,
        "seconds": took,
        "hashes_per_second": rounds * 1000 / took,
        "pid": os.getpid(),
        "called_at": called_at,
    }


# django-stubs types the context as TaskContext; slowjobs passes its subclass.
@task(takes_context=True)  # type: ignore[arg-type]
def generate_report(context: JobContext, rows: int, row_ms: int) -> dict[str, Any]:
    """A CSV of ``rows`` numbered rows, spending ``row_ms`` on each.

    Every second it makes the rows written so far durable and records how
    far it got, and in which file.  Each attempt writes a file of its own,
    starting from a copy of the checkpointed part of the earlier one, so
    every row appears exactly once whatever happened in between: even an
    attempt that lost the job (its process stopped past its lease, then
    went on) only ever writes to its own file, which nobody reads.
    """
    path = jobfiles.result_path(context.ticket, f".{context.job.attempt}.csv")
    saved = context.checkpoint or {}
    done, size = int(saved.get("rows", 0)), int(saved.get("bytes", 0))
    earlier = _earlier_file(context.ticket, saved) if size else None
    if earlier is None:
        done = 0
    with _start_file(path, earlier, size) as handle:
        next_checkpoint = time.monotonic() + CHECKPOINT_SECONDS
        for row in range(done + 1, rows + 1):
            if row_ms:
                time.sleep(row_ms / 1000)
            handle.write(f"{row},{row * row}\n".encode())
            context.progress(row, rows, f"row {row} of {rows}")
            if time.monotonic() >= next_checkpoint or context.shutting_down:
                handle.flush()
                os.fsync(handle.fileno())
                stored = jobfiles.stored_name(path)
                if context.save_checkpoint(
                    {"rows": row, "bytes": handle.tell(), "file": stored}
                ) and earlier not in (None, path):
                    # The row names this attempt's file now: no attempt
                    # will read the earlier one again.
                    earlier.unlink(missing_ok=True)
                    earlier = None
                next_checkpoint = time.monotonic() + CHECKPOINT_SECONDS
        handle.flush()
        os.fsync(handle.fileno())
    jobfiles.attach_result_file(context.ticket, path)
    return {"rows": rows, "file": path.name}


def _start_file(path: Path, earlier: Path | None, size: int) -> BinaryIO:
    """This attempt's file, holding the first ``size`` bytes of ``earlier``."""
    if earlier == path:  # the same attempt again (a re-run): cut it back
        handle = path.open("r+b")
        handle.truncate(size)
        handle.seek(size)
        return handle
    handle = path.open("w+b")
    if earlier is None:
        handle.write(b"row,square\n")
    else:
        with earlier.open("rb") as source:
            handle.write(source.read(size))
    return handle


def _earlier_file(ticket: str, saved: dict[str, Any]) -> Path | None:
    """The file a checkpoint was made in (one of this job's own), if it is there."""
    name = str(saved.get("file") or f"results/{ticket}.csv")
    path = jobfiles.resolve(name)
    if path is None or not path.name.startswith(f"{ticket}.") or not path.is_file():
        return None
    return path


# A hash's state cannot be saved, so an interrupted checksum starts over.
@task(takes_context=True, on_interrupt="restart")  # type: ignore[call-overload, untyped-decorator]
def checksum_file(context: JobContext, name: str) -> dict[str, Any]:
    """SHA-256, byte count and line count (newlines, as ``wc -l``) of an upload.

    Read in 1 MiB chunks, so memory stays flat whatever the file's size.
    """
    path = jobfiles.resolve(name)
    if path is None or not path.is_file():
        raise FileNotFoundError(f"The uploaded file {name!r} is gone.")
    total = path.stat().st_size
    digest = hashlib.sha256()
    done = lines = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
            lines += chunk.count(b"\n")
            done += len(chunk)
            context.progress(
                done, total, f"{done / 1048576:.0f} of {total / 1048576:.0f} MB"
            )
    return {
        "sha256": digest.hexdigest(),
        "bytes": done,
        "lines": lines,
        "file": path.name,
    }
