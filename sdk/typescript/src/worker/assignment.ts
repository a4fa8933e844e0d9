//! `Assignment`: one task the server assigned to a worker, with its handler's `Attempt` and its reports, sent one at a time and in order.
//
// Invariants: a report is posted only after the previous one of the same assignment has been
// answered, so the server applies them in the order the handler made them; once the assignment
// is fenced (revoked, refused as gone, or its worker forgotten) nothing more is posted and every
// report still queued rejects with the `Revoked` reason.
import { backoff, sleep } from "../delay.js";
import { LongrunError } from "../error.js";
import type { Http } from "../http.js";
import { Attempt } from "../process/attempt.js";
import type { Incoming, Outgoing, Start } from "../process/wire.js";
import { resumable } from "../watch.js";
import { Revoked } from "./errors.js";

/** What an assignment needs from its worker. */
export interface Owner {
  readonly http: Http;
  /** The first delay before a report is sent again after a network failure; each failure doubles it. */
  readonly initialDelayMs: number;
  /** The longest such delay. */
  readonly maxDelayMs: number;
  /** The server answered `404 unknown_worker` for `worker`: it must register again. */
  forgotten(worker: string): void;
}

/** One assigned task. */
export class Assignment {
  /** The assignment's id (`asg_…`). */
  readonly id: string;
  /** The id of the registration that got it. */
  readonly worker: string;
  /** The handler's run. */
  readonly attempt: Attempt;
  /** When it arrived, on the worker's own counter (a heartbeat only drops what arrived before it was sent). */
  readonly since: number;
  readonly #owner: Owner;
  readonly #path: string;
  /** Aborted (with a `Revoked` reason) when the task is no longer this worker's. */
  readonly #fence = new AbortController();
  /** The last report in line: the next one waits for it. */
  #queue: Promise<void> = Promise.resolve();

  constructor(id: string, worker: string, start: Start, since: number, owner: Owner) {
    this.id = id;
    this.worker = worker;
    this.since = since;
    this.#owner = owner;
    this.#path = `/v1/workers/${encodeURIComponent(worker)}/assignments/${encodeURIComponent(id)}/reports`;
    this.attempt = new Attempt(start, { send: (message) => this.#send(message) });
  }

  /** Whether the assignment was fenced: the handler is stopped and nothing more is reported. */
  get gone(): boolean {
    return this.#fence.signal.aborted;
  }

  /** Hands the handler one message from the stream (an answer, a step saved, a cancel). */
  receive(message: Incoming): void {
    if (!this.gone) this.attempt.receive(message);
  }

  /** The task is no longer this worker's: stops the handler (its signal aborts) and reports nothing more. */
  revoke(reason: string): void {
    if (this.gone) return;
    const revoked = new Revoked(reason);
    this.#fence.abort(revoked);
    this.attempt.abort(revoked);
  }

  #send(message: Outgoing): Promise<void> {
    const sent = this.#queue.then(() => this.#post(message));
    this.#queue = sent.catch(() => undefined);
    return sent;
  }

  /**
   * Posts one report, again after a network failure or a server error (with backoff) until it is
   * answered or the assignment is fenced. A report that may have arrived before the failure is
   * sent again: the server then records a progress twice, or refuses a repeated question (422).
   */
  async #post(message: Outgoing): Promise<void> {
    const signal = this.#fence.signal;
    for (let failures = 0; ; ) {
      if (signal.aborted) throw signal.reason;
      try {
        await this.#owner.http.send({ method: "POST", path: this.#path, body: message, signal });
        // A step's report is answered once its value is durable: the step is saved (the
        // `step_saved` event that follows on the stream then finds nobody waiting).
        if (message.type === "step") this.attempt.receive({ type: "step_saved", key: message.key });
        return;
      } catch (error) {
        if (signal.aborted) throw signal.reason;
        if (error instanceof LongrunError && error.status === 409) {
          this.revoke(`the server refused a ${message.type} report: ${error.code}: ${error.message}`);
          throw signal.reason;
        }
        if (error instanceof LongrunError && error.code === "unknown_worker") {
          this.#owner.forgotten(this.worker);
          this.revoke("the server forgot this worker (it expired, or the server restarted)");
          throw signal.reason;
        }
        if (error instanceof LongrunError && error.code === "protocol_error") {
          // The server failed the task with `protocol_error`: the assignment is over.
          this.revoke(`the server refused a ${message.type} report: ${error.message}`);
          throw error;
        }
        if (!resumable(error)) throw error;
        failures += 1;
        await sleep(backoff(failures, this.#owner.initialDelayMs, this.#owner.maxDelayMs), signal);
      }
    }
  }
}
