//! Bearer tokens against a real server with `[[tokens]]`: a missing or wrong token is `unauthorized`, another principal's task is `not_found`.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Client, LongrunError } from "@longrun/sdk";
import { startServer, TOKENS, type Server } from "./server.js";

let server: Server;

before(async () => {
  server = await startServer();
});

after(async () => {
  await server?.stop();
});

function isError(code: string, status: number) {
  return (error: unknown) => error instanceof LongrunError && error.code === code && error.status === status;
}

test("no token, or a wrong one, is refused with unauthorized (401) on every call", async () => {
  for (const token of [undefined, "not-a-token"]) {
    const client = new Client({ baseUrl: server.url, token });
    await assert.rejects(client.kinds(), isError("unauthorized", 401));
    await assert.rejects(client.start("echo", 1), isError("unauthorized", 401));
    await assert.rejects(client.pages().next(), isError("unauthorized", 401));
    await assert.rejects(client.drain("s"), isError("unauthorized", 401));
    await assert.rejects(client.watch("task_00000000000000000000000000000000").next(), isError("unauthorized", 401));
  }
});

test("a principal does not see or touch another's task, nor its inbox", async () => {
  const alice = new Client({ baseUrl: server.url, token: TOKENS.alice });
  const bob = new Client({ baseUrl: server.url, token: TOKENS.bob });
  const task = await alice.start("wait", null, { session: "shared-name" });
  try {
    await assert.rejects(bob.get(task.id), isError("not_found", 404));
    await assert.rejects(bob.cancel(task.id), isError("not_found", 404));
    await assert.rejects(bob.answer(task.id, "k", 1), isError("not_found", 404));
    await assert.rejects(bob.watch(task.id).next(), isError("not_found", 404));
    const listed: string[] = [];
    for await (const t of bob.list()) listed.push(t.id);
    assert.ok(!listed.includes(task.id));
    assert.equal((await alice.get(task.id)).id, task.id);
  } finally {
    assert.equal((await alice.cancel(task.id)).status, "cancelled");
  }
  const drained = await bob.drain("shared-name");
  assert.deepEqual(drained.items, []);
  const own = await alice.drain("shared-name", { waitMs: 5000 });
  assert.equal(own.items[0]?.task, task.id);
});
