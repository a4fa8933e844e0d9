//! `Client.watch` against a real server: resume after a sequence number, and reconnection after a dropped connection without gaps or duplicates.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Client, LongrunError, type Event } from "@longrun/sdk";
import { startProxy } from "./proxy.js";
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

function assertContiguous(events: Event[], from: number): void {
  const seqs = events.map((event) => event.seq);
  assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => from + i), `not contiguous from ${from}: ${seqs.join(",")}`);
}

test("watch resumes after a sequence number, and ends at once after the last", async () => {
  const task = await client.start("ticks", { count: 3 });
  let asked = 0;
  for await (const event of client.watch(task.id)) {
    if (event.change.type === "input_requested") {
      asked = event.seq;
      break;
    }
  }
  assert.ok(asked > 3, "the question comes after the ticks");
  await client.answer(task.id, "finish", "yes");

  const rest: Event[] = [];
  for await (const event of client.watch(task.id, { after: asked })) rest.push(event);
  assertContiguous(rest, asked + 1);
  assert.equal(rest.at(-1)?.change.type, "ended");
  assert.equal(rest.at(-1)?.status, "completed");

  const ended = await client.get(task.id);
  assert.equal(ended.last_seq, rest.at(-1)?.seq);
  const none: Event[] = [];
  for await (const event of client.watch(task.id, { after: ended.last_seq })) none.push(event);
  assert.deepEqual(none, []);
});

test("a dropped connection is resumed with Last-Event-ID: every event once, in order", async () => {
  const proxy = await startProxy(server.url);
  try {
    const viaProxy = new Client({ baseUrl: proxy.url, token: TOKENS.alice });
    const task = await client.start("ticks", { count: 30 });
    const events: Event[] = [];
    let cutAfter = 0;
    for await (const event of viaProxy.watch(task.id, { reconnect: { initialDelayMs: 10 } })) {
      events.push(event);
      if (event.seq === 6) {
        cutAfter = event.seq;
        proxy.cut();
      }
      if (event.change.type === "input_requested") await client.answer(task.id, "finish", 42);
    }
    assert.equal(cutAfter, 6);
    assertContiguous(events, 1);
    assert.equal(events.at(-1)?.change.type, "ended");
    assert.equal((await client.get(task.id)).output, 42);
    // The first request asked for everything; the one after the cut resumed after what was seen.
    const watches = proxy.requests.filter((request) => request.includes("/events"));
    assert.ok(watches.length >= 2, `one reconnection at least, saw ${watches.length} requests`);
    assert.doesNotMatch(watches[0] ?? "", /last-event-id/i);
    const resumedAt = /last-event-id: (\d+)/i.exec(watches[1] ?? "")?.[1];
    assert.ok(resumedAt !== undefined && Number(resumedAt) >= cutAfter, `resumed at ${resumedAt}`);
  } finally {
    await proxy.close();
  }
});

test("watch gives up with a LongrunError when the server stays unreachable", async () => {
  const proxy = await startProxy(server.url);
  const url = proxy.url;
  await proxy.close();
  const gone = new Client({ baseUrl: url, token: TOKENS.alice });
  await assert.rejects(
    (async () => {
      for await (const _ of gone.watch("task_00000000000000000000000000000000", { reconnect: { attempts: 2, initialDelayMs: 1 } })) {
        assert.fail("no event can come");
      }
    })(),
    (error: unknown) => error instanceof LongrunError && error.code === "network_error" && error.status === 0,
  );
});

test("watch does not retry what reconnecting cannot fix (404)", async () => {
  await assert.rejects(
    (async () => {
      for await (const _ of client.watch("task_00000000000000000000000000000000")) assert.fail("no event can come");
    })(),
    (error: unknown) => error instanceof LongrunError && error.code === "not_found" && error.status === 404,
  );
});
