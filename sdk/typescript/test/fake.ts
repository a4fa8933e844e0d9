//! A fake runtime for process-handler tests: writes lines to a handler's stdin and reads its stdout, in memory.
import { PassThrough } from "node:stream";
import { createInterface } from "node:readline";
import { run, type Handler, type Outgoing } from "@longrun/sdk/process";

/** One handler run against in-memory streams. */
export interface Fake {
  /** Writes a line to the handler's stdin. */
  send(line: object): void;
  /** Ends the handler's stdin. */
  close(): void;
  /** The handler's next stdout line. */
  next(): Promise<Record<string, unknown>>;
  /** What `run` resolved with: the outcome line. */
  readonly done: Promise<Outgoing>;
}

/** Starts `handler` under `run` and writes the start line with `protocol`, `steps` and `input`. */
export function fake<I, O>(handler: Handler<I, O>, start: { protocol?: number; steps?: object; input?: unknown; attempt?: number } = {}): Fake {
  const input = new PassThrough();
  const output = new PassThrough();
  const lines = createInterface({ input: output, crlfDelay: Infinity })[Symbol.asyncIterator]();
  const log = new PassThrough();
  log.resume();
  const done = run(handler, { input, output, exit: false, log });
  const send = (line: object) => input.write(`${JSON.stringify(line)}\n`);
  send({
    type: "start",
    protocol: start.protocol ?? 2,
    task: "task_00000000000000000000000000000001",
    kind: "test",
    attempt: start.attempt ?? 1,
    ...(start.steps === undefined ? {} : { steps: start.steps }),
    input: start.input ?? null,
  });
  return {
    send,
    close: () => input.end(),
    async next() {
      const line = await lines.next();
      if (line.done === true) throw new Error("the handler's stdout ended");
      return JSON.parse(line.value) as Record<string, unknown>;
    },
    done,
  };
}
