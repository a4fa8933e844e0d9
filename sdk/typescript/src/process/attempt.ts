//! `Attempt`: one run of a handler on one task, whatever carries its messages (a process's stdin and stdout, or a worker's HTTP reports and event stream).
//
// The process protocol and the worker protocol exchange the same messages; only their framing
// differs. An `Attempt` owns what does not depend on the framing: the handler's `Context`, its
// `AbortSignal`, the rule that nothing follows the outcome, and how a returned value or a thrown
// error becomes that outcome. The framing is a `Transport`: `run` writes JSON lines, `Worker`
// posts reports.
import type { Writable } from "node:stream";
import { Context } from "./context.js";
import { Cancelled, HandlerError } from "./errors.js";
import type { Transport } from "./transport.js";
import { PROTOCOLS, type Incoming, type Outgoing, type Start } from "./wire.js";

/** A process-protocol handler: the task's input in, its output (any JSON) out. */
export type Handler<I = unknown, O = unknown> = (ctx: Context, input: I) => O | Promise<O>;

/** One handler run: feed it the runtime's messages with `receive`, and `run` it to its outcome. */
export class Attempt {
  /** The handler's view of its task. */
  readonly context: Context;
  readonly #start: Start;
  readonly #transport: Transport;
  readonly #controller = new AbortController();
  #ended = false;

  constructor(start: Start, transport: Transport) {
    this.#start = start;
    this.#transport = transport;
    this.context = new Context(start, { send: (message) => this.#send(message) }, this.#controller.signal);
  }

  /** The handler's signal: aborted by a cancel, or by `abort`. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** Hands the handler one message from the runtime: a cancel aborts its signal, the rest go to its context. */
  receive(message: Incoming): void {
    if (message.type === "cancel") this.abort(new Cancelled("the task was cancelled"));
    else this.context.receive(message);
  }

  /** Aborts the handler's signal with `reason` (the first reason wins). */
  abort(reason: unknown): void {
    this.#controller.abort(reason);
  }

  /** No message can come from the runtime any more: pending questions and steps are rejected. */
  close(): void {
    this.context.close();
  }

  /**
   * Runs `handler` on the start's input and sends its outcome: a returned value completes the
   * task; a thrown `HandlerError` fails it with its code; a thrown `Cancelled`, or anything thrown
   * once the signal is aborted, cancels it; anything else fails it with `handler_error` (its stack
   * goes to `log`). A start of a protocol this module does not speak fails at once, without
   * calling the handler. Resolves with the outcome once it is sent.
   */
  async run<I, O>(handler: Handler<I, O>, log: Writable): Promise<Outgoing> {
    if (!PROTOCOLS.includes(this.#start.protocol)) {
      const text = `protocol ${this.#start.protocol} is unknown to @longrun/sdk (it speaks ${PROTOCOLS.join(" and ")})`;
      return this.#finish({ type: "fail", code: "unsupported_protocol", message: text });
    }
    return this.#finish(await outcome(handler, this.context, this.#start.input as I, log));
  }

  /** Sends an outcome the runtime decided without the handler (such as a start it cannot parse). */
  async #finish(message: Outgoing): Promise<Outgoing> {
    await this.#send(message);
    return message;
  }

  #send(message: Outgoing): Promise<void> {
    // Both protocols make any message after the outcome an error: refuse it here, where it is clear.
    if (this.#ended) return Promise.reject(new Error(`the task's outcome is written: a ${message.type} message may not follow it`));
    if (isOutcome(message)) this.#ended = true;
    return this.#transport.send(message);
  }
}

/** Whether `message` ends the attempt. */
export function isOutcome(message: Outgoing): boolean {
  return message.type === "complete" || message.type === "fail" || message.type === "cancelled";
}

/** The outcome message for what the handler did. */
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
    // The stack is for people reading the log, not for the task's error.
    if (error instanceof Error && error.stack !== undefined) log.write(`${error.stack}\n`);
    return { type: "fail", code: "handler_error", message: message(error) };
  }
}

/** An error in words. */
export function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
