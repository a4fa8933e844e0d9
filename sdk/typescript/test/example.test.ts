//! The examples of examples/typescript, compiled, against `longrun serve`: watch.ts drives the demo's countdown; research.ts serves `research` as a worker and drives one of its tasks.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { test } from "node:test";
import { startServer } from "./server.js";

const examples = new URL("../../../../examples/", import.meta.url);
const compiled = (name: string) => fileURLToPath(new URL(`../examples/${name}.js`, import.meta.url));

test("watch.ts starts a countdown, watches it, answers its question, and sees it complete", async () => {
  const server = await startServer({ configPath: fileURLToPath(new URL("demo/longrun.toml", examples)) });
  try {
    const { stdout } = await promisify(execFile)(process.execPath, [compiled("watch"), "countdown", '{"seconds": 2, "confirm": true}'], {
      env: { ...process.env, LONGRUN_URL: server.url },
    });
    assert.match(stdout, /^started countdown task_[0-9a-f]{32}$/m);
    assert.match(stdout, /asked confirm: .* → true/);
    assert.match(stdout, /^completed: \{.*"confirmed":true/m);
  } finally {
    await server.stop();
  }
});

test("research.ts serves its kind as a worker, runs a task to completion through it, and leaves", async () => {
  const server = await startServer({ configPath: fileURLToPath(new URL("typescript/longrun.toml", examples)) });
  try {
    const { stdout } = await promisify(execFile)(process.execPath, [compiled("research"), "tides"], {
      env: { ...process.env, LONGRUN_URL: server.url },
    });
    assert.match(stdout, /^started research task_[0-9a-f]{32}, served by this worker$/m);
    assert.match(stdout, /artifact notes: \["# tides\\n"/);
    assert.match(stdout, /asked publish: Publish the notes on tides\? → true/);
    assert.match(stdout, /message for the agent: the notes on tides are published/);
    const outcome = /^completed: (.*)$/m.exec(stdout)?.[1];
    assert.deepEqual(JSON.parse(outcome ?? "null"), { topic: "tides", sources: 3 }, stdout);
  } finally {
    await server.stop();
  }
});
