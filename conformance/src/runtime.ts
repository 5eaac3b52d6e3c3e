/**
 * Drives a runc-compatible runtime through its command line only.
 *
 * Every invocation gets `--root <run root>` and has its stdout/stderr written to files (never
 * pipes): `create` hands its own stdio to the container, so a pipe would stay open for the
 * container's lifetime. Completion is the process's exit, not the closing of its stdio.
 */
import * as fs from 'fs';
import * as path from 'path';
import { spawn } from 'child_process';

/** Result of one runtime invocation. */
export interface CmdResult {
  /** The argv after the runtime path (including --root). */
  args: string[];
  /** Exit status; a signal death is reported as 128+signo; -1 when it timed out. */
  code: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Options for {@link Runtime.exec}. */
export interface ExecOptions {
  /** File to receive stdout (default: a fresh file in the log dir). */
  stdoutFile?: string;
  /** File to receive stderr (default: a fresh file in the log dir). */
  stderrFile?: string;
  /** Data for stdin (default: /dev/null). */
  input?: string;
  /** Extra fds for the child, placed at 3, 4, ... (for --preserve-fds and LISTEN_FDS). */
  extraFds?: number[];
  /** Extra environment for the runtime process. */
  env?: Record<string, string>;
  /** Run through `/bin/sh -c 'LISTEN_PID=$$ exec ...'` so LISTEN_PID equals the runtime's pid. */
  listenFds?: number;
  /** Timeout in ms (default 30 s). */
  timeoutMs?: number;
}

/** The OCI state JSON (runtime.md "State"). */
export interface State {
  ociVersion: string;
  id: string;
  status: string;
  pid?: number;
  bundle: string;
  annotations?: Record<string, string>;
  [k: string]: unknown;
}

let seq = 0;

/** A runtime binary plus the per-run state root and log directory. */
export class Runtime {
  /**
   * @param bin path of the runtime executable; a `.js` file is run with the current node
   * @param root the `--root` state directory for this run (created)
   * @param logDir where stdout/stderr of every invocation are kept (created)
   */
  constructor(readonly bin: string, readonly root: string, readonly logDir: string) {
    fs.mkdirSync(root, { recursive: true });
    fs.mkdirSync(logDir, { recursive: true });
  }

  /** Runs `<runtime> --root R ...args` and waits for it to exit. Never throws for a non-zero exit. */
  exec(args: string[], opts: ExecOptions = {}): Promise<CmdResult> {
    const full = ['--root', this.root, ...args];
    const n = ++seq;
    const outFile = opts.stdoutFile ?? path.join(this.logDir, `cmd${n}.${args[0]}.out`);
    const errFile = opts.stderrFile ?? path.join(this.logDir, `cmd${n}.${args[0]}.err`);
    const out = fs.openSync(outFile, 'a');
    const err = fs.openSync(errFile, 'a');
    let inFd: number | 'ignore' = 'ignore';
    if (opts.input !== undefined) {
      const inFile = path.join(this.logDir, `cmd${n}.in`);
      fs.writeFileSync(inFile, opts.input);
      inFd = fs.openSync(inFile, 'r');
    }
    let cmd = this.bin;
    let argv = full;
    if (this.bin.endsWith('.js')) {
      cmd = process.execPath;
      argv = [this.bin, ...full];
    }
    if (opts.listenFds) {
      argv = ['-c', `LISTEN_PID=$$ LISTEN_FDS=${opts.listenFds} exec "$@"`, 'sh', cmd, ...argv];
      cmd = '/bin/sh';
    }
    const stdio: Array<number | 'ignore'> = [inFd, out, err, ...(opts.extraFds ?? [])];
    return new Promise((resolve) => {
      const child = spawn(cmd, argv, { stdio, env: { ...process.env, ...opts.env } });
      for (const fd of [out, err]) fs.closeSync(fd);
      if (typeof inFd === 'number') fs.closeSync(inFd);
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, opts.timeoutMs ?? 30000);
      const finish = (code: number) => {
        clearTimeout(timer);
        resolve({
          args: full,
          code: timedOut ? -1 : code,
          stdout: readText(outFile),
          stderr: readText(errFile),
          timedOut,
        });
      };
      child.on('error', (e) => {
        fs.appendFileSync(errFile, `spawn error: ${e.message}\n`);
        finish(127);
      });
      child.on('exit', (code, sig) => {
        finish(code ?? 128 + (sig ? signalNumber(sig) : 0));
      });
    });
  }

  /** `create --bundle B --pid-file P [--console-socket S] [--preserve-fds N] ID`. */
  create(id: string, bundle: string, o: { pidFile?: string; consoleSocket?: string; preserveFds?: number } & ExecOptions = {}): Promise<CmdResult> {
    const args = ['create', '--bundle', bundle];
    if (o.pidFile) args.push('--pid-file', o.pidFile);
    if (o.consoleSocket) args.push('--console-socket', o.consoleSocket);
    if (o.preserveFds !== undefined) args.push('--preserve-fds', String(o.preserveFds));
    args.push(id);
    return this.exec(args, o);
  }

  /** `start ID`. */
  start(id: string): Promise<CmdResult> {
    return this.exec(['start', id]);
  }

  /** `run --bundle B ID` (foreground: waits for the container and passes its exit code on). */
  run(id: string, bundle: string, o: { pidFile?: string } & ExecOptions = {}): Promise<CmdResult> {
    const args = ['run', '--bundle', bundle];
    if (o.pidFile) args.push('--pid-file', o.pidFile);
    args.push(id);
    return this.exec(args, o);
  }

  /** `state ID`, parsed; returns null when the command fails or prints no JSON. */
  async state(id: string): Promise<State | null> {
    const r = await this.exec(['state', id]);
    if (r.code !== 0) return null;
    try {
      return JSON.parse(r.stdout) as State;
    } catch {
      return null;
    }
  }

  /** `kill ID SIGNAL` (SIGNAL as given: a number or a name). */
  kill(id: string, signal: string = 'KILL'): Promise<CmdResult> {
    return this.exec(['kill', id, signal]);
  }

  /** `delete [--force] ID`. */
  delete(id: string, force = false): Promise<CmdResult> {
    return this.exec(force ? ['delete', '--force', id] : ['delete', id]);
  }

  /** Polls `state` until the status is one of `want` (or the container is gone); returns the last state. */
  async waitStatus(id: string, want: string[], timeoutMs = 15000): Promise<State | null> {
    const deadline = Date.now() + timeoutMs;
    let st: State | null = null;
    for (;;) {
      st = await this.state(id);
      if (!st || want.includes(st.status) || Date.now() > deadline) return st;
      await sleep(100);
    }
  }
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Reads a text file, or '' when it does not exist. */
export function readText(p: string): string {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch {
    return '';
  }
}

function signalNumber(sig: string): number {
  const n = (require('os').constants.signals as Record<string, number>)[sig];
  return n ?? 0;
}
