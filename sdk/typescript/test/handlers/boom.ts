//! Test handler `boom`: fails with its own code and details, or, with `{"plain": true}`, by throwing a plain Error.
import { HandlerError, run } from "@longrun/sdk/process";

await run<{ plain?: boolean }>((_ctx, input) => {
  if (input.plain === true) throw new Error("a plain error");
  throw new HandlerError("boom", "it broke", { details: { input } });
});
