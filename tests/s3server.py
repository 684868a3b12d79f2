"""A real S3-protocol server on loopback for tests and benchmarks: moto in server mode.

``python tests/s3server.py`` listens on a free port of 127.0.0.1, prints the port on its
first line of output, and serves until it is terminated. :func:`start` runs it as a
subprocess and creates a bucket.

moto evaluates a conditional put (``If-None-Match: *``, ``If-Match``) as a check followed
by a write, so two requests racing through its threads could both pass the check, where
S3 itself decides atomically. To test fsstore against the behaviour S3 documents, this
server lets one request at a time into moto; connections are still served by threads.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterable
from typing import Any

BUCKET = "fsstore-test"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "fsstore-test", "AWS_SECRET_ACCESS_KEY": "fsstore-test",
               "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1"}


def serve() -> None:
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    application = DomainDispatcherApplication(create_backend_app)
    one_at_a_time = threading.Lock()

    def serialised(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        with one_at_a_time:
            return list(application(environ, start_response))

    server = make_server("127.0.0.1", 0, serialised, threaded=True,
                         request_handler=MotoRequestHandler)
    print(server.server_port, flush=True)
    server.serve_forever()


def start(timeout: float = 60.0) -> tuple[subprocess.Popen[str], str]:
    """Start the server in a subprocess; returns it and its endpoint, with the bucket made."""
    process = subprocess.Popen([sys.executable, __file__], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True, env={**os.environ})
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    line = process.stdout.readline() if ready else ""
    if not line.strip().isdigit():
        process.kill()
        raise RuntimeError(f"the moto S3 server did not start within {timeout:g}s")
    endpoint = f"http://127.0.0.1:{int(line)}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            request = urllib.request.Request(f"{endpoint}/{BUCKET}", method="PUT")
            urllib.request.urlopen(request, timeout=10).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                raise
            time.sleep(0.1)
    return process, endpoint


def stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


if __name__ == "__main__":
    serve()
