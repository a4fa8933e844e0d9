//! `Worker` against a real `longrun serve` (the worker config: heartbeats every 200 ms, lost after 1 s): a task end to end, cancellation, a worker killed mid-task, the fence, capacity, resume, and stopping.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { PassThrough } from "node:stream";
import { fileURLToPath } from "node:url";
import { after, before, test } from "node:test";
import { Cancelled, Client, LongrunError, Revoked, Worker, type Event, type Handler, type WorkerOptions } from "@longrun/sdk";
import { readSse } from "../src/sse.js";
import { startProxy } from "./proxy.js";
import { startServer, TOKENS, workerConfig, type Server } from "./server.js";

let server: Server;
let client: Client;

before(async () => {
  server = await startServer({ config: workerConfig() });
  client = new Client({ baseUrl: server.url, token: TOKENS.alice });
});

after(async () => {
  await server?.stop();
});

/** What the workers of a test wrote, for failure messages. */
const notes = new PassThrough();
let written = "";
notes.on("data", (chunk: Buffer) => {
  written += chunk.toString();
  if (process.env["LONGRUN_TEST_NOTES"] !== undefined) process.stderr.write(chunk);
});

/** A worker of `kind` as `robot`, running until the test stops it. */
function serve(kind: string, handler: Handler<any, unknown>, options: Partial<WorkerOptions> = {}): { worker: Worker; running: Promise<void> } {
  const worker = new Worker({ url: server.url, token: TOKENS.robot, handleSignals: false, log: notes, ...options });
  worker.kind(kind, handler);
  const running = worker.run();
  running.catch(() => undefined);
  return { worker, running };
}

/** A promise with its resolve at hand. */
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

/** Follows a task to its end, answering each question with `answers[key]`. */
async function follow(id: string, answers: Record<string, unknown> = {}): Promise<Event[]> {
  const events: Event[] = [];
  for await (const event of client.watch(id)) {
    events.push(event);
    if (event.change.type === "input_requested" && event.change.key in answers) await client.answer(id, event.change.key, answers[event.change.key]);
  }
  return events;
}

/** Resolves at the first event of task `id` that `matches`. */
async function until(id: string, matches: (event: Event) => boolean): Promise<Event> {
  for await (const event of client.watch(id)) if (matches(event)) return event;
  throw new Error(`task ${id} ended without the event awaited`);
}

const progressed = (text: string) => (event: Event) => event.change.type === "progress" && event.change.message === text;
const asked = (key: string) => (event: Event) => event.change.type === "input_requested" && event.change.key === key;

