//! What a handler throws to choose its outcome: `HandlerError` fails the task with a code, `Cancelled` cancels it, and what a context call rejects with.

/** Fails the task with this code, message and details (any other thrown error is `handler_error`). */
export class HandlerError extends Error {
  override readonly name = "HandlerError";
  /** The task error's code, stable and machine-readable. */
  readonly code: string;
  /** Anything else to attach, as JSON. */
  readonly details: unknown;
  /** Protocol 2: the failure may pass, so the runtime may run another attempt. */
  readonly retryable: boolean | undefined;
  /** Protocol 2: wait at least this long before the next attempt. */
  readonly retryAfterMs: number | undefined;

  constructor(
    code: string,
    message: string,
    options: { details?: unknown; retryable?: boolean; retryAfterMs?: number; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.code = code;
    this.details = options.details;
    this.retryable = options.retryable;
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** Ends the task `cancelled` on the handler's own account. */
export class Cancelled extends Error {
  override readonly name = "Cancelled";
}

/** Nobody answered a question within its timeout. */
export class AnswerTimeout extends Error {
  override readonly name = "AnswerTimeout";
  constructor(readonly key: string) {
    super(`nobody answered the question \`${key}\` in time`);
  }
}

/** The runtime closed stdin: no answer or step confirmation can come any more. */
export class InputClosed extends Error {
  override readonly name = "InputClosed";
}
