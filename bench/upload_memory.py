"""Memory of a server process during a large upload and its checksum job.

    .venv/bin/python bench/upload_memory.py [--mb 200]

Starts the demo under gunicorn (one worker process), streams a file of
``--mb`` MiB to /demo/checksum/ without holding it in this process either,
waits for the job, and prints the worker's peak resident memory (VmHWM)
against its resident memory when idle: the upload and the job should cost
a few MiB, not the size of the file.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import PYTHON, ROOT, prepared_databases
from tests.services import free_port, wait_for_port

BOUNDARY = "----slowjobs-bench"


def memory_kib(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields


def worker_pid(master: int) -> int:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return int(children[0])


def stream_body(path: Path) -> tuple[Iterator[bytes], int]:
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="{path.name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()

    def chunks() -> Iterator[bytes]:
        yield head
        with path.open("rb") as handle:
            while chunk := handle.read(1024 * 1024):
                yield chunk
        yield tail

    return chunks(), len(head) + path.stat().st_size + len(tail)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="slowjobs-bench-") as tmp:
        scratch = Path(tmp)
        source = scratch / "upload.bin"
        digest = hashlib.sha256()
        with source.open("wb") as handle:
            for _ in range(args.mb):
                block = os.urandom(1024 * 1024)
                digest.update(block)
                handle.write(block)
        _, env = next(prepared_databases("sqlite", scratch))
        env = {**env, "DJANGO_SETTINGS_MODULE": "project.settings"}  # the demo's URLs
        port = free_port()
        server = subprocess.Popen(
            [PYTHON, "-m", "gunicorn", "-c", "project/gunicorn.conf.py",
             "--bind", f"127.0.0.1:{port}", "--workers", "1"],
            cwd=ROOT, env=env, stdout=(scratch / "g.log").open("wb"),
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            wait_for_port(port, 30)
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
            connection.request("GET", "/")
            connection.getresponse().read()
            pid = worker_pid(server.pid)
            time.sleep(0.5)
            idle = memory_kib(pid)["VmRSS"]
            body, length = stream_body(source)
            started = time.perf_counter()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
            connection.request(
                "POST", "/demo/checksum/", body=body,
                headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
                         "Content-Length": str(length), "Accept": "application/json"},
            )  # fmt: skip
            reply = connection.getresponse()
            answer = json.loads(reply.read())
            uploaded = time.perf_counter() - started
            assert reply.status == 202, answer
            cookie = "; ".join(
                header.split(";")[0] for header in reply.headers.get_all("Set-Cookie")
            )
            status_path = f"/jobs/{answer['ticket']}/status"
            while True:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                connection.request("GET", status_path, headers={"Cookie": cookie})
                status = json.loads(connection.getresponse().read())
                if status["status"] not in ("queued", "running"):
                    break
                time.sleep(0.2)
            done = time.perf_counter() - started
            peak = memory_kib(pid)["VmHWM"]
        except Exception:
            print((scratch / "g.log").read_text()[-3000:], file=sys.stderr)
            raise
        finally:
            server.terminate()
            server.wait(30)
    assert status["status"] == "succeeded", status
    assert status["result"]["sha256"] == digest.hexdigest()
    print(
        f"{args.mb} MiB upload + checksum: upload {uploaded:.1f} s, job done after "
        f"{done:.1f} s; worker RSS idle {idle / 1024:.1f} MiB, peak "
        f"{peak / 1024:.1f} MiB: growth {(peak - idle) / 1024:.1f} MiB"
    )


if __name__ == "__main__":
    main()
