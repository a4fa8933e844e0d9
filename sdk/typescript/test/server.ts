//! Starts a real `longrun serve` ($LONGRUN_BIN) on a free port with a temporary data directory, for the tests.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The tokens of the test configs' principals: `robot` serves the worker kinds. */
export const TOKENS = { alice: "alice-secret-token", bob: "bob-secret-token", robot: "robot-secret-token" } as const;

/** A running server. */
export interface Server {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** What the server wrote, for failure messages. */
  log(): string;
  /** Stops it (SIGTERM, then waits) and removes its data. */
  stop(): Promise<void>;
}

/** The compiled test handlers, next to this file in dist/test/handlers. */
const handlers = fileURLToPath(new URL("./handlers/", import.meta.url));

/** The test config: two principals and one kind per test handler, run by this very node. */
export function testConfig(): string {
  const kind = (name: string, description: string, extra = "") =>
    `[[kinds]]
name = "${name}"
description = ${JSON.stringify(description)}
command = [${JSON.stringify(process.execPath)}, ${JSON.stringify(join(handlers, `${name}.js`))}]
term_grace_ms = 2000
${extra}`;
  return `[server]
listen = "127.0.0.1:0"

[[tokens]]
token = "${TOKENS.alice}"
principal = "alice"

[[tokens]]
token = "${TOKENS.bob}"
principal = "bob"

${kind("echo", "Completes at once with its input.")}
${kind("research", "Progress, an artifact, a question, a message for the agent.", `[kinds.input_schema]
type = "object"
required = ["topic"]
properties.topic.type = "string"
`)}
${kind("wait", "Waits to be cancelled.")}
${kind("ticks", "Progress ticks, then a question.")}
${kind("boom", "Fails.")}
${kind("late", "Asks with a zero timeout.")}
`;
}

/** The kinds served by workers in `workerConfig`: `research` has an input schema in the config. */
export const WORKER_KINDS = ["research", "hold", "steps", "fence", "slots", "drain", "resume", "handback", "reask"] as const;

/**
 * The worker test config: the principals of `testConfig` and `robot`, which alone may serve the
 * worker kinds; heartbeats every 200 ms and a worker lost after 1 s of silence, so that a lost
 * worker's task is re-run within the test's patience.
 */
export function workerConfig(): string {
  const kind = (name: string, extra = "") =>
    `[[kinds]]
name = "${name}"
worker = true
served_by = ["robot"]
restart = "rerun"
${extra}`;
  return `[server]
listen = "127.0.0.1:0"

[workers]
heartbeat_ms = 200
expiry_ms = 1000

[[tokens]]
token = "${TOKENS.alice}"
principal = "alice"

[[tokens]]
token = "${TOKENS.bob}"
principal = "bob"

[[tokens]]
token = "${TOKENS.robot}"
principal = "robot"

${WORKER_KINDS.map((name) =>
  kind(
    name,
    name === "research"
      ? `[kinds.input_schema]
type = "object"
required = ["topic"]
properties.topic.type = "string"
`
      : "",
  ),
).join("\n")}`;
}

/** Starts `longrun serve` with `config` (TOML text, or a path with `configPath`). */
export async function startServer(options: { config?: string; configPath?: string } = {}): Promise<Server> {
  const bin = process.env["LONGRUN_BIN"];
  if (bin === undefined || bin === "") {
    throw new Error("set LONGRUN_BIN to a longrun binary (tests/sdk-typescript/run builds one)");
  }
  const dir = await mkdtemp(join(tmpdir(), "longrun-sdk-ts-"));
  let configPath = options.configPath;
  if (configPath === undefined) {
    configPath = join(dir, "longrun.toml");
    await writeFile(configPath, options.config ?? testConfig());
  }
  const port = await freePort();
  const child = spawn(
    bin,
    ["serve", "--config", configPath, "--data", join(dir, "data"), "--listen", `127.0.0.1:${port}`],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let log = "";
  child.stdout?.on("data", (chunk: Buffer) => (log += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (log += chunk.toString()));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    await kill(child);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await healthy(url, child);
  } catch (error) {
    await stop();
    throw new Error(`the server did not come up: ${String(error)}\n${log}`);
  }
  return { url, log: () => log, stop };
}

async function healthy(url: string, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) throw new Error(`it exited with ${child.exitCode}`);
    try {
      const response = await fetch(`${url}/healthz`);
      if (response.ok) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error("no answer on /healthz after 30 s");
}

function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
  });
}

/** A port nobody listens on now (the OS picks it; the server binds it right after). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
