//! Waiting: a timer that an `AbortSignal` cuts short, and the exponential backoff every reconnection uses.

/** Waits `ms`, or rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Exponential backoff: how long to wait before the attempt after `failures` failures in a row. */
export function backoff(failures: number, initialDelayMs: number, maxDelayMs: number): number {
  return Math.min(maxDelayMs, initialDelayMs * 2 ** Math.max(0, failures - 1));
}

/**
 * A signal that aborts when any of `parents` does, or after `ms` if given (with a
 * `TimeoutError`). Call `dispose` once done with it: nothing then stays attached to the
 * long-lived parents, however many requests they have bounded. (`AbortSignal.any` would do the
 * first half, but only from Node 20.3, and it keeps its followers until they are collected.)
 */
export function linked(parents: readonly AbortSignal[], ms?: number): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const listeners = parents.map((parent) => {
    const onAbort = () => controller.abort(parent.reason);
    if (parent.aborted) onAbort();
    else parent.addEventListener("abort", onAbort, { once: true });
    return { parent, onAbort };
  });
  const timer = ms === undefined ? undefined : setTimeout(() => controller.abort(new DOMException(`no answer within ${ms} ms`, "TimeoutError")), ms);
  return {
    signal: controller.signal,
    dispose() {
      clearTimeout(timer);
      for (const { parent, onAbort } of listeners) parent.removeEventListener("abort", onAbort);
    },
  };
}
