/*
 * Small synchronous helpers for cgroupfs: single-syscall writes, reads, mkdir -p that reports
 * what it created, and a depth-first rmdir that retries EBUSY. Every failure becomes a
 * ShoalError('CGROUP', '<file>: <op> <value>: <ERRNO> (<reason>)') naming the file and errno.
 */
import * as fs from 'fs';
import * as path from 'path';
import { ShoalError } from '../errors';
import { native } from '../../native';
import { Errno, errnoError } from '../errno';

/** The errno code of a Node system error ("EINVAL"), or undefined for other errors. */
export function errnoOf(err: unknown): string | undefined {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** "EINVAL (invalid argument)" from a Node system error, "ERR (message)" otherwise. */
export function describeErrno(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const code = errnoOf(err);
  if (!code) return String((e && e.message) || err);
  // Node formats system errors as "EINVAL: invalid argument, write" / "ENOENT: ..., open '/x'".
  const m = /^[A-Z0-9_]+: ([^,]+)/.exec(e.message || '');
  return m ? `${code} (${m[1]})` : code;
}

/**
 * A ShoalError('CGROUP') for `op` on `file`: files are shown by base name ("memory.max: write
 * 1: EINVAL (invalid argument)"), directories (`fullPath`) by absolute path; details.path is full.
 */
export function cgroupError(file: string, op: string, err: unknown, fullPath = false): ShoalError {
  const name = fullPath ? file : path.basename(file);
  const what = op ? `${name}: ${op}` : name;
  return new ShoalError('CGROUP', `${what}: ${describeErrno(err)}`, { errno: errnoOf(err), path: file });
}

/**
 * Write `value` to a cgroup file with exactly one write(2) on an O_WRONLY descriptor (cgroupfs
 * files must not be created or truncated). Throws ShoalError('CGROUP') naming the file and value.
 */
export function writeCgroupFile(file: string, value: string): void {
  writeCgroupValues(file, [value]);
}

/**
 * Write each value to a cgroup file with its own write(2), all on one O_WRONLY descriptor (each
 * write is one value to cgroupfs: a devices.allow rule, a tasks pid). Throws
 * ShoalError('CGROUP') naming the file and the value that failed; the earlier ones were applied.
 */
export function writeCgroupValues(file: string, values: readonly string[]): void {
  // (the addon's writes: see native.ts)
  const r = native().writeValues(file, values);
  if (r === 0) return;
  const [index, errno] = r;
  throw cgroupError(file, `write ${values[Math.max(index, 0)]}`, errnoError(errno, index < 0 ? 'open' : 'write', file));
}

/** Read a cgroup file as text (trailing newline removed); throws ShoalError('CGROUP'). */
export function readCgroupFile(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8').replace(/\n$/, '');
  } catch (err) {
    throw cgroupError(file, 'read', err);
  }
}

/** Read a cgroup file, or undefined when it (or its cgroup) does not exist. */
export function readIfExists(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8').replace(/\n$/, '');
  } catch (err) {
    if (errnoOf(err) === 'ENOENT' || errnoOf(err) === 'ENODEV') return undefined;
    throw cgroupError(file, 'read', err);
  }
}

/** Parse a cgroup.procs / tasks listing into pids. */
export function parsePids(text: string | undefined): number[] {
  if (!text) return [];
  const out: number[] = [];
  for (const line of text.split('\n')) {
    const n = Number(line);
    if (line !== '' && Number.isInteger(n) && n > 0) out.push(n);
  }
  return out;
}

/**
 * mkdir -p that returns the directories it created, outermost first (so a failed create can
 * remove exactly those). `existedLeaf` tells whether `dir` itself was already there.
 * Optimistic: one mkdir(2) when the parent exists. Retries a few times on ENOENT, which a
 * concurrent cleanup of a shared parent (e.g. the legacy /shoal) can cause.
 */
export function mkdirp(dir: string): { created: string[]; existedLeaf: boolean } {
  for (let attempt = 0; ; attempt++) {
    const created: string[] = [];
    try {
      const existed = mkdirInner(dir, created);
      return { created, existedLeaf: existed };
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT' || attempt >= 3) {
        throw cgroupError((err as NodeJS.ErrnoException).path ?? dir, 'mkdir', err, true);
      }
    }
  }
}

/** Returns true when `dir` already existed; pushes newly made dirs onto `created`. */
function mkdirInner(dir: string, created: string[]): boolean {
  let e = native().mkdirErrno(dir, 0o755);
  if (e === Errno.ENOENT) {
    const parent = path.dirname(dir);
    if (parent === dir) throw errnoError(Errno.ENOENT, 'mkdir', dir);
    mkdirInner(parent, created);
    e = native().mkdirErrno(dir, 0o755);
  }
  if (e === 0) created.push(dir);
  else if (e !== Errno.EEXIST) throw errnoError(e, 'mkdir', dir);
  return e === Errno.EEXIST;
}

/** Promise that resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Child cgroup directories of `dir` (absolute), or [] when `dir` is gone. */
export function childDirs(dir: string): string[] {
  try {
    return fs
      .readdirSync(dir, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => path.join(dir, d.name));
  } catch (err) {
    if (errnoOf(err) === 'ENOENT' || errnoOf(err) === 'ENOTDIR') return [];
    throw cgroupError(dir, 'readdir', err, true);
  }
}

/**
 * Remove a cgroup directory and all nested child cgroups, deepest first. A missing directory is
 * fine. EBUSY (tasks still exiting) is retried until `deadline` (Date.now() based).
 */
export async function removeCgroupTree(dir: string, deadline: number): Promise<void> {
  for (let delay = 1; ; delay = Math.min(delay * 2, 50)) {
    // rmdir first: a cgroup directory lists dozens of control files, and a container rarely
    // made child cgroups, so listing it up front would be wasted on almost every delete.
    const e = native().rmdirErrno(dir);
    if (e === 0 || e === Errno.ENOENT) return;
    if (e === Errno.ENOTEMPTY || e === Errno.EBUSY) {
      // Child cgroups (the container made some; cgroupfs says EBUSY) go first.
      const children = childDirs(dir);
      for (const child of children) await removeCgroupTree(child, deadline);
      if (children.length) continue;
    } else {
      throw cgroupError(dir, 'rmdir', errnoError(e, 'rmdir', dir), true);
    }
    if (Date.now() >= deadline) throw cgroupError(dir, 'rmdir', errnoError(e, 'rmdir', dir), true);
    await sleep(delay);
  }
}

/** rmdir the given directories innermost first, ignoring ENOENT/EBUSY/ENOTEMPTY (best effort). */
export function rmdirQuiet(dirs: string[]): void {
  // (a shared parent in use by someone else, or one already gone, stays as it is)
  for (let i = dirs.length - 1; i >= 0; i--) native().rmdirErrno(dirs[i]);
}
