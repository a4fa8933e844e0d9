"""`longrun.Worker`: serve kinds of a `longrun serve` from any machine, over the worker
protocol (`docs/worker-protocol.md`), with the same `async def handler(ctx, input)` and
`Context` as a process handler (`longrun.process`).
"""

from longrun.worker._assignment import AssignmentGone
from longrun.worker._worker import Worker

__all__ = ["AssignmentGone", "Worker"]
