/**
 * Timing one command: spawnSync from this (node) process, wall clock from just before the spawn to
 * just after the child is reaped (process.hrtime). stdout and stderr go to a log file, never to a
 * pipe: `create` leaves the container's init holding the inherited stdio, and a pipe would make
 * spawnSync wait for the container to exit. The same function runs in the parent (shoal, runc,
 * baselines) and in the crun worker inside its mount namespace, so all runtimes pay the same
 * measurement overhead.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';

export interface Timed {
  /** Wall time in nanoseconds (as a number; fine below 2^53 ns). */
  ns: number;
  /** Exit status, or null when killed by a signal or not spawned. */
  status: number | null;
  signal: string | null;
  /** Tail of the combined stdout+stderr when the command failed, else ''. */
  log: string;
}

/** Runs argv[0] with argv[1..], timed; output goes to `logPath` (truncated first). */
export function timeCommand(argv: string[], logPath: string, env?: NodeJS.ProcessEnv, timeoutMs = 60_000): Timed {
  const fd = fs.openSync(logPath, 'w');
  let t0: bigint, t1: bigint;
  let r: ReturnType<typeof spawnSync>;
  try {
    t0 = process.hrtime.bigint();
    r = spawnSync(argv[0], argv.slice(1), { stdio: ['ignore', fd, fd], env: env ?? process.env, timeout: timeoutMs });
    t1 = process.hrtime.bigint();
  } finally {
    fs.closeSync(fd);
  }
  const failed = r.status !== 0 || r.error !== undefined;
  let log = '';
  if (failed) {
    log = r.error ? `${r.error.message}\n` : '';
    try {
      log += fs.readFileSync(logPath, 'utf8').slice(-2000);
    } catch {
      /* no log */
    }
  }
  return { ns: Number(t1 - t0), status: r.status, signal: r.signal, log };
}

/** Runs a command untimed, returning trimmed stdout ('' on failure). For versions and cleanup. */
export function capture(argv: string[], env?: NodeJS.ProcessEnv): { ok: boolean; out: string; err: string } {
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', env: env ?? process.env, timeout: 60_000 });
  return { ok: r.status === 0, out: (r.stdout ?? '').trim(), err: (r.stderr ?? '').trim() || (r.error?.message ?? '') };
}
