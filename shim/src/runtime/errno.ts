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

/**
 * Linux errno values, as the addon's file calls (native.ts: mkdirErrno and the like) return them
 * (the os module's constants would be a fifth of a millisecond of loading on the hot path).
 */
export const Errno = { ENOENT: 2, EAGAIN: 11, EBUSY: 16, EEXIST: 17, ENODEV: 19, EINVAL: 22, EPIPE: 32, ENOSYS: 38, ENOTEMPTY: 39, EOPNOTSUPP: 95 } as const;

/**
 * The error Node's fs would have thrown for an errno the addon returned ("ENOENT: no such file or
 * directory, open '/x'", with code, errno, syscall and path): made only when it is one to report.
 */
export function errnoError(errno: number, syscall: string, file?: string): NodeJS.ErrnoException {
  const [code, text] = getSystemErrorMap().get(-errno) ?? [`E${errno}`, `unknown error ${errno}`];
  const where = file === undefined ? '' : ` '${file}'`;
  return Object.assign(new Error(`${code}: ${text}, ${syscall}${where}`), { code, errno: -errno, syscall, ...(file === undefined ? {} : { path: file }) });
}
