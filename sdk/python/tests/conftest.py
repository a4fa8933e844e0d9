"""Fixtures: a real `longrun serve` (the binary `$LONGRUN_BIN`, else the workspace's debug
build) on a free port with a temporary data directory and `tests/server/longrun.toml`, and
clients of it as two principals.

The server's `python3` is this interpreter (its directory goes first on the server's `PATH`), so
the handlers run with the SDK under test installed.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from longrun import AsyncClient, Client, Reconnect

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
CONFIG = HERE / "server" / "longrun.toml"
KINDS = {"work", "countdown"} | {
    f"w_{name}" for name in ("flow", "rescue", "fence", "grace", "capacity", "drain", "agent")
}
"""The kinds of `server/longrun.toml`: two process handlers, and the worker kinds."""
ALICE = "alice-secret"
BOB = "bob-secret"


def binary() -> Path:
    path = os.environ.get("LONGRUN_BIN")
    if path:
        return Path(path)
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    return target / "debug" / "longrun"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Server:
    """One `longrun serve`, which a test may stop and start again on the same port and data."""

    def __init__(self, data: Path, config: Path = CONFIG) -> None:
        self.bin = binary()
        self.config = config
        if not self.bin.is_file():
            pytest.fail(
                f"no server binary at {self.bin}: set LONGRUN_BIN, or `cargo build -p longrun-cli`"
            )
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data = data
        self.log = data / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = dict(os.environ)
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    str(self.bin),
                    "serve",
                    "--config",
                    str(self.config),
                    "--listen",
                    f"127.0.0.1:{self.port}",
                    "--data",
                    str(self.data / "store"),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        for _ in range(300):
            if self.process.poll() is not None:
                pytest.fail(f"the server exited at start-up:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        pytest.fail(f"the server did not come up:\n{self.log.read_text()}")

    def kill(self) -> None:
        """A crash (SIGKILL): what was running is taken up by the next start's recovery."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=30)
            self.process = None

    def stop(self) -> None:
        """A graceful stop (SIGTERM): running tasks are left to their restart policy."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)
            self.process = None


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    data = Path(tempfile.mkdtemp(prefix="longrun-sdk-python-"))
    server = Server(data)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        if os.environ.get("LONGRUN_KEEP_DATA"):
            print(f"server data and log kept in {data}", file=sys.stderr)
        else:
            shutil.rmtree(data, ignore_errors=True)


@pytest.fixture
def client(server: Server) -> Iterator[Client]:
    with Client(server.url, token=ALICE, reconnect=Reconnect(attempts=20)) as client:
        yield client


@pytest.fixture
def bob(server: Server) -> Iterator[Client]:
    with Client(server.url, token=BOB) as client:
        yield client


@pytest.fixture
async def aclient(server: Server) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(server.url, token=ALICE) as client:
        yield client
