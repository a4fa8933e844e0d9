//! Process protocol 2 (steps, durable sleeps, retryable failures) and the handler's context, against a fake runtime.
import assert from "node:assert/strict";
import { test } from "node:test";
import { AnswerTimeout, HandlerError, type Context } from "@longrun/sdk/process";
import { fake } from "./fake.js";

test("a new step runs once, is sent, and resolves only once the runtime says it is saved", async () => {
  let runs = 0;
  let resumed = false;
  const f = fake(async (ctx) => {
    const value = await ctx.step("fetch", () => {
      runs += 1;
      return { rows: [1, 2], at: new Date(0) };
    });
    resumed = true;
    return value;
  });
  assert.deepEqual(await f.next(), { type: "step", key: "fetch", value: { rows: [1, 2], at: "1970-01-01T00:00:00.000Z" } });
  assert.equal(resumed, false, "the handler went on before the step was saved");
  f.send({ type: "step_saved", key: "fetch" });
  // The handler sees the value as saved (through JSON), so a re-run sees the same.
  assert.deepEqual(await f.next(), { type: "complete", output: { rows: [1, 2], at: "1970-01-01T00:00:00.000Z" } });
  assert.equal(runs, 1);
  assert.equal(resumed, true);
});

test("a step saved by an earlier attempt is not run again and returns the saved value", async () => {
  let runs = 0;
  const f = fake(
    async (ctx) => {
      const first = await ctx.step("first", () => {
        runs += 1;
        return "fresh";
      });
      const second = await ctx.step("second", () => `after ${first}`);
      return { first, second };
    },
    { attempt: 2, steps: { first: "saved" } },
  );
  assert.deepEqual(await f.next(), { type: "step", key: "second", value: "after saved" });
  f.send({ type: "step_saved", key: "second" });
  assert.deepEqual(await f.next(), { type: "complete", output: { first: "saved", second: "after saved" } });
  assert.equal(runs, 0);
});

test("a sleep is sent with its duration and resolves when the timer fires; a fired one is skipped", async () => {
  const f = fake(async (ctx) => {
    await ctx.sleep("done-before", 60_000);
    await ctx.sleep("nap", 1500);
    return "woke";
  }, { steps: { "done-before": null } });
  assert.deepEqual(await f.next(), { type: "sleep", key: "nap", ms: 1500 });
  f.send({ type: "step_saved", key: "other" });
  f.send({ type: "step_saved", key: "nap" });
  assert.deepEqual(await f.next(), { type: "complete", output: "woke" });
});

test("a cancel aborts ctx.signal, rejects a pending sleep, and ends the task cancelled", async () => {
  let reason: unknown;
  const f = fake(async (ctx) => {
    ctx.signal.addEventListener("abort", () => (reason = ctx.signal.reason));
    await ctx.sleep("long", 3_600_000);
    return "slept";
  });
  assert.equal((await f.next())["type"], "sleep");
  f.send({ type: "cancel" });
  const outcome = await f.next();
  assert.equal(outcome["type"], "cancelled");
  assert.ok(reason instanceof Error);
  assert.equal(outcome["message"], reason.message);
});

test("fail carries the code, details, retryable and retry_after_ms", async () => {
  const f = fake(() => {
    throw new HandlerError("rate_limited", "the upstream said 429", {
      details: { upstream: "search" },
      retryable: true,
      retryAfterMs: 2500,
    });
  });
  assert.deepEqual(await f.next(), {
    type: "fail",
    code: "rate_limited",
    message: "the upstream said 429",
    details: { upstream: "search" },
    retryable: true,
    retry_after_ms: 2500,
  });
  assert.equal((await f.done).type, "fail");
});

test("a plain thrown error fails with handler_error and its message", async () => {
  const f = fake(() => {
    throw new RangeError("out of range");
  });
  assert.deepEqual(await f.next(), { type: "fail", code: "handler_error", message: "out of range" });
});

