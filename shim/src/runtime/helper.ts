import { spawn, ChildProcess } from 'child_process';
import type { Socket } from 'net';
import { helperPath } from '../native';
import { ShoalError } from './errors';
import { errnoDescription } from './errno';
import type { PlanWriter } from './plan/writer';
import { trace } from './trace';

/** Turn the helper's "ERR stage\terrno\tpath\tdetail" into `mount proc on <rootfs>/proc: EPERM`. */
export function setupError(line: string): ShoalError {
  const [stage, errnum, where, detail] = line.slice(4).split('\t');
  const n = Number(errnum);
  const what = [stage, where].filter(Boolean).join(' ');
  const cause = n ? errnoDescription(n) : '';
  const msg = `${what}: ${[cause, detail].filter(Boolean).join(': ')}`;
  return new ShoalError(stage.includes('hook') || stage === 'createContainer' ? 'HOOK_FAILED' : 'SETUP_FAILED', msg, {
    errno: n ? cause.split(' ')[0] : undefined,
    stage,
    path: where,
  });
}

/** Read "LINE\n" messages from the helper (bytes, not setEncoding: that loads a StringDecoder). */
function lineReader(sock: Socket): () => Promise<string | null> {
  let buf: Buffer = Buffer.alloc(0);
  let ended = false;
  const waiters: (() => void)[] = [];
  sock.on('data', (d: Buffer) => {
    buf = buf.length ? Buffer.concat([buf, d]) : d;
    waiters.splice(0).forEach((w) => w());
  });
  const end = () => {
    ended = true;
    waiters.splice(0).forEach((w) => w());
  };
  sock.on('end', end);
  sock.on('close', end);
  sock.on('error', end);
  return async () => {
    for (;;) {
      const nl = buf.indexOf(10);
      if (nl >= 0) {
        const line = buf.subarray(0, nl).toString('utf8');
        buf = buf.subarray(nl + 1);
        return line;
      }
      if (ended) return null;
      await new Promise<void>((r) => waiters.push(r));
    }
  };
}

/** One of the process's stdio: an fd of this process, 'inherit' or 'ignore' (/dev/null). */
export type StdioEntry = number | 'inherit' | 'ignore';

/** Callbacks for the helper's messages. */
export interface HelperEvents {
  /** The init's host pid is known (it has been placed in its cgroups already). */
  onPid(pid: number): void;
  /** The init asks the runtime to run its hooks; return the state JSON to hand back. */
  onHooks?(): string | Promise<string>;
}

/** How the helper is started: fds it passes through, its cwd and the process's stdio. */
export interface HelperOptions {
  passFds: number;
  cwd: string;
  /** The process's stdin, stdout, stderr: fds, or 'inherit' (default) / 'ignore'. */
  stdio?: [StdioEntry, StdioEntry, StdioEntry];
}

/**
 * A started shoal-init waiting for its plan. Starting it before the plan is known lets its
 * fork, exec and sealed re-exec run on the other core while the runtime validates config.json and
 * creates the cgroup; it exits by itself if the plan never comes (EOF on the sync channel).
 */
export class Helper {
  readonly child: ChildProcess;
  private readonly sync: Socket;
  private readonly next: () => Promise<string | null>;
  private readonly spawnError: Promise<never>;

  private constructor(opts: HelperOptions) {
    const passFds = Array.from({ length: opts.passFds }, (_, i) => 3 + i);
    const syncIndex = 3 + passFds.length;
    this.child = spawn(helperPath(), [String(syncIndex)], {
      stdio: [...(opts.stdio ?? ['inherit', 'inherit', 'inherit']), ...passFds, 'pipe'],
      env: {},
      cwd: opts.cwd,
    });
    this.spawnError = new Promise<never>((_, reject) =>
      this.child.once('error', (e) => reject(new ShoalError('INTERNAL', `start shoal-init: ${(e as NodeJS.ErrnoException).code ?? e.message}`))),
    );
    this.spawnError.catch(() => undefined);
    this.sync = this.child.stdio[syncIndex] as Socket;
    this.next = lineReader(this.sync);
    trace('helper spawned');
  }

  /** Start the helper now; hand it its plan later with `run`. */
  static spawn(opts: HelperOptions): Helper {
    return new Helper(opts);
  }

  /**
   * Send the plan and follow the protocol until the process is ready (READY, or the sync channel
   * closing after PID for processes that start at once). Resolves with the helper process, which
   * in "run" mode exits with the process's status. Throws the helper's setup error.
   */
  async run(plan: PlanWriter, events: HelperEvents): Promise<ChildProcess> {
    this.sync.write(plan.encode());
    let pidSeen = false;
    for (;;) {
      const line = await Promise.race([this.next(), this.spawnError]);
      if (line === null) {
        // exec's process has no READY: the channel closes at execve once the pid was reported.
        if (pidSeen) break;
        throw new ShoalError('SETUP_FAILED', 'container init exited during setup');
      }
      if (line.startsWith('PID ')) {
        pidSeen = true;
        events.onPid(Number(line.slice(4)));
        trace('init cloned');
      } else if (line === 'HOOKS') {
        const json = Buffer.from(events.onHooks ? await events.onHooks() : '{}');
        const head = Buffer.alloc(5);
        head.write('C', 0);
        head.writeUInt32LE(json.length, 1);
        this.sync.write(Buffer.concat([head, json]));
      } else if (line === 'READY') {
        trace('init ready');
        break;
      } else if (line.startsWith('ERR ')) {
        throw setupError(line);
      }
    }
    this.sync.destroy();
    return this.child;
  }

  /** Abandon the helper (create failed before or during setup). */
  abort(): void {
    this.sync.destroy();
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

/** Spawn the helper and run the plan at once (exec, where nothing is worth overlapping). */
export async function runHelper(
  plan: PlanWriter,
  opts: HelperOptions & { events: HelperEvents; onSpawn?: (h: ChildProcess) => void },
): Promise<ChildProcess> {
  const h = Helper.spawn(opts);
  opts.onSpawn?.(h.child);
  return h.run(plan, opts.events);
}
