//! A fake worker hub for the `Worker` tests that need the server to misbehave on cue: forget a worker, omit an assignment from a heartbeat, answer reports slowly, push more starts than the capacity.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";

/** One report the hub received. */
export interface Received {
  readonly worker: string;
  readonly assignment: string;
  readonly body: Record<string, unknown>;
  /** How many reports of the same assignment were in flight when it arrived, itself included. */
  readonly inFlight: number;
}

/** A running fake hub. */
export interface Hub {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** Every registration's body, in order; the n-th got id `wkr_<n>`. */
  readonly registrations: Record<string, unknown>[];
  /** Every report, in order of arrival. */
  readonly reports: Received[];
  /** The `Last-Event-ID` of each event-stream request, in order (undefined when absent). */
  readonly streams: { worker: string; lastEventId: string | undefined }[];
  /** What the hub answers a heartbeat of `worker` with as its assignments (default: all it pushed a start for). */
  held: (worker: string) => string[];
  /** How long to wait before answering a report (default 0). */
  reportDelayMs: () => number;
  /** Pushes an event to `worker` (kept, and sent to its open stream if any). */
  push(worker: string, data: { type: string; assignment: string } & Record<string, unknown>): void;
  /** Pushes a start of `kind` with `input` for assignment `assignment`. */
  start(worker: string, assignment: string, kind: string, input: unknown, steps?: Record<string, unknown>): void;
  /** Resolves once `worker` has an open stream. */
  connected(worker: string): Promise<void>;
  /** Replay every event on a new stream, ignoring `Last-Event-ID` (default false), as a careless server might. */
  replayAll: boolean;
  /** Ends the open stream of `worker`, as a network failure would. */
  drop(worker: string): void;
  /** From now on every route of `worker` answers 404 unknown_worker. */
  forget(worker: string): void;
  close(): Promise<void>;
}

/** Starts a fake hub on a free port. */
export function startHub(): Promise<Hub> {
  const registrations: Record<string, unknown>[] = [];
  const reports: Received[] = [];
  const streams: { worker: string; lastEventId: string | undefined }[] = [];
  const events = new Map<string, { id: number; text: string }[]>();
  const open = new Map<string, ServerResponse>();
  const waiting = new Map<string, (() => void)[]>();
  const forgotten = new Set<string>();
  const starts = new Map<string, string[]>();
  const inFlight = new Map<string, number>();
  let nextEvent = 0;

  const hub: Hub = {
    url: "",
    registrations,
    reports,
    streams,
    held: (worker) => starts.get(worker) ?? [],
    reportDelayMs: () => 0,
    push(worker, data) {
      nextEvent += 1;
      const text = `id: ${nextEvent}\nevent: ${data.type}\ndata: ${JSON.stringify(data)}\n\n`;
      const list = events.get(worker) ?? [];
      list.push({ id: nextEvent, text });
      events.set(worker, list);
      open.get(worker)?.write(text);
    },
    start(worker, assignment, kind, input, steps = {}) {
      starts.set(worker, [...(starts.get(worker) ?? []), assignment]);
      hub.push(worker, { type: "start", assignment, protocol: 2, task: `task_${assignment}`, kind, attempt: 1, steps, input });
    },
    connected(worker) {
      if (open.has(worker)) return Promise.resolve();
      return new Promise((resolve) => waiting.set(worker, [...(waiting.get(worker) ?? []), resolve]));
    },
    replayAll: false,
    drop(worker) {
      open.get(worker)?.destroy();
      open.delete(worker);
    },
    forget(worker) {
      forgotten.add(worker);
      open.get(worker)?.end();
    },
    close: () => Promise.resolve(),
  };

  const error = (response: ServerResponse, status: number, code: string) => {
    response.writeHead(status, { "content-type": "application/json" });
    response.end(JSON.stringify({ error: { code, message: code } }));
  };

  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const text = Buffer.concat(chunks).toString();
      const body = text === "" ? {} : (JSON.parse(text) as Record<string, unknown>);
      const parts = (request.url ?? "").split("?")[0]?.split("/").filter((part) => part !== "") ?? [];
      // parts: v1 workers [worker [events|heartbeat|drain|assignments asg reports]]
      if (request.method === "POST" && parts.length === 2) {
        registrations.push(body);
        response.writeHead(201, { "content-type": "application/json" });
        response.end(JSON.stringify({ worker: `wkr_${registrations.length}`, heartbeat_ms: 50, expiry_ms: 1000, protocol: 2 }));
        return;
      }
      const worker = parts[2] ?? "";
      if (forgotten.has(worker) || !/^wkr_\d+$/.test(worker)) return error(response, 404, "unknown_worker");
      const route = parts[3];
      if (request.method === "GET" && route === "events") {
        const header = request.headers["last-event-id"];
        const last = typeof header === "string" ? header : undefined;
        streams.push({ worker, lastEventId: last });
        response.writeHead(200, { "content-type": "text/event-stream" });
        for (const event of events.get(worker) ?? []) if (hub.replayAll || event.id > Number(last ?? 0)) response.write(event.text);
        open.get(worker)?.end();
        open.set(worker, response);
        response.on("close", () => {
          if (open.get(worker) === response) open.delete(worker);
        });
        for (const resolve of waiting.get(worker) ?? []) resolve();
        waiting.delete(worker);
        return;
      }
      if (request.method === "POST" && route === "heartbeat") {
        response.writeHead(200, { "content-type": "application/json" });
        response.end(JSON.stringify({ assignments: hub.held(worker), draining: false }));
        return;
      }
      if (request.method === "POST" && route === "assignments" && parts[5] === "reports") {
        const assignment = parts[4] ?? "";
        const flying = (inFlight.get(assignment) ?? 0) + 1;
        inFlight.set(assignment, flying);
        reports.push({ worker, assignment, body, inFlight: flying });
        setTimeout(() => {
          inFlight.set(assignment, (inFlight.get(assignment) ?? 1) - 1);
          if (body["type"] === "complete" || body["type"] === "fail" || body["type"] === "cancelled") {
            starts.set(worker, (starts.get(worker) ?? []).filter((id) => id !== assignment));
          }
          response.writeHead(204);
          response.end();
        }, hub.reportDelayMs());
        return;
      }
      if ((request.method === "POST" && route === "drain") || (request.method === "DELETE" && route === undefined)) {
        response.writeHead(204);
        response.end();
        return;
      }
      error(response, 404, "not_found");
    });
  });

  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      resolve(
        Object.assign(hub, {
          url: `http://127.0.0.1:${port}`,
          close: () =>
            new Promise<void>((done) => {
              for (const response of open.values()) response.end();
              server.closeAllConnections();
              server.close(() => done());
            }),
        }),
      );
    });
  });
}
