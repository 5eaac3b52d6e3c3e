/** Stable error codes; map to runc's message strings and ttrpc codes only at the edges. */
export type ErrorCode =
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'INVALID_STATE'
  | 'INVALID_CONFIG'
  | 'INVALID_ARGUMENT'
  | 'SETUP_FAILED'
  | 'HOOK_FAILED'
  | 'CGROUP'
  | 'UNSUPPORTED'
  | 'INTERNAL';

/** The one error family of shoal. `message` is what the CLI prints after "shoal: ". */
export class ShoalError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** Machine-readable parts (not named `details`: test runners print that field as text). */
    readonly info: { errno?: string; stage?: string; path?: string } = {},
  ) {
    super(message);
    this.name = 'ShoalError';
  }
}

/** Wrap a Node system error (ENOENT...) into a ShoalError naming what we were doing. */
export function sysError(code: ErrorCode, what: string, err: unknown): ShoalError {
  const e = err as NodeJS.ErrnoException;
  return new ShoalError(code, `${what}: ${e && e.code ? e.code : String(err)}`, { errno: e?.code });
}
