"""Workers with two `longrun serve` nodes on one PostgreSQL database: a worker connected to
node B runs a task started on node A; and a worker on B killed with SIGKILL mid-task (after two
saved steps) has its task re-run on a second worker, connected to node A, from its last step.

The database is `$LONGRUN_TEST_POSTGRES_URL`, in a schema of its own that is dropped afterwards.
Without the variable these tests are skipped, loudly; under CI (`$CI` set) they fail instead.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from longrun import AsyncClient, Context, Status
from tests.conftest import ALICE, Server
from tests.test_worker import Process, make_worker, run, wait_for_end

URL_VAR = "LONGRUN_TEST_POSTGRES_URL"

# Worker kinds only (no command to find relative to the file), on PostgreSQL in the schema the
# fixture names; workers are lost after 1.5 s without a heartbeat, so the rescue is quick.
CONFIG = """
[server]
listen = "127.0.0.1:0"
postgres = "{url}"
postgres_schema = "{schema}"
node = "{node}"

[[tokens]]
token = "{token}"
principal = "alice"

[workers]
heartbeat_ms = 300
expiry_ms = 1500

[[kinds]]
name = "w_nodes_flow"
description = "Started on node A, run by a worker connected to node B."
worker = true
served_by = ["alice"]

[[kinds]]
name = "w_nodes_rescue"
description = "Its worker on node B is killed; a worker on node A re-runs it from its last step."
worker = true
served_by = ["alice"]
restart = "rerun"
"""


ENDS = 30.0
"""Seconds a task gets to reach the point a test waits for: it fails, rather than hangs, when a
task never reaches the other node's worker."""


async def progressed(client: AsyncClient, task: str) -> None:
    async for event in client.watch(task):
        if event.change.type == "progress":
            return


class Nodes:
    """Two servers on one PostgreSQL schema."""

    def __init__(self, a: Server, b: Server) -> None:
        self.a = a
        self.b = b


def database() -> str:
    url = os.environ.get(URL_VAR)
    if url:
        return url
    if os.environ.get("CI"):
        pytest.fail(f"the two-node tests need {URL_VAR}; CI must set it")
    print(
        f"\n*** SKIPPED: the two-node worker tests need {URL_VAR}, "
        "e.g. postgres://postgres@127.0.0.1:5432/test\n",
        file=sys.stderr,
    )
    pytest.skip(f"set {URL_VAR} to run the two-node PostgreSQL tests")


@pytest.fixture(scope="module")
def nodes() -> Iterator[Nodes]:
    url = database()
    schema = f"lrt_py_{uuid.uuid4().hex[:12]}"
    data = Path(tempfile.mkdtemp(prefix="longrun-sdk-python-nodes-"))
    servers = []
    for node in ("node-a", "node-b"):
        home = data / node
        home.mkdir()
        config = home / "longrun.toml"
        config.write_text(CONFIG.format(url=url, schema=schema, node=node, token=ALICE))
        server = Server(home, config)
        server.start()
        servers.append(server)
    try:
        yield Nodes(servers[0], servers[1])
    finally:
        for server in servers:
            server.stop()
        psql = shutil.which("psql")
        if psql is not None:
            subprocess.run(
                [psql, url, "-qc", f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'],
                check=False,
                capture_output=True,
            )
        if os.environ.get("LONGRUN_KEEP_DATA"):
            print(f"node data and logs kept in {data}", file=sys.stderr)
        else:
            shutil.rmtree(data, ignore_errors=True)


async def test_a_worker_on_node_b_runs_a_task_started_on_node_a(nodes: Nodes) -> None:
    worker = make_worker(nodes.b, name="on-b")

    @worker.kind("w_nodes_flow")
    async def flow(ctx: Context, input: dict[str, Any]) -> dict[str, Any]:
        saved = await ctx.step("double", lambda: input["n"] * 2)
        await ctx.progress(50, "half way")
        return {"double": saved, "attempt": ctx.attempt}

    serving: list[Any] = []
    await run(worker, serving)
    try:
        async with AsyncClient(nodes.a.url, token=ALICE) as on_a:
            task = await on_a.start("w_nodes_flow", {"n": 21})
            ended = await asyncio.wait_for(wait_for_end(on_a, task.id), ENDS)
        assert ended.status is Status.COMPLETED, ended.error
        # Moving from A to B's worker was no attempt.
        assert ended.output == {"double": 42, "attempt": 1}
        assert ended.attempt == 1
    finally:
        for running, loop_task in serving:
            running.stop(drain=False)
            await loop_task


async def test_a_killed_workers_task_is_rerun_on_the_other_nodes_worker_from_its_last_step(
    nodes: Nodes, tmp_path: Path
) -> None:
    record = tmp_path / "steps"
    first = Process(nodes.b, "first", "w_nodes_rescue", record)
    second: Process | None = None
    try:
        await first.says("registered as")
        async with AsyncClient(nodes.a.url, token=ALICE) as on_a:
            task = await on_a.start("w_nodes_rescue", {"hang": True})
            await asyncio.wait_for(progressed(on_a, task.id), ENDS)
            assert record.read_text().splitlines() == ["first one", "first two"]

            first.process.send_signal(signal.SIGKILL)
            first.process.wait(timeout=30)
            second = Process(nodes.a, "second", "w_nodes_rescue", record)

            ended = await asyncio.wait_for(wait_for_end(on_a, task.id), ENDS)
        assert ended.status is Status.COMPLETED, ended.error
        assert ended.output is not None
        assert ended.output["finished_by"] == "second"
        assert ended.output["sum"] == 6
        # The lost worker's task was re-run: a new attempt, from the steps it had saved.
        assert ended.output["attempt"] == 2
        assert record.read_text().splitlines() == ["first one", "first two", "second three"]
    finally:
        first.stop()
        if second is not None:
            second.stop()
