//! `Context`: what a handler sees, as a process or in a worker (progress, artifacts, questions, agent messages, steps, sleeps, cancellation).
//
// Invariants: a waiter (an open question, or a step or sleep waiting for `step_saved`) is
// registered before its line is written, so its reply cannot arrive unclaimed; each key is used
// once per attempt; once the runtime's messages end (stdin is closed) every waiter is rejected
// and no new one is made.
import { AnswerTimeout, InputClosed } from "./errors.js";
import type { Transport } from "./transport.js";
import type { Incoming, Outgoing, Start } from "./wire.js";

/** Options of `ctx.artifact`. */
export interface ArtifactOptions {
  /** A name for people. */
  readonly name?: string | undefined;
  /** Extend the artifact of the same id instead of replacing it. */
  readonly append?: boolean | undefined;
  /** No further chunk of this artifact follows. */
  readonly lastChunk?: boolean | undefined;
}

/** Options of `ctx.ask`. */
export interface AskOptions {
  /** Give up after this long (rejecting with `AnswerTimeout`); 0 takes only an answer already given. Default: as long as the task lives. */
  readonly timeoutMs?: number | undefined;
}

/** Options of `ctx.notifyAgent`. */
export interface NotifyOptions {
  /** Ask for a new agent turn. */
  readonly trigger?: boolean | undefined;
}

interface Waiter {
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

/** The handler's view of its task. */
export class Context {
  /** The task's id. */
  readonly task: string;
  /** The task's kind. */
  readonly kind: string;
  /** Which run of the task this is: 1, or more after a re-run. */
  readonly attempt: number;
  /** The protocol version the runtime speaks (steps and sleeps are durable from 2). */
  readonly protocol: number;
  /**
   * Aborted when the task is cancelled (a `cancel` message, or SIGTERM to a process handler):
   * stop, then throw or return. In a worker it is also aborted, with a `Revoked` reason, when the
   * task is no longer this worker's (revoked, fenced, or handed back at a stop): whatever the
   * handler does then is reported to nobody.
   */
  readonly signal: AbortSignal;

  readonly #transport: Transport;
  readonly #saved: ReadonlyMap<string, unknown>;
  readonly #questions = new Map<string, Waiter>();
  readonly #steps = new Map<string, Waiter>();
  readonly #used = new Set<string>();
  /** Replies that came before their question was asked (the runtime holds answers until then, a test harness may not). */
  readonly #early = new Map<string, (waiter: Waiter) => void>();
  #closed = false;

  /** An `Attempt` makes the one context of a handler run. @internal */
  constructor(start: Start, transport: Transport, signal: AbortSignal) {
    this.task = start.task;
    this.kind = start.kind;
    this.attempt = start.attempt;
    this.protocol = start.protocol;
    this.signal = signal;
    this.#transport = transport;
    this.#saved = new Map(Object.entries(start.steps ?? {}));
  }

  /** Reports progress: `percent` from 0 to 100 when known, and what is happening. */
  progress(percent?: number, message?: string): Promise<void> {
    if (percent !== undefined && !(percent >= 0 && percent <= 100)) {
      return Promise.reject(new RangeError(`progress is a percentage from 0 to 100, not ${percent}`));
    }
    const line: Outgoing = { type: "progress" };
    if (percent !== undefined) line.percent = percent;
    if (message !== undefined) line.message = message;
    return this.#transport.send(line);
  }

