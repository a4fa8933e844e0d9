//! A longrun worker in TypeScript: serves the kind `research` from this process, then starts a research task as a client would and answers its question.
//
// From the repository's root, once the SDK is built (`cd sdk/typescript && npm ci && npm run build`):
//
//   longrun serve --config examples/typescript/longrun.toml & node sdk/typescript/dist/examples/research.js; kill $!
//
// It registers as a worker of `research` (examples/typescript/longrun.toml), starts one task on
// the topic given as its argument (default "tides"), prints what happens, answers the question
// the task asks, and stops (drain, finish, leave) once the task has ended. With `--serve` it only
// serves, until SIGTERM or Ctrl-C; start tasks from anywhere, such as
// `longrun tasks start research --input '{"topic": "tides"}'`, and run more of it to share them.
// LONGRUN_URL (default http://127.0.0.1:7700) and LONGRUN_TOKEN say which server and who.
import { setTimeout as wait } from "node:timers/promises";
import { Client, HandlerError, LongrunError, Worker } from "@longrun/sdk";

const url = process.env["LONGRUN_URL"] ?? "http://127.0.0.1:7700";
const token = process.env["LONGRUN_TOKEN"];
const worker = new Worker({ url, token, name: `research-example-${process.pid}`, capacity: 4 });

worker.kind<{ topic: string }>("research", async (ctx, { topic }) => {
  await ctx.progress(10, `looking into ${topic}`);
  // Once per task: a task re-run on another worker (this one died) gets the saved sources back.
  const sources = await ctx.step("search", () => search(topic, ctx.signal));
  await ctx.artifact("notes", [`# ${topic}\n`, ...sources.map((source) => `- ${source}\n`)], { name: "notes.md", lastChunk: true });
  await ctx.progress(60, "notes written");
  const publish = await ctx.ask("publish", { type: "boolean", message: `Publish the notes on ${topic}?` }, { timeoutMs: 600_000 });
  if (publish !== true) throw new HandlerError("declined", "the notes were not approved");
  await ctx.sleep("cool-down", 500); // durable: a re-run waits only what remains
  await ctx.notifyAgent(`the notes on ${topic} are published`);
  await ctx.progress(100, "published");
  return { topic, sources: sources.length };
});

/** Stands for a slow search; `signal` aborts it when the task is cancelled or taken away. */
async function search(topic: string, signal: AbortSignal): Promise<string[]> {
  await wait(300, undefined, { signal });
  return [`${topic}: an encyclopedia`, `${topic}: a field guide`, `${topic}: a paper`];
}

const serving = worker.run();
serving.catch((error: unknown) => {
  console.error(error instanceof LongrunError ? `longrun refused the worker: ${error.status} ${error.code}: ${error.message}` : error);
  process.exit(2);
});

if (!process.argv.includes("--serve")) {
  const client = new Client({ baseUrl: url, token });
  // The server may still be starting (the one-line command starts both at once).
  for (let tries = 1; ; tries++) {
    try {
      await client.health();
      break;
    } catch (error) {
      if (tries === 50) throw error;
      await wait(100);
    }
  }
  const topic = process.argv.slice(2).find((arg) => !arg.startsWith("--")) ?? "tides";
  const task = await client.start("research", { topic }, { session: "research-example" });
  console.log(`started ${task.kind} ${task.id}, served by this worker`);
  for await (const event of client.watch(task.id)) {
    const change = event.change;
    if (change.type === "progress") console.log(`  ${change.percent ?? "?"}% ${change.message ?? ""}`);
    if (change.type === "artifact") console.log(`  artifact ${change.id}: ${JSON.stringify(change.parts)}`);
    if (change.type === "agent_message") console.log(`  message for the agent: ${change.message}`);
    if (change.type === "input_requested") {
      console.log(`  asked ${change.key}: ${(change.request as { message?: string }).message ?? ""} → true`);
      await client.answer(task.id, change.key, true);
    }
  }
  const done = await client.get(task.id);
  console.log(`${done.status}: ${JSON.stringify(done.output ?? done.error ?? done.cancellation ?? null)}`);
  process.exitCode = done.status === "completed" ? 0 : 1;
  await worker.stop();
}
await serving;
