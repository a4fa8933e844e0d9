//! Test handler `ticks`: `count` progress reports a few milliseconds apart, then a question `finish` whose answer is its output.
import { run } from "@longrun/sdk/process";
import { setTimeout as sleep } from "node:timers/promises";

await run<{ count: number }>(async (ctx, { count }) => {
  for (let i = 1; i <= count; i++) {
    await ctx.progress((100 * i) / count, `tick ${i}`);
    await sleep(5);
  }
  return await ctx.ask("finish", { message: "finish?" });
});