/** Starts test/workers/child.js, a worker in a process of its own. */
function child(): { process: ChildProcess; exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>; output: () => string } {
  const script = fileURLToPath(new URL("./workers/child.js", import.meta.url));
  const spawned = spawn(process.execPath, [script], {
    env: { ...process.env, LONGRUN_URL: server.url, LONGRUN_TOKEN: TOKENS.robot },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  spawned.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  spawned.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    spawned.once("exit", (code, signal) => resolve({ code, signal })),
  );
  return { process: spawned, exit, output: () => output };
}

test("a worker task: progress, artifact, steps, a durable sleep, a question answered from the client, a message", async () => {
  let searches = 0;
  const { worker, running } = serve(
    "research",
    async (ctx, { topic }: { topic: string }) => {
      await ctx.progress(10, `looking into ${topic}`);
      const sources = await ctx.step("search", () => {
        searches += 1;
        return [`${topic}-a`, `${topic}-b`];
      });
      await ctx.artifact("notes", [`notes on ${topic}`], { name: "notes.txt" });
      await ctx.artifact("notes", [{ sources: sources.length }], { append: true, lastChunk: true });
      await ctx.sleep("pause", 50);
      const approved = await ctx.ask("approve", { type: "boolean", message: `Publish the notes on ${topic}?` });
      await ctx.notifyAgent(`the notes on ${topic} were ${approved === true ? "approved" : "declined"}`);
      await ctx.progress(100, "done");
      return { topic, sources, approved, task: ctx.task, kind: ctx.kind, attempt: ctx.attempt, protocol: ctx.protocol };
    },
    { name: "research-1", capacity: 2 },
  );
  try {
    const session = `s-${randomUUID()}`;
    const task = await client.start("research", { topic: "tides" }, { session });
    const listed = (await new Client({ baseUrl: server.url, token: TOKENS.robot }).workers()).find((one) => one.id === worker.id);
    assert.deepEqual([listed?.name, listed?.principal, listed?.kinds, listed?.capacity], ["research-1", "robot", ["research"], 2]);
    const events = await follow(task.id, { approve: true });
    const types = events.map((event) => event.change.type);
    for (const type of ["progress", "artifact", "input_requested", "input_answered", "agent_message", "ended"]) {
      assert.ok(types.includes(type as Event["change"]["type"]), `no ${type} event in ${types.join(", ")}`);
    }
    const done = await client.get(task.id);
    assert.equal(done.status, "completed", written);
    assert.deepEqual(done.output, {
      topic: "tides",
      sources: ["tides-a", "tides-b"],
      approved: true,
      task: task.id,
      kind: "research",
      attempt: 1,
      protocol: 2,
    });
    assert.deepEqual(done.artifacts, [{ id: "notes", name: "notes.txt", parts: ["notes on tides", { sources: 2 }], complete: true }]);
    assert.equal(done.progress?.percent, 100);
    assert.equal(searches, 1);
    assert.equal(worker.held, 0);
    const inbox = await client.drain(session, { waitMs: 5000 });
    assert.ok(inbox.items.some((item) => item.entry.type === "message" && item.entry.message === "the notes on tides were approved"));
  } finally {
    await worker.stop({ graceMs: 0 });
    await running;
  }
  assert.equal(worker.id, undefined, "a stopped worker has left");
});

test("a cancel aborts the handler's signal with Cancelled, and the task ends cancelled", async () => {
  const reason = deferred<unknown>();
  const { worker, running } = serve("hold", async (ctx) => {
    await ctx.progress(0, "waiting to be cancelled");
    const why = await abortion(ctx.signal);
    reason.resolve(why);
    throw why;
  });
  try {
    const task = await client.start("hold", null);
    await until(task.id, progressed("waiting to be cancelled"));
    const cancelled = await client.cancel(task.id);
    assert.equal(cancelled.status, "cancelled");
    assert.ok((await reason.promise) instanceof Cancelled);
  } finally {
    await worker.stop({ graceMs: 0 });
    await running;
  }
});

test("a worker killed with SIGKILL mid-task: its task is re-run on a second worker from its last step", async () => {
  const first = child();
  let second: { worker: Worker; running: Promise<void> } | undefined;
  try {
    const task = await client.start("steps", { n: 1 });
    await until(task.id, progressed("two steps saved"));
    first.process.kill("SIGKILL");
    assert.equal((await first.exit).signal, "SIGKILL");

    const ran: string[] = [];
    second = serve("steps", async (ctx) => {
      const step = (key: string) =>
        ctx.step(key, () => {
          ran.push(key);
          return { by: "second" };
        });
      return { one: await step("one"), two: await step("two"), three: await step("three"), attempt: ctx.attempt };
    });
    const events = await follow(task.id);
    const done = await client.get(task.id);
    assert.equal(done.status, "completed", `${written}\n${first.output()}\n${JSON.stringify(events)}`);
    assert.deepEqual(done.output, { one: { by: "child" }, two: { by: "child" }, three: { by: "second" }, attempt: 1 });
    assert.deepEqual(ran, ["three"], "the saved steps are not run again");
  } finally {
    first.process.kill("SIGKILL");
    await second?.worker.stop({ graceMs: 0 });
  }
});

test("a lost worker's late report is refused with 404 unknown_worker: the server unregistered it", async () => {
  // A worker by hand, which takes a task and then falls silent (no heartbeat).
  const headers = { authorization: `Bearer ${TOKENS.robot}`, "content-type": "application/json" };
  const registered = await fetch(`${server.url}/v1/workers`, {
    method: "POST",
    headers,
    body: JSON.stringify({ name: "stale", capacity: 1, kinds: [{ name: "fence" }] }),
  });
  assert.equal(registered.status, 201);
  const { worker: stale } = (await registered.json()) as { worker: string };
  const stream = new AbortController();
  const events = await fetch(`${server.url}/v1/workers/${stale}/events`, { headers, signal: stream.signal });
  assert.equal(events.status, 200);
  assert.ok(events.body !== null);
  const task = await client.start("fence", { n: 2 });
  let assignment: string | undefined;
  for await (const message of readSse(events.body)) {
    const data = JSON.parse(message.data) as { type: string; assignment: string; task?: string };
    if (data.type === "start" && data.task === task.id) {
      assignment = data.assignment;
      break;
    }
  }
  stream.abort();
  assert.ok(assignment !== undefined);

  // Lost after 1 s of silence; the task goes to a live worker.
  const { worker, running } = serve("fence", () => "done by the live worker");
  try {
    await follow(task.id);
    assert.deepEqual((await client.get(task.id)).output, "done by the live worker");
    const late = await fetch(`${server.url}/v1/workers/${stale}/assignments/${assignment}/reports`, {
      method: "POST",
      headers,
      body: JSON.stringify({ type: "complete", output: "too late" }),
    });
    assert.equal(late.status, 404);
    assert.equal(((await late.json()) as { error: { code: string } }).error.code, "unknown_worker");
    assert.deepEqual((await client.get(task.id)).output, "done by the live worker");
  } finally {
    await worker.stop({ graceMs: 0 });
    await running;
  }
});

test("a worker cut off from the server is fenced: its late report is refused, its handler stopped with Revoked, and it registers again", async () => {
  // The network of worker A: reports pass; heartbeats fail and its event stream freezes while cut.
  let cut = false;
  const healed = deferred();
  const refused: { status: number; code: string }[] = [];
  const partitioned: typeof fetch = async (input, init) => {
    const url = input instanceof Request ? input.url : String(input);
    const report = url.includes("/reports");
    if (cut && !report) throw new TypeError("fetch failed (the test cut the network)");
    const response = await fetch(input, init);
    if (report && !response.ok) {
      const body = (await response.clone().json()) as { error: { code: string } };
      refused.push({ status: response.status, code: body.error.code });
    }
    if (!url.endsWith("/events") || response.body === null) return response;
    const gated = response.body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        async transform(chunk, controller) {
          if (cut) await healed.promise;
          controller.enqueue(chunk);
        },
      }),
    );
    return new Response(gated, { status: response.status, headers: response.headers });
  };

  const started = deferred();
  const goOn = deferred();
  const late = deferred<{ report: unknown; reason: unknown }>();
  const a = serve(
    "fence",
    async (ctx, { n }: { n: number }) => {
      if (n === 4) return "served by A again";
      await ctx.progress(10, "started on A");
      started.resolve();
      await goOn.promise;
      const report = await ctx.progress(20, "late, from A").then(
        () => "accepted",
        (error: unknown) => error,
      );
      late.resolve({ report, reason: ctx.signal.reason });
      throw report;
    },
    { fetch: partitioned, name: "cut-off" },
  );
  let b: { worker: Worker; running: Promise<void> } | undefined;
  try {
    const task = await client.start("fence", { n: 3 });
    await started.promise;
    const first = a.worker.id;
    cut = true;
    b = serve("fence", () => "done by B", { name: "B" });
    await follow(task.id);
    assert.equal((await client.get(task.id)).output, "done by B");

    goOn.resolve();
    const { report, reason } = await late.promise;
    assert.ok(report instanceof Revoked, `the late report: ${String(report)}`);
    assert.ok(reason instanceof Revoked, "the handler's signal is aborted with Revoked");
    assert.deepEqual(refused, [{ status: 404, code: "unknown_worker" }]);
    const events: Event[] = [];
    for await (const event of client.watch(task.id)) events.push(event);
    assert.ok(!events.some(progressed("late, from A")), "the late report was not recorded");

    // Back on the network, A registers again under a new id, and serves again.
    cut = false;
    healed.resolve();
    while (a.worker.id === undefined || a.worker.id === first) await new Promise((resolve) => setTimeout(resolve, 20));
    await b?.worker.stop({ graceMs: 0 });
    const again = await client.start("fence", { n: 4 });
    await follow(again.id);
    assert.equal((await client.get(again.id)).output, "served by A again");
  } finally {
    cut = false;
    healed.resolve();
    await b?.worker.stop({ graceMs: 0 });
    await a.worker.stop({ graceMs: 0 });
  }
});

