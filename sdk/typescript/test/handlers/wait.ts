//! Test handler `wait`: reports progress, then waits for its cancellation (ctx.signal), says so in a last report, and ends `cancelled`.
import { run } from "@longrun/sdk/process";

await run(async (ctx) => {
  await ctx.progress(0, "waiting to be cancelled");
  const reason = await new Promise<unknown>((resolve) => {
    ctx.signal.addEventListener("abort", () => resolve(ctx.signal.reason), { once: true });
  });
  await ctx.progress(undefined, `stopping: ${reason instanceof Error ? reason.message : String(reason)}`);
  throw reason;
});
