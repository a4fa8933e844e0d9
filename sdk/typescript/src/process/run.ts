//! `run(handler)`: serves one task attempt over stdin and stdout as a process handler, from the start line to the outcome.
import { createInterface } from "node:readline";
import type { Readable, Writable } from "node:stream";
import { Attempt, message, type Handler } from "./attempt.js";
import { Cancelled } from "./errors.js";
import { parseIncoming, parseStart, type Outgoing } from "./wire.js";

/** A process handler: the task's input in, its output (any JSON) out. */
export type { Handler } from "./attempt.js";

/** Where `run` reads and writes; the defaults are the process's own. */
export interface RunOptions {
  /** The runtime's lines (default `process.stdin`). */
  readonly input?: Readable | undefined;
  /** The handler's lines (default `process.stdout`). */
  readonly output?: Writable | undefined;
  /**
   * Exit the process with status 0 once the outcome is written, and treat SIGTERM as a cancel.
   * Default: true when both streams are the process's own.
   */
  readonly exit?: boolean | undefined;
  /** Where notes for people go, such as a thrown error's stack (default `process.stderr`, which the server logs). */
  readonly log?: Writable | undefined;
}

/**
 * Runs `handler` for the task the runtime starts: reads the start line, calls the handler with a
 * `Context` and the input, and writes its outcome. A returned value completes the task; a thrown
 * `HandlerError` fails it with its code; a thrown `Cancelled`, or anything thrown after a cancel,
 * cancels it; anything else fails it with `handler_error`. Resolves with the outcome line.
 */
export async function run<I = unknown, O = unknown>(handler: Handler<I, O>, options: RunOptions = {}): Promise<Outgoing> {
  const input = options.input ?? process.stdin;
  const output = options.output ?? process.stdout;
  const own = options.exit ?? (input === process.stdin && output === process.stdout);
  const log = options.log ?? process.stderr;
  // Lines are written in the order they are sent: a stream keeps its writes in order.
  const transport = { send: (line: Outgoing) => write(output, line) };
  const lines = createInterface({ input, crlfDelay: Infinity })[Symbol.asyncIterator]();

  let attempt: Attempt | undefined;
  // A SIGTERM may come before the start line: the attempt then begins cancelled.
  let terminated = false;
  const cancel = () => {
    terminated = true;
    attempt?.abort(new Cancelled("the task was cancelled"));
  };
  if (own) process.on("SIGTERM", cancel);
  try {
    const first = await lines.next();
    if (first.done === true) return await badStart(output, "stdin closed before the start line");
    let start;
    try {
      start = parseStart(first.value);
    } catch (error) {
      return await badStart(output, message(error));
    }

    const current = new Attempt(start, transport);
    attempt = current;
    if (terminated) cancel();
    const reading = (async () => {
      for (let next = await lines.next(); next.done !== true; next = await lines.next()) {
        if (next.value.trim() === "") continue;
        let line;
        try {
          line = parseIncoming(next.value);
        } catch (error) {
          log.write(`@longrun/sdk: ignoring a stdin line: ${message(error)}\n`);
          continue;
        }
        current.receive(line);
      }
      current.close();
    })();
    reading.catch(() => current.close());

    return await current.run(handler, log);
  } finally {
    if (own) process.off("SIGTERM", cancel);
    await lines.return?.();
    if (own) {
      // The outcome is written (stdout to a pipe is synchronous on Linux, and the write's callback
      // has run). Nothing may run after it: a forgotten timer must not keep the process alive.
      process.exit(0);
    }
  }
}

/** Fails the attempt before there is one: the start line is missing or unreadable. */
async function badStart(output: Writable, text: string): Promise<Outgoing> {
  const line: Outgoing = { type: "fail", code: "bad_start", message: text };
  await write(output, line);
  return line;
}

/** Writes one JSON line; resolves once the stream has taken it. */
function write(output: Writable, line: Outgoing): Promise<void> {
  return new Promise((resolve, reject) => {
    output.write(`${JSON.stringify(line)}\n`, (error) => (error ? reject(error) : resolve()));
  });
}
