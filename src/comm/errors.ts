/** Why a collective failed. */
export type CommFailure =
  | "failed" // a rank threw
  | "exited" // a rank's worker exited before its work was done
  | "ended" // a rank finished its work without calling the collective its peers wait in
  | "timeout" // a rank did not arrive (or finish) within its peers' timeoutMs
  | "mismatch" // ranks called different collectives, sizes, dtypes, ops or roots
  | "aborted"; // an AbortSignal fired

/**
 * The error every collective and launcher rejects with when a rank fails. `failedRank` is the
 * rank the failure started at: the rank that threw, exited, ended without calling the collective
 * or did not arrive in time (not the peer that timed out waiting for it), or whose signal aborted.
 */
export class CommError extends Error {
  override name = "CommError";

  constructor(
    message: string,
    readonly reason: CommFailure,
    readonly failedRank: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** "Error: message" for an Error, the string for anything else: how a rank's failure is named. */
export function describeError(e: unknown): string {
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  if (e !== null && typeof e === "object" && "message" in e)
    return `${(e as any).name ?? "Error"}: ${(e as any).message}`;
  return String(e);
}
