import { getSystemErrorMap } from 'util';

let names: Map<number, string> | null = null;

/** errno number -> symbolic name ("EPERM"), falling back to "errno N". */
export function errnoName(n: number): string {
  if (!names) {
    names = new Map();
    // The os module is loaded here, on the first error: it is a quarter of a millisecond of every
    // start otherwise.
    const { constants } = require('os') as typeof import('os');
    for (const [k, v] of Object.entries(constants.errno)) if (!names.has(v)) names.set(v, k);
  }
  return names.get(n) ?? `errno ${n}`;
}

/**
 * "ENOENT (no such file or directory)": the name for people, the system's wording for callers
 * that match on it (docker and podman pick exit code 127 or 126 by searching the runtime's error
 * for "no such file or directory" and "permission denied", as runc prints them).
 */
export function errnoDescription(n: number): string {
  const text = getSystemErrorMap().get(-n)?.[1];
  return text ? `${errnoName(n)} (${text})` : errnoName(n);
}
