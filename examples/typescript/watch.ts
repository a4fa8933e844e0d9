//! A TypeScript client of longrun: starts a task, watches it live, and answers the question it asks.
//
// Against the demo server (`cargo run -p longrun-cli -- serve`, kinds from examples/demo):
//
//   cd sdk/typescript && npm ci && npm run build && node dist/examples/watch.js
//
// Arguments: the kind and its input as JSON (default: a countdown of 4 s that asks half-way).
// LONGRUN_URL (default http://127.0.0.1:7700) and LONGRUN_TOKEN say which server and who.
import { Client, LongrunError } from "@longrun/sdk";

const baseUrl = process.env["LONGRUN_URL"] ?? "http://127.0.0.1:7700";
const token = process.env["LONGRUN_TOKEN"];
const client = new Client({ baseUrl, token });
const kind = process.argv[2] ?? "countdown";
const input: unknown = JSON.parse(process.argv[3] ?? '{"seconds": 4, "confirm": true}');

// Ctrl-C stops watching and cancels the task, rather than leaving it running unobserved.
const stop = new AbortController();
process.once("SIGINT", () => stop.abort());

try {
  const task = await client.start(kind, input, { session: "research-example", labels: { example: "watch.ts" } });
  console.log(`started ${task.kind} ${task.id}`);
  try {
    for await (const event of client.watch(task.id, { signal: stop.signal })) {
      const change = event.change;
      switch (change.type) {
        case "progress":
          console.log(`  ${change.percent ?? "?"}% ${change.message ?? ""}`);
          break;
        case "input_requested": {
          // Answer as a person would: yes to a yes/no question, else a word.
          const request = change.request as { type?: string; message?: string };
          const answer = request.type === "boolean" ? true : "yes";
          console.log(`  asked ${change.key}: ${request.message ?? JSON.stringify(request)} → ${JSON.stringify(answer)}`);
          await client.answer(task.id, change.key, answer);
          break;
        }
        case "artifact":
          console.log(`  artifact ${change.id}: ${JSON.stringify(change.parts)}`);
          break;
        case "agent_message":
          console.log(`  message for the agent: ${change.message}`);
          break;
        default:
          break;
      }
    }
  } catch (error) {
    if (!stop.signal.aborted) throw error;
    await client.cancel(task.id);
  }
  const done = await client.get(task.id);
  console.log(`${done.status}: ${JSON.stringify(done.output ?? done.error ?? done.cancellation ?? null)}`);
  process.exitCode = done.status === "completed" ? 0 : 1;
} catch (error) {
  if (!(error instanceof LongrunError)) throw error;
  console.error(`longrun said ${error.status} ${error.code}: ${error.message}`);
  process.exitCode = 2;
}
