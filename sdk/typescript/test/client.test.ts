//! Every `Client` call against a real `longrun serve`, with kinds written with `@longrun/sdk/process` (protocol 1).
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, test } from "node:test";
import { Client, LongrunError, type Event, type Task } from "@longrun/sdk";
import { startServer, TOKENS, type Server } from "./server.js";

let server: Server;
let client: Client;

before(async () => {
  server = await startServer();
  client = new Client({ baseUrl: server.url, token: TOKENS.alice });
});

after(async () => {
  await server?.stop();
});

/** Collects a task's events to its end, answering each question with `answers[key]`. */
async function follow(id: string, answers: Record<string, unknown> = {}): Promise<Event[]> {
  const events: Event[] = [];
  for await (const event of client.watch(id)) {
    events.push(event);
    if (event.change.type === "input_requested") await client.answer(id, event.change.key, answers[event.change.key]);
  }
  return events;
}

test("kinds lists the configured kinds with their input schemas", async () => {
  const kinds = await client.kinds();
  const names = kinds.map((kind) => kind.name).sort();
  assert.deepEqual(names, ["boom", "echo", "late", "research", "ticks", "wait"]);
  const research = kinds.find((kind) => kind.name === "research");
  assert.deepEqual((research?.input_schema as { required?: string[] }).required, ["topic"]);
});

test("start with waitMs answers the ended task; get reads it back with its session and labels", async () => {
  const input = { hello: "world", n: 7 };
  const started = await client.start("echo", input, { waitMs: 10_000, session: "s-echo", labels: { suite: "client" } });
  assert.equal(started.status, "completed");
  assert.deepEqual(started.output, input);
  const got = await client.get(started.id);
  assert.equal(got.id, started.id);
  assert.equal(got.kind, "echo");
  assert.equal(got.session, "s-echo");
  // The server labels each task with the door that started it.
  assert.deepEqual(got.labels, { suite: "client", door: "http" });
  assert.deepEqual(got.output, input);
});

test("list follows the cursor page by page, and filters by label, kind and status", async () => {
  const run = randomUUID();
  const ids = new Set<string>();
  for (let i = 0; i < 5; i++) {
    const task = await client.start("echo", i, { waitMs: 10_000, labels: { run } });
    ids.add(task.id);
  }
  const pages: Task[][] = [];
  for await (const page of client.pages({ labels: { run }, pageSize: 2 })) pages.push(page.tasks);
  assert.deepEqual(pages.map((tasks) => tasks.length), [2, 2, 1]);
  assert.deepEqual(new Set(pages.flat().map((task) => task.id)), ids);
  // Newest first.
  assert.deepEqual(pages.flat().map((task) => task.input), [4, 3, 2, 1, 0]);

  // list goes task by task across the same pages.
  const listed: Task[] = [];
  for await (const task of client.list({ labels: { run }, pageSize: 2 })) listed.push(task);
  assert.deepEqual(listed.map((task) => task.id), pages.flat().map((task) => task.id));

  let running = 0;
  for await (const page of client.pages({ labels: { run }, kind: "echo", status: ["working", "input_required"] })) running += page.tasks.length;
  assert.equal(running, 0);
  let completed = 0;
  for await (const _ of client.list({ labels: { run }, status: "completed" })) completed += 1;
  assert.equal(completed, 5);
});

test("a task with progress, an artifact, a question answered from the client, and a message for the agent", async () => {
  const session = `s-${randomUUID()}`;
  const task = await client.start("research", { topic: "tides" }, { session });
  assert.ok(["submitted", "working"].includes(task.status));
  const events = await follow(task.id, { approve: true });

  const seqs = events.map((event) => event.seq);
  assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => i + 1), "events from 1 with no gap");
  const types = events.map((event) => event.change.type);
  for (const type of ["submitted", "started", "progress", "artifact", "input_requested", "input_answered", "agent_message", "ended"]) {
    assert.ok(types.includes(type as Event["change"]["type"]), `no ${type} event in ${types.join(", ")}`);
  }
  const asked = events.find((event) => event.change.type === "input_requested");
  assert.equal(asked?.status, "input_required");
  const last = events.at(-1);
  assert.equal(last?.status, "completed");

  const done = await client.get(task.id);
  assert.equal(done.status, "completed");
  assert.deepEqual(done.output, { topic: "tides", approved: true, task: task.id, kind: "research", attempt: 1, protocol: 1 });
  assert.deepEqual(done.artifacts, [{ id: "notes", name: "notes.txt", parts: ["notes on tides", { sources: 2 }], complete: true }]);
  assert.equal(done.progress?.percent, 100);
});

test("inbox: drain returns the message and the outcome until acknowledged; ack removes them", async () => {
  const session = `s-${randomUUID()}`;
  const task = await client.start("research", { topic: "inbox" }, { session });
  await follow(task.id, { approve: false });

  // The outcome reaches the inbox just after the task's last event: it may take a second drain.
  const first = await client.drain(session, { waitMs: 5000 });
  assert.ok(first.items.length > 0 && first.through !== null && first.through !== undefined);
  const again = await client.drain(session);
  const positions = (items: typeof first.items) => items.map((item) => item.position);
  assert.deepEqual(positions(again.items).slice(0, first.items.length), positions(first.items), "unacknowledged items come again");
  assert.equal(await client.ack(session, first.through), first.items.length);
  let items = first.items;
  if (!items.some((item) => item.entry.type === "outcome")) {
    const rest = await client.drain(session, { waitMs: 5000 });
    assert.ok(rest.through !== null && rest.through !== undefined);
    assert.equal(await client.ack(session, rest.through), rest.items.length);
    items = [...items, ...rest.items];
  }
  assert.deepEqual(items.map((item) => item.entry), [
    { type: "message", message: "the notes on inbox were declined", trigger: false },
    { type: "outcome", kind: "research", status: "completed", output: { topic: "inbox", approved: false, task: task.id, kind: "research", attempt: 1, protocol: 1 } },
  ]);
  assert.ok(items.every((item) => item.task === task.id));
  const empty = await client.drain(session);
  assert.deepEqual(empty.items, []);
});

