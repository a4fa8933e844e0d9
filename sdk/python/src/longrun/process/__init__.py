"""Process handlers in Python: `run(handler)` speaks the process-handler protocol
(`docs/process-protocol.md`, versions 1 and 2) so that a handler is just its logic.

```python
from pydantic import BaseModel
from longrun.process import Context, Fail, run

class Order(BaseModel):
    item: str
    quantity: int

async def handler(ctx: Context, order: Order) -> dict:
    await ctx.progress(10, "checking stock")
    price = await ctx.step("quote", lambda: quote(order))   # once, even across re-runs
    if not await ctx.ask("approve", {"type": "boolean", "message": f"Pay {price}?"}):
        raise Fail("declined", "the buyer said no")
    return {"paid": price}

run(handler)
```
"""

from longrun.process._attempt import Handler
from longrun.process._context import Cancelled, Context, Fail, ProtocolError, Unanswered
from longrun.process._runner import run, serve

__all__ = [
    "Cancelled",
    "Context",
    "Fail",
    "Handler",
    "ProtocolError",
    "Unanswered",
    "run",
    "serve",
]
