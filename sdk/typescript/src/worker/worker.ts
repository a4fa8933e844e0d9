//! `Worker`: serves kinds of a `longrun serve` from any machine over the worker protocol (docs/worker-protocol.md): register, heartbeat, event stream, reports, drain and leave.
//
// Invariants: at most `capacity` handlers run at once (a start beyond it waits here, although
// the server never sends one); a 404 `unknown_worker` from any route re-registers once, however
// many requests saw it, and fences every assignment of the forgotten registration first; the
// event stream resumes after the last event id seen, which is forgotten with the registration
// (ids are per worker); a heartbeat only drops assignments that arrived before it was sent.
import { hostname } from "node:os";
import type { Writable } from "node:stream";
import { backoff, linked, sleep } from "../delay.js";
import { LongrunError } from "../error.js";
import { Http } from "../http.js";
import { message, type Handler } from "../process/attempt.js";
import { HandlerError } from "../process/errors.js";
import type { Start } from "../process/wire.js";
import type { SseMessage } from "../sse.js";
import { resumable } from "../watch.js";
import { Assignment, type Owner } from "./assignment.js";
import { Revoked } from "./errors.js";
import { connect } from "./stream.js";
import { parseEvent, type Heartbeat, type Register, type Registered } from "./wire.js";

/** How a `Worker` reaches its server and what it offers. */
export interface WorkerOptions {
  /** The server's address, such as `http://127.0.0.1:7700`. */
  readonly url: string | URL;
  /** Sent as `Authorization: Bearer …`: a principal the config lets serve the kinds (`served_by`). */
  readonly token?: string | undefined;
  /** A name for people, shown in the dashboard (default: the host name and the process id). */
  readonly name?: string | undefined;
  /** How many tasks this worker runs at once, all kinds together (default 1). */
  readonly capacity?: number | undefined;
  /** Reconnection and report retries: exponential backoff from `initialDelayMs` (default 100) to `maxDelayMs` (default 5000). */
  readonly reconnect?: { readonly initialDelayMs?: number | undefined; readonly maxDelayMs?: number | undefined } | undefined;
  /** Stop gracefully on SIGTERM and SIGINT while running (default true); a second signal kills as usual. */
  readonly handleSignals?: boolean | undefined;
  /** Where notes for people go: a handler's stack, a lost connection (default `process.stderr`). */
  readonly log?: Writable | undefined;
  /** The `fetch` to use (default: Node's own). */
  readonly fetch?: typeof fetch | undefined;
}

/** What a kind declares when the worker registers. */
export interface KindOptions {
  /** The JSON Schema of the kind's input; the server checks it (or refuses one that differs from its config's). */
  readonly inputSchema?: unknown;
}

/** How to stop. */
export interface StopOptions {
  /**
   * How long to let the tasks held finish (default: as long as they take). Those still running
   * then are stopped (their signal aborts with `Revoked`) and handed back to the server, which
   * assigns them to another worker with the steps saved so far.
   */
  readonly graceMs?: number | undefined;
}

/** One registration: the server's id for this worker and its timings. */
interface Registration {
  readonly worker: string;
  readonly heartbeatMs: number;
  readonly expiryMs: number;
  /** Aborted when the registration is forgotten: its stream and heartbeat stop. */
  readonly ended: AbortController;
}

/**
 * Serves kinds to a `longrun serve`: `worker.kind(name, handler)` for each, then `run()`. Each
 * task the server assigns runs its kind's handler with the same `Context` as a process handler
 * (`@longrun/sdk/process`), whose `signal` aborts on a cancel, and also (with `Revoked`) when the
 * task stops being this worker's.
 */
export class Worker {
  readonly #http: Http;
  readonly #name: string;
  readonly #capacity: number;
  readonly #initialDelayMs: number;
  readonly #maxDelayMs: number;
  readonly #handleSignals: boolean;
  readonly #log: Writable;
  readonly #kinds = new Map<string, { handler: Handler; inputSchema: unknown }>();
  readonly #owner: Owner;

