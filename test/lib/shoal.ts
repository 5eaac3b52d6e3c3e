/*
 * Helpers for integration tests that drive the shoal CLI as a separate process, the way containerd
 * and docker do. Every test creates its own state root and container ids so tests never share
 * state, and registers cleanups that run even when an assertion fails.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { repoRoot } from '../../shim/src/native';

/** Absolute path of the compiled CLI entry point (build/shim/src/cli/main.js). */
export function shoalBin(): string {
  return path.join(repoRoot(), 'build', 'shim', 'src', 'cli', 'main.js');
}

/** Options of `runShoal`. */
export interface RunOptions {
  /** State root passed as `--root` before the subcommand. */
  root?: string;
  /** Bytes written to the process's stdin. */
  input?: string | Buffer;
  /** Working directory (default: the current one). */
  cwd?: string;
  /** Extra environment variables on top of process.env. */
  env?: NodeJS.ProcessEnv;
  /** Kill the CLI after this many milliseconds (default 60 s). */
  timeoutMs?: number;
}

/** Outcome of one CLI invocation. */
export interface RunResult {
  /** Exit code; -1 if it was killed by a signal or could not be spawned. */
  code: number;
  /** The signal that killed it, if any (e.g. after the timeout). */
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `shoal [--root root] ...args` synchronously with the current node binary. Never throws for a
 * failing command: tests assert on `code` and `stderr`.
 */
export function runShoal(args: string[], opts: RunOptions = {}): RunResult {
  const argv = [shoalBin(), ...(opts.root ? ['--root', opts.root] : []), ...args];
  const r = spawnSync(process.execPath, argv, {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    input: opts.input,
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 60_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  return {
    code: r.error || r.status === null ? -1 : r.status,
    signal: r.signal,
    stdout: r.stdout ?? '',
    stderr: (r.stderr ?? '') + (r.error ? `\n[runShoal] ${r.error.message}` : ''),
  };
}

/** Creates a fresh, empty state directory for `--root` (under the system temp dir). */
export function tmpRoot(prefix = 'shoal-test-root-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

let idCounter = 0;

/**
 * A container id unique across concurrent test processes and runs: prefix, pid, a counter and
 * random bytes, using only characters every runtime accepts ([A-Za-z0-9_.-]).
 */
export function uniqueId(prefix = 't'): string {
  idCounter += 1;
  return `${prefix}-${process.pid}-${idCounter}-${Math.random().toString(36).slice(2, 8)}`;
}

/** Registers a cleanup action; actions run in reverse registration order. */
export type Defer = (cleanup: () => unknown) => void;

/**
 * Runs `fn`, then every cleanup it registered through `defer` (last first), also when `fn` throws.
 * A failing cleanup does not stop the others. The error of `fn` wins; otherwise the first cleanup
 * error is thrown, so a test that leaks (a mount, a process, a state dir) fails loudly.
 *
 *   await withCleanup(async (defer) => {
 *     const root = tmpRoot(); defer(() => removeRoot(root));
 *     ...
 *   });
 */
export async function withCleanup<T>(fn: (defer: Defer) => T | Promise<T>): Promise<T> {
  const cleanups: Array<() => unknown> = [];
  const defer: Defer = (c) => {
    cleanups.push(c);
  };
  let result: T;
  let failure: { error: unknown } | undefined;
  try {
    result = await fn(defer);
  } catch (error) {
    failure = { error };
  }
  let cleanupError: { error: unknown } | undefined;
  for (const c of cleanups.reverse()) {
    try {
      await c();
    } catch (error) {
      if (failure) console.error('[withCleanup] cleanup failed after a test failure:', error);
      cleanupError ??= { error };
    }
  }
  if (failure) throw failure.error;
  if (cleanupError) throw cleanupError.error;
  return result!;
}

/**
 * Force-deletes container `id` in `root` (kills it first). Ignores "does not exist", so it is safe
 * as a deferred cleanup whatever state the test reached.
 */
export function forceDelete(id: string, root: string): void {
  runShoal(['delete', '--force', id], { root, timeoutMs: 30_000 });
}

/**
 * Force-deletes every container left in `root` (found as its subdirectories), then removes the
 * root itself. The catch-all cleanup for a test's state directory.
 */
export function removeRoot(root: string): void {
  let ids: string[] = [];
  try {
    ids = fs.readdirSync(root, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch {
    return;
  }
  for (const id of ids) forceDelete(id, root);
  fs.rmSync(root, { recursive: true, force: true });
}

/** A process's state letter and parent pid (/proc/PID/stat), or null once it is gone. */
export function processStat(pid: number): { ppid: number; state: string } | null {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { state: f[0], ppid: Number(f[1]) };
  } catch {
    return null;
  }
}

/** Whether pid is a live process (a zombie counts as gone). */
export function alive(pid: number): boolean {
  const s = processStat(pid);
  return !!s && s.state !== 'Z';
}

/** Live processes of container `id`: in its cgroup, or with the id on their command line. */
export function processesOf(id: string): number[] {
  return fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n) && Number(n) !== process.pid).map(Number).filter((pid) => {
    try {
      return alive(pid) && (fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').includes(id) || fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(id));
    } catch {
      return false;
    }
  });
}

/** The cgroup directories (every hierarchy) whose name contains `id`, one a line. */
export function cgroupsOf(id: string): string {
  // (cgroup dirs of other tests vanish during the walk: keep stdout, ignore find's status)
  return (spawnSync('find', ['/sys/fs/cgroup', '-name', `*${id}*`], { encoding: 'utf8' }).stdout ?? '').trim();
}

/**
 * strace -f output with every call on one line: strace splits a call that another traced process
 * interrupts ("PID name(args <unfinished ...>", later "PID <... name resumed>rest"); the two
 * halves are joined (in the place of the first).
 */
export function joinStrace(text: string): string {
  const lines = text.split('\n');
  const open = new Map<string, number>();
  const out: (string | null)[] = [];
  for (const line of lines) {
    const pid = /^(\d+)\s/.exec(line)?.[1];
    const resumed = pid ? new RegExp(`^${pid}\\s+<\\.\\.\\. \\w+ resumed>(.*)$`).exec(line) : null;
    if (pid && resumed && open.has(pid)) {
      const i = open.get(pid)!;
      out[i] = out[i]!.replace(/ <unfinished \.\.\.>$/, '') + resumed[1];
      open.delete(pid);
      out.push(null);
      continue;
    }
    if (pid && line.endsWith(' <unfinished ...>')) open.set(pid, out.length);
    out.push(line);
  }
  return out.filter((l): l is string => l !== null).join('\n');
}