test("a worker at capacity gets no more tasks until one ends", async () => {
  const calls: string[] = [];
  const arrived = [deferred(), deferred()];
  const { worker, running } = serve(
    "slots",
    async (ctx) => {
      calls.push(ctx.task);
      arrived[calls.length - 1]?.resolve();
      return ctx.ask("done", { message: "Done?" });
    },
    { capacity: 1 },
  );
  try {
    const first = await client.start("slots", 1);
    await arrived[0]?.promise;
    const second = await client.start("slots", 2);
    // Five heartbeats: time enough for the server to assign the second task, if it would.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    assert.deepEqual(calls, [first.id]);
    assert.equal(worker.held, 1);
    // It waits for a worker unstarted: no attempt has begun.
    assert.equal((await client.get(second.id)).status, "submitted");

    await until(first.id, asked("done"));
    await client.answer(first.id, "done", "first");
    await arrived[1]?.promise;
    assert.deepEqual(calls, [first.id, second.id]);
    await follow(first.id);
    assert.equal((await client.get(first.id)).status, "completed");
    await until(second.id, asked("done"));
    await client.answer(second.id, "done", "second");
    await follow(second.id);
    assert.deepEqual((await client.get(second.id)).output, "second");
  } finally {
    await worker.stop({ graceMs: 0 });
    await running;
  }
});