  readonly #assignments = new Map<string, Assignment>();
  /** Starts beyond capacity, in order of arrival. */
  #waiting: Assignment[] = [];
  #running = 0;
  /** Counts arrivals, to tell a heartbeat which assignments it can speak for. */
  #arrivals = 0;
  /** Called whenever an assignment ends, for a stop waiting for the last one. */
  #onSettle: (() => void) | undefined;

  #registration: Registration | undefined;
  #registering: Promise<Registration | undefined> | undefined;
  #lastEventId: string | undefined;

  #serving: Promise<void> | undefined;
  /** Aborted when a stop is asked for, or the worker fails: take no new work. */
  #stopping = new AbortController();
  /** Aborted when the worker has left: every loop and request ends. */
  #closed = new AbortController();
  #graceMs = Infinity;
  #failure: { error: unknown } | undefined;
  /** Connection trouble is noted once per streak, not once per retry. */
  #troubled = false;

  constructor(options: WorkerOptions) {
    this.#http = new Http({ baseUrl: options.url, token: options.token, fetch: options.fetch });
    this.#name = options.name ?? `${hostname()}-${process.pid}`;
    const capacity = options.capacity ?? 1;
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`a worker's capacity is a whole number from 1, not ${capacity}`);
    this.#capacity = capacity;
    this.#initialDelayMs = options.reconnect?.initialDelayMs ?? 100;
    this.#maxDelayMs = options.reconnect?.maxDelayMs ?? 5000;
    this.#handleSignals = options.handleSignals ?? true;
    this.#log = options.log ?? process.stderr;
    this.#owner = {
      http: this.#http,
      initialDelayMs: this.#initialDelayMs,
      maxDelayMs: this.#maxDelayMs,
      forgotten: (worker) => void this.#reregister(worker),
    };
  }

  /** Serves `kind` with `handler`; call it for every kind before `run`. */
  kind<I = unknown, O = unknown>(kind: string, handler: Handler<I, O>, options: KindOptions = {}): this {
    if (this.#serving !== undefined) throw new Error("the worker is running: declare its kinds before `run`");
    this.#kinds.set(kind, { handler: handler as Handler, inputSchema: options.inputSchema });
    return this;
  }

  /** The server's id for this worker (`wkr_…`) while it is registered. */
  get id(): string | undefined {
    return this.#registration?.worker;
  }

  /** How many tasks it holds now: running, or waiting for room. */
  get held(): number {
    return [...this.#assignments.values()].filter((assignment) => !assignment.gone).length;
  }

  /**
   * Registers and serves until stopped: `stop()`, or SIGTERM or SIGINT (unless `handleSignals`
   * is false). Resolves once the worker has drained, finished its tasks and left; rejects when
   * the server refuses it (a wrong token, a kind it may not serve, …) with that `LongrunError`.
   * Network failures are retried with backoff, for as long as it takes.
   */
  run(): Promise<void> {
    if (this.#serving !== undefined) return Promise.reject(new Error("the worker is already running"));
    if (this.#kinds.size === 0) return Promise.reject(new Error("a worker serves at least one kind: call `worker.kind(name, handler)` first"));
    this.#stopping = new AbortController();
    this.#closed = new AbortController();
    this.#failure = undefined;
    this.#graceMs = Infinity;
    const serving = this.#serve();
    this.#serving = serving;
    return serving.finally(() => (this.#serving = undefined));
  }

  /**
   * Stops gracefully: takes no new tasks (drain), lets those held finish (within `graceMs`, if
   * given), then leaves (`DELETE`). Resolves once `run` has ended.
   */
  async stop(options: StopOptions = {}): Promise<void> {
    const serving = this.#serving;
    if (serving === undefined) return;
    if (options.graceMs !== undefined && !this.#stopping.signal.aborted) this.#graceMs = options.graceMs;
    this.#stopping.abort();
    await serving.catch(() => undefined);
  }

  async #serve(): Promise<void> {
    const onSignal = () => void this.stop();
    if (this.#handleSignals) {
      process.once("SIGTERM", onSignal);
      process.once("SIGINT", onSignal);
    }
    try {
      const first = await this.#register();
      if (first !== undefined) {
        const loops = [this.#events(), this.#heartbeats()];
        await aborted(this.#stopping.signal);
        if (this.#failure === undefined) await this.#leave();
        this.#closed.abort();
        for (const assignment of this.#assignments.values()) assignment.revoke("the worker stopped");
        await Promise.allSettled(loops);
      }
      if (this.#failure !== undefined) throw this.#failure.error;
    } finally {
      this.#closed.abort();
      this.#registration = undefined;
      this.#lastEventId = undefined;
      if (this.#handleSignals) {
        process.off("SIGTERM", onSignal);
        process.off("SIGINT", onSignal);
      }
    }
  }

  /** Drains, waits for the tasks held (up to the grace), hands back the rest, and leaves. */
  async #leave(): Promise<void> {
    const drained = this.#registration;
    if (drained !== undefined) {
      await this.#call("drain", { method: "POST", path: `${workerPath(drained.worker)}/drain` });
    }
    const finished = this.#finished();
    if (this.#graceMs === Infinity) await finished;
    else {
      const grace = new AbortController();
      await Promise.race([finished, sleep(this.#graceMs, grace.signal).catch(() => undefined)]);
      grace.abort();
    }
    for (const assignment of this.#assignments.values()) assignment.revoke("the worker is stopping: the task is handed back");
    this.#dropGoneWaiting();
    // Whatever registration holds the tasks now (a drain may have met a re-registration).
    const leaving = this.#registration;
    if (leaving !== undefined) await this.#call("leave", { method: "DELETE", path: workerPath(leaving.worker) });
  }

  /** A request whose failure only deserves a note: the drain and the leave, bounded in time. */
  async #call(what: string, request: { method: "POST" | "DELETE"; path: string }): Promise<void> {
    const bounded = linked([this.#closed.signal], 10_000);
    try {
      await this.#http.send({ ...request, signal: bounded.signal });
    } catch (error) {
      if (!(error instanceof LongrunError && error.code === "unknown_worker")) this.#note(`could not ${what}: ${message(error)}`);
    } finally {
      bounded.dispose();
    }
  }

  /** Resolves once every assignment still this worker's has ended. */
  #finished(): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        if (this.held > 0) return;
        this.#onSettle = undefined;
        resolve();
      };
      this.#onSettle = check;
      check();
    });
  }

  /** Registers, again after a network failure (with backoff); undefined when stopped first. */
  async #register(): Promise<Registration | undefined> {
    const kinds = [...this.#kinds].map(([name, kind]) => (kind.inputSchema === undefined ? { name } : { name, input_schema: kind.inputSchema }));
    const body: Register = { name: this.#name, capacity: this.#capacity, kinds };
    for (let failures = 0; ; ) {
      if (this.#stopping.signal.aborted) return undefined;
      try {
        const registered = await this.#http.json<Registered>({ method: "POST", path: "/v1/workers", body, signal: this.#stopping.signal });
        this.#recovered();
        const registration = {
          worker: registered.worker,
          heartbeatMs: registered.heartbeat_ms,
          expiryMs: registered.expiry_ms,
          ended: new AbortController(),
        };
        this.#registration = registration;
        return registration;
      } catch (error) {
        if (this.#stopping.signal.aborted) return undefined;
        if (!resumable(error)) {
          this.#fail(error);
          return undefined;
        }
        failures += 1;
        this.#trouble(`could not register: ${message(error)}`);
        await sleep(backoff(failures, this.#initialDelayMs, this.#maxDelayMs), this.#stopping.signal).catch(() => undefined);
      }
    }
  }

  /**
   * The server forgot registration `worker` (404 `unknown_worker`): its assignments are gone, so
   * they are fenced, and the worker registers again, unless it is stopping. Any number of callers
   * share one re-registration.
   */
  #reregister(worker: string): Promise<Registration | undefined> {
    if (this.#registering !== undefined) return this.#registering;
    const current = this.#registration;
    if (current === undefined || current.worker !== worker) return Promise.resolve(current);
    this.#note(`the server forgot worker ${worker} (it expired, or the server restarted): registering again`);
    current.ended.abort();
    this.#registration = undefined;
    this.#lastEventId = undefined;
    for (const assignment of this.#assignments.values()) {
      if (assignment.worker === worker) assignment.revoke("the server forgot this worker (it expired, or the server restarted)");
    }
    this.#dropGoneWaiting();
    const registering = this.#register().finally(() => (this.#registering = undefined));
    this.#registering = registering;
    return registering;
  }

  /** The registration in force, once there is one; undefined when the worker stops first. */
  async #current(): Promise<Registration | undefined> {
    return this.#registration ?? (await this.#registering);
  }

  /** The event stream, for as long as the worker runs: reconnected with backoff, resumed after the last event. */
  async #events(): Promise<void> {
    for (let failures = 0; !this.#closed.signal.aborted; ) {
      const registration = await this.#current();
      if (registration === undefined) return;
      const connection = linked([this.#closed.signal, registration.ended.signal]);
      try {
        const path = `${workerPath(registration.worker)}/events`;
        const opened = () => {
          failures = 0;
          this.#recovered();
        };
        for await (const event of connect(this.#http, path, this.#lastEventId, connection.signal, opened)) this.#event(registration, event);
        throw new LongrunError("network_error", "the event stream ended", 0);
      } catch (error) {
        if (this.#closed.signal.aborted) return;
        if (registration.ended.signal.aborted) continue;
        if (error instanceof LongrunError && error.code === "unknown_worker") {
          await this.#reregister(registration.worker);
          continue;
        }
        if (!resumable(error)) {
          this.#fail(error);
          return;
        }
        failures += 1;
        this.#trouble(`the event stream broke: ${message(error)}`);
        await sleep(backoff(failures, this.#initialDelayMs, this.#maxDelayMs), connection.signal).catch(() => undefined);
      } finally {
        connection.dispose();
      }
    }
  }

  /** One event of the stream: an assignment, or a message for one. */
  #event(registration: Registration, sse: SseMessage): void {
    if (sse.id !== undefined) {
      // A resumed stream starts after the id sent; an older one was handled already.
      if (this.#lastEventId !== undefined && !newer(sse.id, this.#lastEventId)) return;
      this.#lastEventId = sse.id;
    }
    let event;
    try {
      event = parseEvent(sse.data);
    } catch (error) {
      this.#note(`ignoring an event: ${message(error)}`);
      return;
    }
    const assignment = this.#assignments.get(event.assignment);
    switch (event.message.type) {
      case "start":
        this.#assign(registration, event.assignment, event.message);
        break;
      case "revoke":
        assignment?.revoke(`the server revoked the task: ${event.message.reason}`);
        this.#dropGoneWaiting();
        break;
      default:
        assignment?.receive(event.message);
        break;
    }
  }

  /** A new assignment: run it now, or once there is room. */
  #assign(registration: Registration, id: string, start: Start): void {
    if (this.#assignments.has(id)) return;
    this.#arrivals += 1;
    const assignment = new Assignment(id, registration.worker, start, this.#arrivals, this.#owner);
    this.#assignments.set(id, assignment);
    if (this.#running < this.#capacity) this.#run(assignment);
    else this.#waiting.push(assignment);
  }

  /** Runs an assignment's handler to its outcome, then gives its room to the next one waiting. */
  #run(assignment: Assignment): void {
    this.#running += 1;
    const kind = assignment.attempt.context.kind;
    const handler: Handler =
      this.#kinds.get(kind)?.handler ??
      (() => {
        throw new HandlerError("unknown_kind", `this worker does not serve the kind \`${kind}\``);
      });
    assignment.attempt
      .run(handler, this.#log)
      .catch((error: unknown) => {
        if (!(error instanceof Revoked)) this.#note(`the outcome of ${assignment.id} was not reported: ${message(error)}`);
      })
      .finally(() => {
        this.#running -= 1;
        if (this.#assignments.get(assignment.id) === assignment) this.#assignments.delete(assignment.id);
        for (let next = this.#waiting.shift(); next !== undefined; next = this.#waiting.shift()) {
          if (next.gone) {
            this.#assignments.delete(next.id);
            continue;
          }
          this.#run(next);
          break;
        }
        this.#settled();
      });
  }

  /** The heartbeat, every `heartbeat_ms` for as long as the worker runs. */
  async #heartbeats(): Promise<void> {
    while (!this.#closed.signal.aborted) {
      const registration = await this.#current();
      if (registration === undefined) return;
      // One signal per registration, not per beat: a beat adds nothing that outlives it.
      const beating = linked([this.#closed.signal, registration.ended.signal]);
      try {
        while (!beating.signal.aborted) {
          try {
            await sleep(registration.heartbeatMs, beating.signal);
          } catch {
            break;
          }
          if (!(await this.#beat(registration, beating.signal))) return;
        }
      } finally {
        beating.dispose();
      }
    }
  }

  /** Sends one heartbeat and drops the tasks it does not list; false when the worker must fail. */
  async #beat(registration: Registration, signal: AbortSignal): Promise<boolean> {
    const sentAfter = this.#arrivals;
    // A beat unanswered for `expiry_ms` is useless: the server has counted the worker lost by then.
    const bounded = linked([signal], registration.expiryMs);
    try {
      const beat = await this.#http.json<Heartbeat>({ method: "POST", path: `${workerPath(registration.worker)}/heartbeat`, signal: bounded.signal });
      this.#recovered();
      const held = new Set(beat.assignments);
      for (const assignment of this.#assignments.values()) {
        // One that arrived after the heartbeat left may be missing from its answer, and is still ours.
        if (assignment.worker === registration.worker && assignment.since <= sentAfter && !held.has(assignment.id)) {
          assignment.revoke("the server no longer counts the task as this worker's");
        }
      }
      this.#dropGoneWaiting();
      return true;
    } catch (error) {
      if (signal.aborted) return true;
      if (error instanceof LongrunError && error.code === "unknown_worker") {
        await this.#reregister(registration.worker);
        return true;
      }
      if (!resumable(error) && !(error instanceof DOMException && error.name === "TimeoutError")) {
        this.#fail(error);
        return false;
      }
      this.#trouble(`a heartbeat failed: ${message(error)}`);
      return true;
    } finally {
      bounded.dispose();
    }
  }

  /** Forgets the assignments revoked while they waited for room. */
  #dropGoneWaiting(): void {
    for (const assignment of this.#waiting) if (assignment.gone) this.#assignments.delete(assignment.id);
    this.#waiting = this.#waiting.filter((assignment) => !assignment.gone);
    this.#settled();
  }

  /** Ends the worker with `error` (the server refused it): every task is fenced, `run` rejects. */
  #fail(error: unknown): void {
    if (this.#failure !== undefined) return;
    this.#failure = { error };
    for (const assignment of this.#assignments.values()) assignment.revoke(`the worker failed: ${message(error)}`);
    this.#stopping.abort();
  }

  #settled(): void {
    this.#onSettle?.();
  }

  #trouble(text: string): void {
    if (this.#troubled) return;
    this.#troubled = true;
    this.#note(`${text} (retrying with backoff)`);
  }

  #recovered(): void {
    if (this.#troubled) this.#note("connected again");
    this.#troubled = false;
  }

  #note(text: string): void {
    this.#log.write(`@longrun/sdk worker ${this.#name}: ${text}\n`);
  }
}

function workerPath(worker: string): string {
  return `/v1/workers/${encodeURIComponent(worker)}`;
}

/** Whether event id `id` comes after `last`: compared as numbers when both are, else taken as new. */
function newer(id: string, last: string): boolean {
  const a = Number(id);
  const b = Number(last);
  return Number.isFinite(a) && Number.isFinite(b) && id !== "" && last !== "" ? a > b : id !== last;
}

/** Resolves when `signal` aborts. */
function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
}
