"""The Python worker examples (`examples/python`): each runs its scenario against a real
`longrun serve` with `examples/python/longrun.toml`, as its docstring says to, and checks what
happened itself (exit status 0 and a last line saying so).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, Server

EXAMPLES = ROOT / "examples" / "python"


@pytest.fixture(scope="module")
def examples_server() -> Iterator[Server]:
    data = Path(tempfile.mkdtemp(prefix="longrun-sdk-python-examples-"))
    server = Server(data, config=EXAMPLES / "longrun.toml")
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)


@pytest.mark.parametrize("example", ["nekro_webapp.py", "naylence_sum.py"])
def test_example_runs_its_scenario(examples_server: Server, example: str) -> None:
    env = dict(os.environ, LONGRUN_SERVER=examples_server.url)
    env.pop("LONGRUN_TOKEN", None)
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / example)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert f"{example.removesuffix('.py')}: every check passed" in done.stdout, output
