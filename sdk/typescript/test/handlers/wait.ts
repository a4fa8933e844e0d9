//! Test handler `wait`: reports progress, then waits for its cancellation (ctx.signal) and ends `cancelled`.
import { run } from "@longrun/sdk/process";

await run(async (ctx) => {
  await ctx.progress(0, "waiting to be cancelled");
  await new Promise((_, reject) => {
    ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason), { once: true });
  });
});
