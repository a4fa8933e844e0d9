//! `LongrunError`: every failure of a client call, with the server's code, message and HTTP status.

/** The code given to failures that did not come from the server's error body. */
export type LocalCode = "network_error" | "unexpected_response";

/**
 * A call failed. `code` is the server's stable, machine-readable code (`not_found`,
 * `unauthorized`, `invalid_input`, …, see `ErrorDetail` in docs/openapi.json), or
 * `network_error` when the server could not be reached, or `unexpected_response` when it
 * answered with something that is not the API's error shape. `status` is the HTTP status, or 0
 * when there was no response.
 *
 * An aborted call rejects with the signal's reason (an `AbortError` by default), not with this.
 */
export class LongrunError extends Error {
  override readonly name = "LongrunError";

  constructor(
    /** The server's error code, or a local one (`network_error`, `unexpected_response`). */
    readonly code: string,
    message: string,
    /** The HTTP status; 0 when no response arrived. */
    readonly status: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
