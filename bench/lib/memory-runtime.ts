/**
 * Runtimes as the memory benchmark drives them: `run -d`, `ps --format json`, `create`/`start`/
 * `delete --force`, each with its own --root, stdio to a log file (a detached container keeps its
 * stdio open; a pipe would never close). Commands run either synchronously and timed (lib/exec.ts)
 * or asynchronously, for the start storm's parallel `run -d`. Every container id started is
 * tracked so cleanup can delete it, also after a failure or Ctrl-C.
 */
import * as fs from 'fs';
import * as path from 'path';
import { spawn } from 'child_process';
import { capture, timeCommand, Timed } from './exec';

export interface AsyncResult {
  ms: number;
  status: number | null;
  signal: string | null;
  log: string;
}

/** Runs argv asynchronously, stdout+stderr to `logPath`; resolves when the process exits. */
export function runAsync(argv: string[], logPath: string, env: NodeJS.ProcessEnv, timeoutMs = 120_000): Promise<AsyncResult> {
  return new Promise((resolve) => {
    const fd = fs.openSync(logPath, 'w');
    const t0 = process.hrtime.bigint();
    let child;
    try {
      child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', fd, fd], env });
    } finally {
      fs.closeSync(fd);
    }
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const done = (status: number | null, signal: string | null, err?: Error) => {
      clearTimeout(timer);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      let log = err ? `${err.message}\n` : '';
      if (status !== 0) {
        try {
          log += fs.readFileSync(logPath, 'utf8').slice(-2000);
        } catch {
          /* none */
        }
      }
      resolve({ ms, status, signal, log });
    };
    child.once('error', (e) => done(null, null, e));
    child.once('exit', (code, sig) => done(code, sig));
  });
}

/** Runs `n` tasks with at most `parallel` at a time; `stop()` true stops starting new ones. */
export async function pool<T>(n: number, parallel: number, task: (i: number) => Promise<T>, stop: () => boolean = () => false): Promise<T[]> {
  const results: T[] = new Array(n);
  let next = 0;
  const worker = async () => {
    while (next < n && !stop()) {
      const i = next++;
      results[i] = await task(i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(parallel, n)) }, worker));
  return results;
}

export class Runtime {
  /** Containers that may exist. */
  readonly live = new Set<string>();
  readonly log: string;

  constructor(
    readonly key: 'shoal' | 'runc',
    /** Command prefix, without --root. */
    readonly bin: string[],
    readonly root: string,
    readonly env: NodeJS.ProcessEnv,
    readonly logDir: string,
  ) {
    fs.mkdirSync(root, { recursive: true });
    this.log = path.join(logDir, `${key}.log`);
  }

  argv(args: string[]): string[] {
    return [...this.bin, '--root', this.root, ...args];
  }

  /** A timed synchronous command (stdio to this runtime's log). */
  time(args: string[], env: NodeJS.ProcessEnv = {}): Timed {
    if (args[0] === 'create' || args[0] === 'run') this.live.add(args[args.length - 1]);
    return timeCommand(this.argv(args), this.log, { ...this.env, ...env });
  }

  /** `run -d -b BUNDLE ID`, asynchronously, with its own log file. */
  async runDetached(bundle: string, id: string, env: NodeJS.ProcessEnv = {}): Promise<AsyncResult> {
    this.live.add(id);
    return runAsync(this.argv(['run', '-d', '-b', bundle, id]), path.join(this.logDir, `${this.key}-${id}.log`), { ...this.env, ...env });
  }

  /** `delete --force ID`, asynchronously; forgets the id when it succeeded. */
  async deleteAsync(id: string): Promise<AsyncResult> {
    const r = await runAsync(this.argv(['delete', '--force', id]), path.join(this.logDir, `${this.key}-${id}.del.log`), this.env);
    if (r.status === 0) this.live.delete(id);
    return r;
  }

  /** Synchronous `delete --force ID`; true on success. */
  deleteSync(id: string): boolean {
    const t = timeCommand(this.argv(['delete', '--force', id]), this.log, this.env);
    if (t.status === 0) this.live.delete(id);
    return t.status === 0;
  }

  /** The pids of a container (`ps --format json`), else its init pid from `state`, else []. */
  pids(id: string): number[] {
    const r = capture(this.argv(['ps', '--format', 'json', id]), this.env);
    if (r.ok) {
      try {
        const v = JSON.parse(r.out);
        if (Array.isArray(v) && v.length) return v.map(Number);
      } catch {
        /* fall through */
      }
    }
    const s = capture(this.argv(['state', id]), this.env);
    try {
      const pid = JSON.parse(s.out).pid;
      return pid > 0 ? [pid] : [];
    } catch {
      return [];
    }
  }

  /** Ids `list -q` reports in this runtime's root. */
  listed(): string[] {
    const r = capture(this.argv(['list', '-q']), this.env);
    return r.ok ? r.out.split('\n').map((s) => s.trim()).filter(Boolean) : [];
  }

  /** Deletes every tracked or listed container; returns the ids that could not be deleted. */
  cleanup(): string[] {
    const ids = new Set([...this.live, ...this.listed()]);
    for (const id of ids) this.deleteSync(id);
    // A tracked id whose `run` failed early never existed: only what is still listed failed.
    return this.listed();
  }
}

export { Timed };
