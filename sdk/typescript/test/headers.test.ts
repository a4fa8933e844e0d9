//! What the client sends, seen by a fake server: the bearer token, the Idempotency-Key header, the list query, JSON bodies.
import assert from "node:assert/strict";
import { createServer, type IncomingHttpHeaders } from "node:http";
import { after, before, test } from "node:test";
import { Client, LongrunError } from "@longrun/sdk";

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

const seen: Seen[] = [];
let reply: { status: number; body: string } = { status: 200, body: "{}" };
const server = createServer((request, response) => {
  let body = "";
  request.on("data", (chunk: Buffer) => (body += chunk.toString()));
  request.on("end", () => {
    seen.push({ method: request.method ?? "", url: request.url ?? "", headers: request.headers, body });
    response.writeHead(reply.status, { "content-type": "application/json" });
    response.end(reply.body);
  });
});
let client: Client;

before(async () => {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  client = new Client({ baseUrl: `http://127.0.0.1:${port}`, token: "t0ken" });
});

after(() => new Promise<void>((resolve) => server.close(() => resolve())));

test("start sends the Idempotency-Key header, the bearer token, and the body's fields", async () => {
  reply = { status: 201, body: JSON.stringify({ id: "task_1", status: "working" }) };
  seen.length = 0;
  const task = await client.start("research", { topic: "x" }, {
    idempotencyKey: "retry-me-7",
    session: "s",
    labels: { a: "b" },
    waitMs: 10,
    deadlineMs: 20,
    ttlMs: 30,
  });
  assert.equal(task.id, "task_1");
  const [request] = seen;
  assert.equal(request?.method, "POST");
  assert.equal(request?.url, "/v1/tasks");
  assert.equal(request?.headers["idempotency-key"], "retry-me-7");
  assert.equal(request?.headers["authorization"], "Bearer t0ken");
  assert.equal(request?.headers["content-type"], "application/json");
  assert.deepEqual(JSON.parse(request?.body ?? ""), {
    kind: "research",
    input: { topic: "x" },
    session: "s",
    labels: { a: "b" },
    wait_ms: 10,
    deadline_ms: 20,
    ttl_ms: 30,
  });

  seen.length = 0;
  await client.start("echo", null);
  assert.equal(seen[0]?.headers["idempotency-key"], undefined);
  assert.deepEqual(JSON.parse(seen[0]?.body ?? ""), { kind: "echo", input: null });
});

test("list repeats status and label, and sends the cursor of the previous page", async () => {
  reply = { status: 200, body: JSON.stringify({ tasks: [], next: null }) };
  seen.length = 0;
  await client.pages({ status: ["working", "submitted"], labels: { a: "1", b: "2" }, kind: "k", pageSize: 3, after: "c1" }).next();
  const url = new URL(seen[0]?.url ?? "", "http://x");
  assert.equal(url.pathname, "/v1/tasks");
  assert.deepEqual(url.searchParams.getAll("status"), ["working", "submitted"]);
  assert.deepEqual(url.searchParams.getAll("label"), ["a:1", "b:2"]);
  assert.equal(url.searchParams.get("kind"), "k");
  assert.equal(url.searchParams.get("limit"), "3");
  assert.equal(url.searchParams.get("after"), "c1");
});

test("answer sends the value as the JSON body (undefined as null); ids and keys are escaped", async () => {
  reply = { status: 200, body: "{}" };
  seen.length = 0;
  await client.answer("task_1", "a key/with slash", { ok: true });
  await client.answer("task_1", "k", undefined);
  assert.equal(seen[0]?.url, "/v1/tasks/task_1/answers/a%20key%2Fwith%20slash");
  assert.deepEqual(JSON.parse(seen[0]?.body ?? ""), { ok: true });
  assert.equal(seen[1]?.body, "null");
});

test("a response without the API's error body is an unexpected_response with its status", async () => {
  reply = { status: 502, body: "<html>bad gateway</html>" };
  await assert.rejects(client.get("task_1"), (error: unknown) => {
    return error instanceof LongrunError && error.code === "unexpected_response" && error.status === 502;
  });
});
