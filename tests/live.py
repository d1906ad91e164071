"""A real server process for the tests that need one (fuzzing, browsers): `maxloyalty
serve` on a free port of 127.0.0.1, against the worker's database."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from maxloyalty.config import Settings
from tests.conftest import TELEGRAM_BOT_TOKEN, TEST_SECRET


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(settings: Settings, owner_url: str, **extra: str) -> dict[str, str]:
    """The environment an operator would start the server with, for this test run."""
    env = {
        **os.environ,
        "DATABASE_URL": owner_url,
        "MAXLOYALTY_DATA_DIR": str(settings.data_dir),
        "MAXLOYALTY_SECRET_KEY": TEST_SECRET,
        "MAXLOYALTY_TELEGRAM_BOT_TOKEN": TELEGRAM_BOT_TOKEN,
        "MAXLOYALTY_LOG_LEVEL": "ERROR",
        **extra,
    }
    env.pop("REDIS_URL", None)
    return env


@contextmanager
def served(env: dict[str, str]) -> Iterator[str]:
    """`maxloyalty serve --no-worker` until the block ends; yields its base URL once ready."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # What it says goes to a file, so that a server that dies tells why.
    said = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below
    server = subprocess.Popen(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "maxloyalty", "serve", "--port", str(port), "--no-worker"],
        env=env,
        stdout=said,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if server.poll() is not None:
                said.seek(0)
                raise AssertionError(
                    f"the server exited: {said.read()[-3000:].decode(errors='replace')}"
                )
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not become ready"
            time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=20)
        said.close()
