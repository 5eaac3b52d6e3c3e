/**
 * A cross-process lock for the layer store: a lock file created with O_EXCL holding the owner's
 * pid. A lock whose owner is dead (crashed writer) is broken. Synchronous on purpose: store
 * operations are short and run from CLI commands and from `create`.
 */
import * as fs from 'fs';
import { ShoalError } from '../runtime/errors';

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** Block the thread for `ms` milliseconds (no event loop needed). */
export function sleepSync(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}

function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Run `fn` holding the lock file `file`. Waits up to `timeoutMs` for another live holder, breaks
 * the lock of a dead one, and always releases (also when `fn` throws).
 */
export function withLock<T>(file: string, fn: () => T, timeoutMs = 30_000): T {
  const deadline = Date.now() + timeoutMs;
  let delay = 2;
  for (;;) {
    try {
      const fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
      fs.writeSync(fd, String(process.pid));
      fs.closeSync(fd);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let owner = NaN;
    try {
      owner = Number(fs.readFileSync(file, 'utf8'));
    } catch {
      continue; // released meanwhile
    }
    // An empty file is a holder between open and write: give it time before judging it dead.
    if ((owner && !alive(owner)) || (!owner && staleEmpty(file))) {
      // Break it by renaming our view away, so two breakers cannot both remove a fresh lock.
      const stale = `${file}.stale.${process.pid}`;
      try {
        fs.renameSync(file, stale);
        const again = Number(fs.readFileSync(stale, 'utf8'));
        if (again === owner || !again) fs.unlinkSync(stale);
        else fs.renameSync(stale, file); // someone else's fresh lock: put it back
      } catch {
        /* raced with another breaker: retry */
      }
      continue;
    }
    if (Date.now() > deadline) throw new ShoalError('INTERNAL', `layer store lock ${file} is held by pid ${owner || '?'}`);
    sleepSync(delay);
    delay = Math.min(delay * 2, 50);
  }
  try {
    return fn();
  } finally {
    try {
      fs.unlinkSync(file);
    } catch {
      /* already broken by someone who thought we died */
    }
  }
}

function staleEmpty(file: string): boolean {
  try {
    return Date.now() - fs.statSync(file).mtimeMs > 5000;
  } catch {
    return false;
  }
}
