//! The JSON lines of the process-handler protocol (docs/process-protocol.md): the only module that knows their shapes.

/** The protocol versions this module speaks. */
export const PROTOCOLS: readonly number[] = [1, 2];

/** The first line on stdin. */
export interface Start {
  readonly type: "start";
  readonly protocol: number;
  readonly task: string;
  readonly kind: string;
  readonly attempt: number;
  /** Protocol 2: the steps (and fired sleeps) saved by earlier attempts, by key. */
  readonly steps?: Readonly<Record<string, unknown>>;
  readonly input: unknown;
}

/** A later line on stdin. Unknown types are ignored, as the protocol asks. */
export type Incoming =
  | { readonly type: "answer"; readonly key: string; readonly value: unknown }
  | { readonly type: "answer_timeout"; readonly key: string }
  | { readonly type: "cancel" }
  | { readonly type: "step_saved"; readonly key: string }
  | { readonly type: "unknown" };

/** A line to stdout. */
export type Outgoing =
  | { type: "progress"; percent?: number; message?: string }
  | { type: "artifact"; id: string; name?: string; parts: unknown[]; append: boolean; last_chunk: boolean }
  | { type: "ask"; key: string; request: unknown; timeout_ms?: number }
  | { type: "message"; text: string; trigger: boolean }
  | { type: "step"; key: string; value: unknown }
  | { type: "sleep"; key: string; ms: number }
  | { type: "complete"; output: unknown }
  | {
      type: "fail";
      code: string;
      message?: string;
      details?: unknown;
      retryable?: boolean;
      retry_after_ms?: number;
    }
  | { type: "cancelled"; message?: string };

/** Parses the start line; throws an `Error` saying what is wrong with it. */
export function parseStart(line: string): Start {
  const value = object(JSON.parse(line), "the start line");
  if (value["type"] !== "start") throw new Error(`the first line is not a start line: ${line.slice(0, 200)}`);
  const protocol = value["protocol"];
  if (typeof protocol !== "number") throw new Error("the start line has no protocol number");
  const steps = value["steps"];
  return {
    type: "start",
    protocol,
    task: String(value["task"]),
    kind: String(value["kind"]),
    attempt: typeof value["attempt"] === "number" ? value["attempt"] : 1,
    ...(steps === undefined || steps === null ? {} : { steps: object(steps, "steps") }),
    input: value["input"] ?? null,
  };
}

/** Parses a later stdin line; a line of an unknown type (or without its key) is `unknown`. */
export function parseIncoming(line: string): Incoming {
  const value = object(JSON.parse(line), "a stdin line");
  const key = value["key"];
  switch (value["type"]) {
    case "answer":
      return typeof key === "string" ? { type: "answer", key, value: value["value"] ?? null } : { type: "unknown" };
    case "answer_timeout":
      return typeof key === "string" ? { type: "answer_timeout", key } : { type: "unknown" };
    case "step_saved":
      return typeof key === "string" ? { type: "step_saved", key } : { type: "unknown" };
    case "cancel":
      return { type: "cancel" };
    default:
      return { type: "unknown" };
  }
}

function object(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error(`${what} is not a JSON object`);
  return value as Record<string, unknown>;
}