test("a step key used twice in one attempt is an error", async () => {
  const f = fake(async (ctx) => {
    await ctx.step("k", () => 1);
    await ctx.step("k", () => 2);
  }, { steps: { k: 1 } });
  const outcome = await f.next();
  assert.equal(outcome["code"], "handler_error");
  assert.match(String(outcome["message"]), /used twice/);
});

test("under protocol 1, a step simply runs and a sleep is a local timer: no protocol-2 line is written", async () => {
  let runs = 0;
  const f = fake(
    async (ctx) => {
      const value = await ctx.step("k", () => {
        runs += 1;
        return { at: new Date(0) };
      });
      await ctx.sleep("nap", 1);
      return value;
    },
    { protocol: 1 },
  );
  assert.deepEqual(await f.next(), { type: "complete", output: { at: "1970-01-01T00:00:00.000Z" } });
  assert.equal(runs, 1);
});

test("nothing may be written after the outcome, and progress stays within 0 to 100", async () => {
  let captured: Context | undefined;
  let outOfRange: unknown;
  const f = fake(async (ctx) => {
    captured = ctx;
    outOfRange = await ctx.progress(101).catch((error: unknown) => error);
    return "done";
  });
  assert.deepEqual(await f.next(), { type: "complete", output: "done" });
  assert.ok(outOfRange instanceof RangeError);
  await assert.rejects(captured?.progress(5) ?? Promise.resolve(), /outcome is written/);
});

test("an unknown protocol version fails the task at once", async () => {
  let called = false;
  const f = fake(() => (called = true), { protocol: 3 });
  const outcome = await f.next();
  assert.equal(outcome["code"], "unsupported_protocol");
  assert.equal(called, false);
});

test("ask resolves with the answer, rejects with AnswerTimeout, and ignores unknown lines", async () => {
  const f = fake(async (ctx) => {
    const yes = await ctx.ask("go", { type: "boolean", message: "Go?" }, { timeoutMs: 1000 });
    let late: string | undefined;
    try {
      await ctx.ask("late", { message: "too late" });
    } catch (error) {
      late = error instanceof AnswerTimeout ? `timed out: ${error.key}` : String(error);
    }
    return { yes, late };
  });
  assert.deepEqual(await f.next(), { type: "ask", key: "go", request: { type: "boolean", message: "Go?" }, timeout_ms: 1000 });
  f.send({ type: "some_future_line", key: "go" });
  f.send({ type: "answer", key: "go", value: true });
  assert.deepEqual(await f.next(), { type: "ask", key: "late", request: { message: "too late" } });
  f.send({ type: "answer_timeout", key: "late" });
  assert.deepEqual(await f.next(), { type: "complete", output: { yes: true, late: "timed out: late" } });
});

test("progress, artifact and notifyAgent write their lines", async () => {
  const f = fake(async (ctx) => {
    await ctx.progress(50, "half");
    await ctx.progress(undefined, "no percent");
    await ctx.artifact("a", ["text", { n: 1 }], { name: "A", append: true, lastChunk: true });
    await ctx.notifyAgent("hello", { trigger: true });
  });
  assert.deepEqual(await f.next(), { type: "progress", percent: 50, message: "half" });
  assert.deepEqual(await f.next(), { type: "progress", message: "no percent" });
  assert.deepEqual(await f.next(), { type: "artifact", id: "a", name: "A", parts: ["text", { n: 1 }], append: true, last_chunk: true });
  assert.deepEqual(await f.next(), { type: "message", text: "hello", trigger: true });
  assert.deepEqual(await f.next(), { type: "complete", output: null });
});

test("stdin closing rejects a pending step", async () => {
  const f = fake(async (ctx) => ctx.step("k", () => 1));
  assert.equal((await f.next())["type"], "step");
  f.close();
  const outcome = await f.next();
  assert.equal(outcome["type"], "fail");
  assert.match(String(outcome["message"]), /closed stdin/);
});
