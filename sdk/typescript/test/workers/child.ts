//! A worker in a process of its own, for the tests that kill it (SIGKILL) or stop it (SIGTERM): serves `steps` and `drain` at $LONGRUN_URL as $LONGRUN_TOKEN.
import { Worker } from "@longrun/sdk";

const url = process.env["LONGRUN_URL"];
if (url === undefined) throw new Error("set LONGRUN_URL");
const worker = new Worker({ url, token: process.env["LONGRUN_TOKEN"], name: `child-${process.pid}`, capacity: 2 });

// Saves two steps, says so, then waits for its signal: the test kills the process here.
worker.kind("steps", async (ctx) => {
  const one = await ctx.step("one", () => ({ by: "child" }));
  const two = await ctx.step("two", () => ({ by: "child" }));
  await ctx.progress(50, "two steps saved");
  await abortion(ctx.signal);
  return { one, two };
});

// Asks to go on, then completes: the test stops the worker (SIGTERM) while it waits.
worker.kind("drain", async (ctx) => {
  const go = await ctx.ask("go", { type: "boolean", message: "Go on?" });
  return { by: "child", go };
});

await worker.run();
console.log("left");

/** Resolves with the signal's reason once it aborts (at once if it has). */
function abortion(signal: AbortSignal): Promise<unknown> {
  if (signal.aborted) return Promise.resolve(signal.reason);
  return new Promise((resolve) => signal.addEventListener("abort", () => resolve(signal.reason), { once: true }));
}
