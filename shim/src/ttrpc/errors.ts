/*
 * google.rpc codes as ttrpc carries them in Response.status, and the mapping from shoal's
 * errors (ShoalError codes, or any error with a numeric `grpcCode`) to a Status. containerd
 * turns the codes back into errdefs (NotFound -> ErrNotFound, FailedPrecondition ->
 * ErrFailedPrecondition...), so the choice matters: e.g. Delete of an unknown id must be 5.
 */

/** The google.rpc.Code values (grpc/codes). */
export const Code = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

/** One of the values of {@link Code}. */
export type CodeValue = (typeof Code)[keyof typeof Code];

/** A google.rpc.Status in the plain-object form the protobuf types use. */
export interface RpcStatus {
  code: number;
  message: string;
  details?: { type_url: string; value: Uint8Array }[];
}

/** ShoalError code strings (shim/src/runtime/errors.ts) -> google.rpc code. Others -> UNKNOWN. */
const SHOAL_CODES: Record<string, number> = {
  NOT_FOUND: Code.NOT_FOUND,
  ALREADY_EXISTS: Code.ALREADY_EXISTS,
  INVALID_STATE: Code.FAILED_PRECONDITION,
  INVALID_ARGUMENT: Code.INVALID_ARGUMENT,
  INVALID_CONFIG: Code.INVALID_ARGUMENT,
  UNSUPPORTED: Code.UNIMPLEMENTED,
};

const NAMES: Record<number, string> = Object.fromEntries(Object.entries(Code).map(([k, v]) => [v, k]));

/** The upper-case name of a code ("NOT_FOUND"), or "CODE_<n>" for an unknown number. */
export function codeName(code: number): string {
  return NAMES[code] ?? `CODE_${code}`;
}

/**
 * An error with a google.rpc code: thrown by TtrpcClient.call for a non-OK Status, and usable
 * by handlers to choose the Status code explicitly (`throw new TtrpcError(Code.NOT_FOUND, ...)`).
 */
export class TtrpcError extends Error {
  /** The same value as `code`, under the name errorToStatus() looks for first. */
  readonly grpcCode: number;

  constructor(
    readonly code: number,
    message: string,
    readonly statusDetails: RpcStatus['details'] = [],
  ) {
    super(message);
    this.name = 'TtrpcError';
    this.grpcCode = code;
  }
}

/** Whether a code number is a valid google.rpc code (0..16). */
function isCode(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 16;
}

/**
 * The google.rpc code for an error thrown by a handler: a numeric `grpcCode`, else a numeric
 * `code` (TtrpcError), else a ShoalError code string (NOT_FOUND 5, ALREADY_EXISTS 6,
 * INVALID_STATE 9, INVALID_ARGUMENT/INVALID_CONFIG 3, UNSUPPORTED 12), else UNKNOWN (2).
 */
export function errorCode(err: unknown): number {
  const e = err as { grpcCode?: unknown; code?: unknown } | null | undefined;
  if (e && typeof e === 'object') {
    if (isCode(e.grpcCode)) return e.grpcCode;
    if (isCode(e.code)) return e.code;
    if (typeof e.code === 'string' && e.code in SHOAL_CODES) return SHOAL_CODES[e.code];
  }
  return Code.UNKNOWN;
}

/** The message a Status carries for an error: its `message`, or its string form. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (err && typeof err === 'object' && typeof (err as { message?: unknown }).message === 'string') {
    return (err as { message: string }).message;
  }
  return String(err);
}

/** A handler error as a google.rpc.Status (never OK: an error with code 0 becomes UNKNOWN). */
export function errorToStatus(err: unknown): RpcStatus {
  const code = errorCode(err);
  return { code: code === Code.OK ? Code.UNKNOWN : code, message: errorMessage(err) };
}

/** A received non-OK Status as a TtrpcError whose message names the code when empty. */
export function statusToError(status: RpcStatus): TtrpcError {
  const msg = status.message || codeName(status.code).toLowerCase().replace(/_/g, ' ');
  return new TtrpcError(status.code, msg, status.details ?? []);
}
