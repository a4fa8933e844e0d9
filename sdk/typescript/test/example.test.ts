//! examples/typescript/research.ts, compiled, against the demo configuration's `longrun serve`: it must start, watch and answer a countdown to completion.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { after, before, test } from "node:test";
import { startServer, type Server } from "./server.js";

const demo = fileURLToPath(new URL("../../../../examples/demo/longrun.toml", import.meta.url));
const example = fileURLToPath(new URL("../examples/research.js", import.meta.url));
let server: Server;

before(async () => {
  server = await startServer({ configPath: demo });
});

after(async () => {
  await server?.stop();
});

test("research.ts starts a countdown, watches it, answers its question, and sees it complete", async () => {
  const { stdout } = await promisify(execFile)(process.execPath, [example, "countdown", '{"seconds": 2, "confirm": true}'], {
    env: { ...process.env, LONGRUN_URL: server.url },
  });
  assert.match(stdout, /^started countdown task_[0-9a-f]{32}$/m);
  assert.match(stdout, /asked confirm: .* → true/);
  assert.match(stdout, /^completed: \{.*"confirmed":true/m);
});