test("a broken event stream is resumed after the last event id: an answer given meanwhile still arrives", async () => {
  const proxy = await startProxy(server.url);
  const asking = deferred();
  const { worker, running } = serve(
    "resume",
    async (ctx) => {
      const answer = ctx.ask("k", { message: "?" });
      asking.resolve();
      return answer;
    },
    { url: proxy.url },
  );
  try {
    const task = await client.start("resume", null);
    await asking.promise;
    await until(task.id, asked("k"));
    proxy.cut();
    await client.answer(task.id, "k", "given while the stream was down");
    await follow(task.id);
    assert.deepEqual((await client.get(task.id)).output, "given while the stream was down");
    const resumed = proxy.requests.filter((request) => /^GET \/v1\/workers\/[^/]+\/events /.test(request) && /^last-event-id: *\S+/im.test(request));
    assert.ok(resumed.length >= 1, `no stream was resumed with Last-Event-ID:\n${proxy.requests.join("\n")}`);
  } finally {
    await worker.stop({ graceMs: 0 });
    await running;
    await proxy.close();
  }
});

/** Resolves once the server counts the child worker of process `pid` as draining. */
async function draining(pid: number | undefined): Promise<void> {
  const robot = new Client({ baseUrl: server.url, token: TOKENS.robot });
  while (!(await robot.workers()).some((worker) => worker.name === `child-${pid}` && worker.draining)) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test("SIGTERM: the worker drains (no new task), finishes the one it holds, and leaves", async () => {
  const worker = child();
  let other: { worker: Worker; running: Promise<void> } | undefined;
  try {
    const held = await client.start("drain", null);
    await until(held.id, asked("go"));
    worker.process.kill("SIGTERM");
    await draining(worker.process.pid);
    // Started while the worker drains: it must not take it (it would wait for an answer forever).
    const later = await client.start("drain", null);
    await client.answer(held.id, "go", true);
    await follow(held.id);
    assert.deepEqual((await client.get(held.id)).output, { by: "child", go: true });
    const exit = await worker.exit;
    assert.deepEqual(exit, { code: 0, signal: null }, worker.output());
    assert.match(worker.output(), /^left$/m);

    other = serve("drain", () => ({ by: "in-process" }));
    await follow(later.id);
    assert.deepEqual((await client.get(later.id)).output, { by: "in-process" });
  } finally {
    worker.process.kill("SIGKILL");
    await other?.worker.stop({ graceMs: 0 });
  }
});

test("stop with a grace hands the unfinished task back: it is re-run elsewhere with its steps", async () => {
  const saved = deferred();
  const stopped = deferred<unknown>();
  const a = serve("handback", async (ctx) => {
    await ctx.step("first", () => "from A");
    saved.resolve();
    stopped.resolve(await abortion(ctx.signal));
    throw ctx.signal.reason;
  });
  let b: { worker: Worker; running: Promise<void> } | undefined;
  try {
    const task = await client.start("handback", null);
    await saved.promise;
    await a.worker.stop({ graceMs: 0 });
    assert.ok((await stopped.promise) instanceof Revoked);
    b = serve("handback", async (ctx) => ({ first: await ctx.step("first", () => "from B") }));
    await follow(task.id);
    assert.deepEqual((await client.get(task.id)).output, { first: "from A" });
  } finally {
    await a.worker.stop({ graceMs: 0 });
    await b?.worker.stop({ graceMs: 0 });
  }
});

test("a task handed back after its question was answered: the next worker asks again and gets the answer at once", async () => {
  const answered = deferred<unknown>();
  const a = serve("reask", async (ctx) => {
    answered.resolve(await ctx.ask("go", { message: "Go?" }));
    await abortion(ctx.signal);
    throw ctx.signal.reason;
  });
  let b: { worker: Worker; running: Promise<void> } | undefined;
  try {
    const task = await client.start("reask", null);
    await until(task.id, asked("go"));
    await client.answer(task.id, "go", "yes");
    assert.equal(await answered.promise, "yes");
    await a.worker.stop({ graceMs: 0 });
    b = serve("reask", async (ctx) => ({ again: await ctx.ask("go", { message: "Go?" }) }));
    await follow(task.id);
    const done = await client.get(task.id);
    assert.equal(done.status, "completed", JSON.stringify(done.error));
    assert.deepEqual(done.output, { again: "yes" });
  } finally {
    await a.worker.stop({ graceMs: 0 });
    await b?.worker.stop({ graceMs: 0 });
  }
});

test("a worker the server refuses (principal, kind, schema) makes run() reject with the server's code", async () => {
  const intruder = new Worker({ url: server.url, token: TOKENS.bob, handleSignals: false, log: notes });
  intruder.kind("research", () => null);
  await assert.rejects(intruder.run(), (error: unknown) => error instanceof LongrunError && error.status === 403 && error.code === "forbidden");
  const lost = new Worker({ url: server.url, token: TOKENS.robot, handleSignals: false, log: notes });
  lost.kind("no-such-kind", () => null);
  await assert.rejects(lost.run(), (error: unknown) => error instanceof LongrunError && error.status === 404 && error.code === "unknown_kind");
  const mismatched = new Worker({ url: server.url, token: TOKENS.robot, handleSignals: false, log: notes });
  mismatched.kind("research", () => null, { inputSchema: { type: "object", required: ["subject"] } });
  await assert.rejects(mismatched.run(), (error: unknown) => error instanceof LongrunError && error.status === 409 && error.code === "schema_mismatch");
});