test("cancel aborts the handler's signal and answers the ended task", async () => {
  const task = await client.start("wait", null);
  // Wait until the handler runs (its first progress), so the cancel reaches the handler.
  for await (const event of client.watch(task.id)) if (event.change.type === "progress") break;
  const cancelled = await client.cancel(task.id);
  assert.equal(cancelled.status, "cancelled");
  assert.equal(cancelled.cancellation?.reason, "requested");
  // The handler saw its signal abort, and said so before it stopped.
  const events: Event[] = [];
  for await (const event of client.watch(task.id)) events.push(event);
  const said = events.flatMap((event) => (event.change.type === "progress" ? [event.change.message] : []));
  assert.deepEqual(said, ["waiting to be cancelled", "stopping: the task was cancelled"]);
  const again = await client.cancel(task.id).catch((error: unknown) => error);
  assert.ok(again instanceof LongrunError);
  assert.equal(again.status, 409);
});

test("a handler's HandlerError fails the task with its code and details; a plain error is handler_error", async () => {
  const failed = await client.start("boom", { plain: false }, { waitMs: 10_000 });
  assert.equal(failed.status, "failed");
  assert.equal(failed.error?.code, "boom");
  assert.equal(failed.error?.message, "it broke");
  assert.deepEqual(failed.error?.details, { input: { plain: false } });
  const plain = await client.start("boom", { plain: true }, { waitMs: 10_000 });
  assert.equal(plain.error?.code, "handler_error");
  assert.equal(plain.error?.message, "a plain error");
});

test("a question nobody answers in time reaches the handler as AnswerTimeout", async () => {
  const task = await client.start("late", null, { waitMs: 10_000 });
  assert.equal(task.status, "completed");
  assert.deepEqual(task.output, { timedOut: "early" });
});

test("errors carry the server's code, message and HTTP status", async () => {
  const cases: [string, () => Promise<unknown>, string, number][] = [
    ["unknown task", () => client.get("task_00000000000000000000000000000000"), "not_found", 404],
    ["not a task id", () => client.get("nope"), "bad_request", 400],
    ["unknown kind", () => client.start("nope", {}), "unknown_kind", 422],
    ["input against the schema", () => client.start("research", { topic: 3 }), "invalid_input", 422],
  ];
  for (const [what, call, code, status] of cases) {
    const error = await call().then(
      () => assert.fail(`${what}: no error`),
      (error: unknown) => error,
    );
    assert.ok(error instanceof LongrunError, `${what}: ${String(error)}`);
    assert.equal(error.code, code, what);
    assert.equal(error.status, status, what);
    assert.ok(error.message.length > 0, what);
  }
  const ended = await client.start("echo", 1, { waitMs: 10_000 });
  const late = await client.answer(ended.id, "k", true).catch((error: unknown) => error);
  assert.ok(late instanceof LongrunError);
  assert.equal(late.status, 409);
});

test("an AbortSignal aborts a call in flight with its reason", async () => {
  const controller = new AbortController();
  const pending = client.drain(`s-${randomUUID()}`, { waitMs: 30_000, signal: controller.signal });
  const reason = new Error("stop waiting");
  setTimeout(() => controller.abort(reason), 50);
  await assert.rejects(pending, (error: unknown) => error === reason);

  const task = await client.start("wait", null);
  const watching = new AbortController();
  const seen: number[] = [];
  await assert.rejects(
    (async () => {
      for await (const event of client.watch(task.id, { signal: watching.signal })) {
        seen.push(event.seq);
        if (event.change.type === "progress") watching.abort();
      }
    })(),
    { name: "AbortError" },
  );
  assert.ok(seen.length >= 2);
  await client.cancel(task.id);
});

test("events streams the events of the caller's tasks of one session as they happen", async () => {
  const session = `s-${randomUUID()}`;
  const stream = client.events({ session });
  const first = stream.next();
  let arrived = false;
  first.then(
    () => (arrived = true),
    () => (arrived = true),
  );
  // The stream subscribes when its request reaches the server: start tasks until it has.
  const ours = new Set<string>();
  while (!arrived) ours.add((await client.start("echo", 1, { session, waitMs: 10_000 })).id);
  const item = (await first).value;
  assert.ok(item !== undefined && "seq" in item, "an event");
  assert.ok(ours.has(item.task));

  // Now the stream is live: another session's task does not appear, the next of ours does.
  const other = await client.start("echo", 2, { session: `${session}-other`, waitMs: 10_000 });
  const next = await client.start("echo", 3, { session, waitMs: 10_000 });
  for await (const item of stream) {
    assert.ok(!("missed" in item), "no lag on a quiet server");
    assert.notEqual(item.task, other.id);
    if (item.task === next.id && item.change.type === "ended") break;
  }
});

test("health answers without a token", async () => {
  const anonymous = new Client({ baseUrl: server.url });
  assert.deepEqual(await anonymous.health(), { status: "ok" });
});
