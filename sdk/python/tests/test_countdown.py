"""`examples/handlers/countdown.py`, the demo's handler written on `longrun.process.run`, as the
runtime runs it: a child process speaking JSON lines. It runs here with `-I -S` (no
site-packages, no `PYTHONPATH`), as under the demo's bare `python3`: it must find the SDK's
source by itself and need nothing beyond the standard library.

(`crates/process/tests/process.rs` runs it through the real runtime as well.)
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

COUNTDOWN = Path(__file__).resolve().parents[3] / "examples" / "handlers" / "countdown.py"


class Handler:
    def __init__(self, input: Any) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-I", "-S", str(COUNTDOWN)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        start = {"type": "start", "protocol": 1, "task": "task_c", "kind": "countdown"}
        self.send(start | {"attempt": 1, "input": input})

    def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()

    def lines(self) -> Iterator[dict[str, Any]]:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            yield json.loads(line)

    def exit_status(self) -> int:
        assert self.process.stdin is not None
        self.process.stdin.close()
        return self.process.wait(timeout=30)


@pytest.fixture
def handlers() -> Iterator[list[Handler]]:
    started: list[Handler] = []
    yield started
    for handler in started:
        if handler.process.poll() is None:
            handler.process.kill()
            handler.process.wait()
        for pipe in (handler.process.stdout, handler.process.stderr):
            if pipe is not None:
                pipe.close()


@pytest.mark.parametrize(("answer", "ending"), [(True, "complete"), ("no", "fail")])
def test_counts_down_and_asks_half_way(handlers: list[Handler], answer: Any, ending: str) -> None:
    handler = Handler({"seconds": 2, "confirm": True})
    handlers.append(handler)
    seen = []
    for line in handler.lines():
        seen.append(line)
        if line["type"] == "ask":
            assert line["key"] == "confirm"
            assert line["request"]["type"] == "boolean"
            handler.send({"type": "answer", "key": "confirm", "value": answer})
        if line["type"] == ending:
            break
    assert handler.exit_status() == 0
    percents = [line.get("percent") for line in seen if line["type"] == "progress"]
    if ending == "complete":
        assert percents == [0.0, 50.0, 100]
        assert seen[-1]["output"] == {
            "seconds": 2,
            "confirmed": True,
            "summary": "counted down 2 s",
        }
    else:
        assert percents == [0.0]
        assert (seen[-1]["code"], seen[-1]["message"]) == (
            "declined",
            "the countdown was not confirmed",
        )


@pytest.mark.parametrize("how", ["line", "sigterm"])
def test_honours_cancel(handlers: list[Handler], how: str) -> None:
    handler = Handler({"seconds": 60})
    handlers.append(handler)
    lines = handler.lines()
    assert next(lines)["type"] == "progress"
    if how == "line":
        handler.send({"type": "cancel"})
    else:
        handler.process.send_signal(signal.SIGTERM)
    assert next(lines) == {"type": "cancelled", "message": "the countdown was cancelled"}
    assert handler.exit_status() == 0


def test_refuses_a_bad_input(handlers: list[Handler]) -> None:
    handler = Handler({"seconds": -3})
    handlers.append(handler)
    [outcome] = list(handler.lines())
    assert outcome["type"] == "fail"
    assert outcome["code"] == "invalid_input"
    assert handler.exit_status() == 0