  /** Emits an artifact chunk: strings are text parts, anything else data. */
  artifact(id: string, parts: readonly unknown[], options: ArtifactOptions = {}): Promise<void> {
    return this.#transport.send({
      type: "artifact",
      id,
      ...(options.name === undefined ? {} : { name: options.name }),
      parts: [...parts],
      append: options.append ?? false,
      last_chunk: options.lastChunk ?? false,
    });
  }

  /**
   * Asks a question and resolves with its answer. The task is `input_required` until someone
   * answers. Rejects with `AnswerTimeout` when the timeout passes, with the signal's reason when
   * the task is cancelled, and with `InputClosed` when the runtime closes stdin.
   */
  ask(key: string, request: unknown, options: AskOptions = {}): Promise<unknown> {
    const line: Outgoing = { type: "ask", key, request };
    if (options.timeoutMs !== undefined) line.timeout_ms = options.timeoutMs;
    return this.#wait(this.#questions, key, line);
  }

  /** Leaves a message in the session's inbox for the agent; `trigger` asks for a new turn. */
  notifyAgent(text: string, options: NotifyOptions = {}): Promise<void> {
    return this.#transport.send({ type: "message", text, trigger: options.trigger ?? false });
  }

  /**
   * Runs `fn` once across attempts: if an earlier attempt saved step `key`, resolves with its
   * value without running `fn`; else runs it, has the runtime save the value durably, and only
   * then resolves with it. The value goes through JSON either way, so a re-run sees exactly what
   * the first run saw. Keys are used once per attempt. Under protocol 1 (a runtime without
   * steps) `fn` simply runs, every attempt.
   */
  async step<T>(key: string, fn: () => T | Promise<T>): Promise<T> {
    this.#claim(key);
    if (this.#saved.has(key)) return this.#saved.get(key) as T;
    const value: unknown = JSON.parse(JSON.stringify((await fn()) ?? null));
    if (this.protocol >= 2) await this.#wait(this.#steps, key, { type: "step", key, value });
    return value as T;
  }

  /**
   * Sleeps `ms` durably: the runtime keeps the timer in the task's journal, so a re-run waits
   * only what remains, and one that fired before is not waited again. Rejects with the signal's
   * reason when the task is cancelled. Under protocol 1 it is a plain timer.
   */
  async sleep(key: string, ms: number): Promise<void> {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`a sleep lasts 0 ms or more, not ${ms}`);
    this.#claim(key);
    if (this.#saved.has(key)) return;
    if (this.protocol >= 2) {
      await this.#wait(this.#steps, key, { type: "sleep", key, ms: Math.round(ms) });
      return;
    }
    await new Promise<void>((resolve, reject) => {
      if (this.signal.aborted) {
        reject(this.signal.reason);
        return;
      }
      const onAbort = () => {
        clearTimeout(timer);
        reject(this.signal.reason);
      };
      const timer = setTimeout(() => {
        this.signal.removeEventListener("abort", onAbort);
        resolve();
      }, ms);
      this.signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Hands a message from the runtime to whoever waits for it (an `Attempt` calls it). @internal */
  receive(line: Incoming): void {
    switch (line.type) {
      case "answer":
        this.#settle(this.#questions, line.key, (waiter) => waiter.resolve(line.value), true);
        break;
      case "answer_timeout":
        this.#settle(this.#questions, line.key, (waiter) => waiter.reject(new AnswerTimeout(line.key)), true);
        break;
      case "step_saved":
        this.#settle(this.#steps, line.key, (waiter) => waiter.resolve(undefined));
        break;
      default:
        break;
    }
  }

  /** The runtime's messages have ended: nothing more can be answered or saved (an `Attempt` calls it). @internal */
  close(): void {
    this.#closed = true;
    const error = new InputClosed("the runtime closed stdin: no answer can come any more");
    for (const waiters of [this.#questions, this.#steps]) {
      for (const waiter of waiters.values()) waiter.reject(error);
      waiters.clear();
    }
  }

  #claim(key: string): void {
    if (this.#used.has(key)) throw new Error(`the step key \`${key}\` is used twice in one attempt`);
    this.#used.add(key);
  }

  #wait(waiters: Map<string, Waiter>, key: string, line: Outgoing): Promise<unknown> {
    if (this.signal.aborted) return Promise.reject(this.signal.reason);
    if (this.#closed) return Promise.reject(new InputClosed("the runtime closed stdin"));
    if (waiters.has(key)) return Promise.reject(new Error(`\`${key}\` is already waited for`));
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        waiters.delete(key);
        reject(this.signal.reason);
      };
      this.signal.addEventListener("abort", onAbort, { once: true });
      const done = () => this.signal.removeEventListener("abort", onAbort);
      waiters.set(key, {
        resolve: (value) => {
          done();
          resolve(value);
        },
        reject: (error) => {
          done();
          reject(error);
        },
      });
      this.#transport.send(line).then(
        () => {
          const early = waiters === this.#questions ? this.#early.get(key) : undefined;
          if (early === undefined) return;
          this.#early.delete(key);
          this.#settle(waiters, key, early);
        },
        (error: unknown) => {
          waiters.delete(key);
          done();
          reject(error);
        },
      );
    });
  }

  #settle(waiters: Map<string, Waiter>, key: string, settle: (waiter: Waiter) => void, keepEarly = false): void {
    const waiter = waiters.get(key);
    if (waiter === undefined) {
      if (keepEarly) this.#early.set(key, settle);
      return;
    }
    waiters.delete(key);
    settle(waiter);
  }
}
