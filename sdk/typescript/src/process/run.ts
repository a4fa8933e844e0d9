//! `run(handler)`: serves one task attempt over stdin and stdout as a process handler, from the start line to the outcome.
import { createInterface } from "node:readline";
import type { Readable, Writable } from "node:stream";
import { Context } from "./context.js";
import { Cancelled, HandlerError } from "./errors.js";
import { PROTOCOLS, parseIncoming, parseStart, type Outgoing } from "./wire.js";

/** A process handler: the task's input in, its output (any JSON) out. */
export type Handler<I = unknown, O = unknown> = (ctx: Context, input: I) => O | Promise<O>;

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
  // The protocol makes any line after the outcome an error: refuse it here, where it is clear.
  let ended = false;
  const send = (line: Outgoing): Promise<Outgoing> => {
    if (ended) return Promise.reject(new Error(`the task's outcome is written: a ${line.type} line may not follow it`));
    if (line.type === "complete" || line.type === "fail" || line.type === "cancelled") ended = true;
    return write(output, line);
  };
  const lines = createInterface({ input, crlfDelay: Infinity })[Symbol.asyncIterator]();

  const controller = new AbortController();
  const cancel = () => controller.abort(new Cancelled("the task was cancelled"));
  if (own) process.on("SIGTERM", cancel);
  try {
    const first = await lines.next();
    if (first.done === true) return await send(fail("bad_start", "stdin closed before the start line"));
    let start;
    try {
      start = parseStart(first.value);
    } catch (error) {
      return await send(fail("bad_start", message(error)));
    }
    if (!PROTOCOLS.includes(start.protocol)) {
      return await send(fail("unsupported_protocol", `protocol ${start.protocol} is unknown to @longrun/sdk (it speaks ${PROTOCOLS.join(" and ")})`));
    }

    const ctx = new Context(start, async (line) => void (await send(line)), controller.signal);
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
        if (line.type === "cancel") cancel();
        else ctx.receive(line);
      }
      ctx.close();
    })();
    reading.catch(() => ctx.close());

    return await send(await outcome(handler, ctx, start.input as I, log));
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

/** The outcome line for what the handler did. */
async function outcome<I, O>(handler: Handler<I, O>, ctx: Context, input: I, log: Writable): Promise<Outgoing> {
  try {
    return { type: "complete", output: (await handler(ctx, input)) ?? null };
  } catch (error) {
    if (error instanceof Cancelled || ctx.signal.aborted) return { type: "cancelled", message: message(error) };
    if (error instanceof HandlerError) {
      const line: Outgoing = { type: "fail", code: error.code, message: error.message };
      if (error.details !== undefined) line.details = error.details;
      if (error.retryable !== undefined) line.retryable = error.retryable;
      if (error.retryAfterMs !== undefined) line.retry_after_ms = error.retryAfterMs;
      return line;
    }
    // The stack is for people reading the server's log, not for the task's error.
    if (error instanceof Error && error.stack !== undefined) log.write(`${error.stack}\n`);
    return fail("handler_error", message(error));
  }
}

function fail(code: string, text: string): Outgoing {
  return { type: "fail", code, message: text };
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Writes one JSON line; resolves with it once the stream has taken it. */
function write(output: Writable, line: Outgoing): Promise<Outgoing> {
  return new Promise((resolve, reject) => {
    output.write(`${JSON.stringify(line)}\n`, (error) => (error ? reject(error) : resolve(line)));
  });
}
