import * as fs from 'fs';
import * as path from 'path';

/** What /proc/<pid>/stat says about a process that matters to the runtime. */
export interface ProcStat {
  /** One-letter state: R, S, D, Z (zombie), T, t, X ... */
  state: string;
  /** Start time in clock ticks since boot: (pid, startTime) names one process forever. */
  startTime: number;
  ppid: number;
}

/** Parse /proc/<pid>/stat, or null when the process is gone. */
export function procStat(pid: number): ProcStat | null {
  let s: string;
  try {
    s = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return null;
  }
  // comm may contain spaces and parentheses: the fields start after the last ')'.
  const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return { state: rest[0], ppid: Number(rest[1]), startTime: Number(rest[19]) };
}

/** Whether (pid, startTime) is still the same live, non-zombie process. */
export function isAlive(pid: number, startTime: number): boolean {
  if (!pid) return false;
  const st = procStat(pid);
  return !!st && st.startTime === startTime && st.state !== 'Z' && st.state !== 'X';
}

/** Signal (pid, startTime) only if it is still that process: a reused pid is never signalled. */
export function signalProcess(pid: number, startTime: number, signal: number): boolean {
  if (!isAlive(pid, startTime)) return false;
  try {
    process.kill(pid, signal);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw e;
  }
}

/**
 * Wait until (pid, startTime) is gone or a zombie, for at most timeoutMs, without blocking the
 * event loop (the shim serves other containers meanwhile). Returns whether it is.
 */
export async function waitGone(pid: number, startTime: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let delay = 1;
  while (isAlive(pid, startTime)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 20);
  }
  return true;
}

/** Write a pid file the way runc does: a temp file renamed into place, so readers never see half. */
export function writePidFile(file: string, pid: number): void {
  const abs = path.resolve(file);
  const tmp = path.join(path.dirname(abs), `.${path.basename(abs)}.${process.pid}`);
  fs.writeFileSync(tmp, String(pid));
  fs.renameSync(tmp, abs);
}
