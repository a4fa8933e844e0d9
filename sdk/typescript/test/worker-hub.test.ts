//! `Worker` against a fake hub (test/hub.ts), for what a real server does only on bad days: reports answered slowly, a worker forgotten, a heartbeat or revoke that takes a task away, more starts than the capacity.
import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { afterEach, beforeEach, test } from "node:test";
import { Revoked, Worker, type Handler } from "@longrun/sdk";
import { startHub, type Hub } from "./hub.js";

let hub: Hub;
let worker: Worker | undefined;

beforeEach(async () => {
  hub = await startHub();
});

afterEach(async () => {
  await worker?.stop({ graceMs: 0 });
  worker = undefined;
  await hub.close();
});

/** A worker of one kind on the hub, running. */
async function serve(kind: string, handler: Handler<any, unknown>, capacity = 1): Promise<Worker> {
  const log = new PassThrough();
  log.resume();
  worker = new Worker({ url: hub.url, name: "fake", capacity, handleSignals: false, log, reconnect: { initialDelayMs: 10, maxDelayMs: 50 } });
  worker.kind(kind, handler);
  void worker.run();
  await hub.connected("wkr_1");
  return worker;
}

function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((done) => (resolve = done));
  return { promise, resolve };
}

/** Resolves with the signal's reason once it aborts (at once if it has). */
function abortion(signal: AbortSignal): Promise<unknown> {
  if (signal.aborted) return Promise.resolve(signal.reason);
  return new Promise((resolve) => signal.addEventListener("abort", () => resolve(signal.reason), { once: true }));
}

/** Resolves once `check` holds, looking every 5 ms. */
async function eventually(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((resolve) => setTimeout(resolve, 5));
}

test("registration declares the kinds and the capacity", async () => {
  await serve("k", () => null, 3);
  assert.deepEqual(hub.registrations, [{ name: "fake", capacity: 3, kinds: [{ name: "k" }] }]);
});

test("the reports of one assignment go one at a time, in the order made, even when the handler does not wait", async () => {
  hub.reportDelayMs = () => Math.floor(Math.random() * 15);
  await serve("k", async (ctx) => {
    const sent = [1, 2, 3, 4, 5].map((n) => ctx.progress(n * 10, `p${n}`));
    await Promise.all(sent);
    return "done";
  });
  hub.start("wkr_1", "asg_1", "k", null);
  await eventually(() => hub.reports.length === 6);
  assert.deepEqual(
    hub.reports.map((report) => report.body["message"] ?? report.body["type"]),
    ["p1", "p2", "p3", "p4", "p5", "complete"],
  );
  assert.ok(hub.reports.every((report) => report.inFlight === 1), "a report was posted before the previous one was answered");
});

test("a step resolves once its report is answered; a saved one is skipped", async () => {
  const output = deferred<unknown>();
  await serve("k", async (ctx) => {
    const saved = await ctx.step("a", () => "again");
    const fresh = await ctx.step("b", () => "new");
    output.resolve({ saved, fresh });
    return null;
  });
  hub.start("wkr_1", "asg_1", "k", null, { a: "before" });
  assert.deepEqual(await output.promise, { saved: "before", fresh: "new" });
  assert.deepEqual(hub.reports[0]?.body, { type: "step", key: "b", value: "new" });
});

test("a start beyond the capacity waits for room", async () => {
  const release = deferred();
  const started: string[] = [];
  await serve("k", async (ctx) => {
    started.push(ctx.task);
    if (started.length === 1) await release.promise;
    return null;
  });
  hub.start("wkr_1", "asg_1", "k", null);
  hub.start("wkr_1", "asg_2", "k", null);
  await eventually(() => started.length === 1);
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.deepEqual(started, ["task_asg_1"]);
  release.resolve();
  await eventually(() => started.length === 2);
  assert.equal(hub.reports.filter((report) => report.body["type"] === "complete")[0]?.assignment, "asg_1");
});

test("revoke stops the handler with Revoked, and nothing more is reported", async () => {
  const reason = deferred<unknown>();
  const reported = deferred();
  await serve("k", async (ctx) => {
    await ctx.progress(1);
    reported.resolve();
    await abortion(ctx.signal);
    reason.resolve(ctx.signal.reason);
    await ctx.progress(2).catch(() => undefined);
    return "ignored";
  });
  hub.start("wkr_1", "asg_1", "k", null);
  // Once the report is answered: a revoke while it is in flight would make the report reject instead.
  await reported.promise;
  hub.push("wkr_1", { type: "revoke", assignment: "asg_1", reason: "lost" });
  assert.ok((await reason.promise) instanceof Revoked);
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(hub.reports.length, 1);
});

test("a heartbeat that does not list a task takes it away", async () => {
  const reason = deferred<unknown>();
  await serve("k", async (ctx) => {
    await abortion(ctx.signal);
    reason.resolve(ctx.signal.reason);
    return null;
  });
  hub.start("wkr_1", "asg_1", "k", null);
  await eventually(() => worker?.held === 1);
  hub.held = () => [];
  assert.ok((await reason.promise) instanceof Revoked);
  assert.equal(hub.reports.length, 0);
});

test("404 unknown_worker: the worker registers again, fences its old tasks, and starts its new stream afresh", async () => {
  const reason = deferred<unknown>();
  const second = deferred();
  await serve("k", async (ctx) => {
    if (ctx.task === "task_asg_2") {
      second.resolve();
      return null;
    }
    await abortion(ctx.signal);
    reason.resolve(ctx.signal.reason);
    return null;
  });
  hub.start("wkr_1", "asg_1", "k", null);
  await eventually(() => worker?.held === 1);
  hub.forget("wkr_1");
  assert.ok((await reason.promise) instanceof Revoked);
  await hub.connected("wkr_2");
  assert.equal(worker?.id, "wkr_2");
  assert.equal(hub.registrations.length, 2);
  assert.deepEqual(hub.streams.at(-1), { worker: "wkr_2", lastEventId: undefined });
  hub.start("wkr_2", "asg_2", "k", null);
  await second.promise;
});

test("a dropped stream is reopened with Last-Event-ID, and an event replayed anyway is not handled twice", async () => {
  const answered = deferred<unknown>();
  let calls = 0;
  await serve("k", async (ctx) => {
    calls += 1;
    answered.resolve(await ctx.ask("q", {}));
    return null;
  });
  hub.start("wkr_1", "asg_1", "k", null);
  await eventually(() => hub.reports.length === 1);
  hub.replayAll = true;
  hub.drop("wkr_1");
  hub.push("wkr_1", { type: "answer", assignment: "asg_1", key: "q", value: "while away" });
  assert.equal(await answered.promise, "while away");
  assert.deepEqual(hub.streams.at(-1), { worker: "wkr_1", lastEventId: "1" });
  assert.equal(calls, 1, "the replayed start was handled again");
});
