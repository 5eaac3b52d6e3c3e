/**
 * A timing worker for runtimes that must run in their own mount namespace (crun 1.8 refuses this
 * host's hybrid cgroup layout while /sys/fs/cgroup/unified is mounted). The parent starts it once,
 * through `unshare --mount --propagation private sh -c 'umount /sys/fs/cgroup/unified; exec node
 * nsworker.js'`, and sends it one command at a time; the worker times each with the same
 * `timeCommand` the parent uses, so the unshare and umount cost is paid once and never measured,
 * and the runtimes can still be interleaved per iteration.
 *
 * Protocol: JSON lines. Request {seq, argv, log, env?}; reply {seq, ns, status, signal, log}.
 * The first line the worker writes is {ready: true}.
 */
import { ChildProcess, spawn } from 'child_process';
import * as readline from 'readline';
import { timeCommand, Timed } from './exec';

interface Request {
  seq: number;
  argv: string[];
  log: string;
  env?: NodeJS.ProcessEnv;
}

/** Worker side: serve requests from stdin until it closes. */
function serve(): void {
  // A terminal ^C reaches the whole process group: stay up so the parent can delete containers
  // through this namespace; the worker exits when the parent closes stdin (or dies).
  process.on('SIGINT', () => undefined);
  process.on('SIGTERM', () => undefined);
  process.stdout.write(JSON.stringify({ ready: true }) + '\n');
  const rl = readline.createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    const req = JSON.parse(line) as Request;
    let reply: Timed & { seq: number };
    try {
      reply = { seq: req.seq, ...timeCommand(req.argv, req.log, req.env) };
    } catch (e) {
      reply = { seq: req.seq, ns: 0, status: null, signal: null, log: e instanceof Error ? e.message : String(e) };
    }
    process.stdout.write(JSON.stringify(reply) + '\n');
  });
}

/** Parent side: a worker process in a private mount namespace without the cgroup2 mount. */
export class NsWorker {
  private child: ChildProcess;
  private rl: readline.Interface;
  private seq = 0;
  private pending = new Map<number, (t: Timed) => void>();
  private ready: Promise<void>;
  private stderr = '';

  constructor(unmount = '/sys/fs/cgroup/unified') {
    // Unmount only inside the new namespace; fail (rather than measure a broken setup) if it stays.
    const script = `if mountpoint -q ${unmount}; then umount ${unmount} || exit 97; fi; exec "$0" "$1"`;
    this.child = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script, process.execPath, __filename], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.child.stderr!.on('data', (d) => (this.stderr += d));
    this.child.stdin!.on('error', () => undefined); // EPIPE after the worker died: see 'exit'
    this.rl = readline.createInterface({ input: this.child.stdout! });
    this.ready = new Promise((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`namespace worker exited (${code}) before ready: ${this.stderr.trim()}`));
      this.child.once('exit', onExit);
      this.child.once('error', reject);
      this.rl.once('line', (line) => {
        this.child.off('exit', onExit);
        if (JSON.parse(line).ready) resolve();
        else reject(new Error(`namespace worker: unexpected ${line}`));
        this.rl.on('line', (l) => {
          const r = JSON.parse(l) as Timed & { seq: number };
          const cb = this.pending.get(r.seq);
          this.pending.delete(r.seq);
          cb?.(r);
        });
      });
    });
    this.child.on('exit', () => {
      for (const cb of this.pending.values()) cb({ ns: 0, status: null, signal: 'worker-exit', log: this.stderr });
      this.pending.clear();
    });
  }

  /** Resolves once the namespace is set up and the worker answers. */
  start(): Promise<void> {
    return this.ready;
  }

  /** Times argv inside the namespace. */
  time(argv: string[], log: string, env?: NodeJS.ProcessEnv): Promise<Timed> {
    const seq = ++this.seq;
    if (this.child.exitCode !== null || this.child.signalCode !== null)
      return Promise.resolve({ ns: 0, status: null, signal: 'worker-exit', log: this.stderr });
    return new Promise((resolve) => {
      this.pending.set(seq, resolve);
      this.child.stdin!.write(JSON.stringify({ seq, argv, log, env }) + '\n');
    });
  }

  /** Closes stdin; the worker exits and its namespace goes away. */
  stop(): void {
    this.child.stdin?.end();
  }

  /** Kills the worker (for signal-driven cleanup). */
  kill(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}

if (require.main === module) serve();
