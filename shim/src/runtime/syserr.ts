/**
 * Errnos as values: the addon's file system calls (native.ts: mkdirErrno and the like) return the
 * errno instead of throwing, and the caller makes the error Node's fs would have thrown only
 * when it is one to report.
 */

/** Linux errno values (os.constants.errno would load the os module into every cold start). */
export const Errno = { ENOENT: 2, EEXIST: 17, ENODEV: 19, EPIPE: 32, ENOTEMPTY: 39, EBUSY: 16 } as const;

/** The error Node's fs throws ("ENOENT: no such file or directory, open '/x'", code, errno, syscall, path). */
export function errnoError(errno: number, syscall: string, file?: string): NodeJS.ErrnoException {
  // (util loads only here: a failure)
  const [code, text] = (require('util') as typeof import('util')).getSystemErrorMap().get(-errno) ?? [`E${errno}`, `unknown error ${errno}`];
  const where = file === undefined ? '' : ` '${file}'`;
  return Object.assign(new Error(`${code}: ${text}, ${syscall}${where}`), { code, errno: -errno, syscall, ...(file === undefined ? {} : { path: file }) });
}
