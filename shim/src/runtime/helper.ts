import { helperPath, native, ExitInfo, SpawnedHelper } from '../native';
import { writeFd } from './fdwrite';
import { ShoalError } from './errors';
import { Errno, errnoDescription } from './errno';
import type { PlanWriter } from './plan/writer';
import { Op } from './plan/ops';
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
  /**
   * Make a new network namespace at once, before the plan comes: the init inherits it when the
   * plan asks for one (and the helper returns to the host's when it does not).
   */
  earlyNetns?: boolean;
}

/**
 * The helper binary, found once per process, and the sealed memfd copy of it that the first
 * start makes (spawnHelper's sealFrom) and hands back for the next ones: started from that, the
 * helper is already the sealed copy CVE-2019-5736 asks for and skips its own copy and re-exec.
 * No fd while no start made one (the helper then makes its own).
 */
const exe: { path?: string; fd?: number } = {};

/** Keep a sealed copy a start made (the first one wins; a later one is closed). */
function keepCopy(fd: number): void {
  if (fd < 0) return;
  if (exe.fd === undefined) exe.fd = fd;
  else native().closeFd(fd);
}

/** A failed start of the helper, as the runtime reports it. */
function startError(e: unknown): ShoalError {
  return new ShoalError('INTERNAL', `start shoal-init: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
}

/** A started helper as its caller sees it once the process runs (run mode: it exits with it). */
export interface HelperProcess {
  readonly pid: number;
  /**
   * The process's exit status: its code, or 128 + the signal that killed it. The helper's own exit
   * status, or (a foreground run) the helper's EXIT report, which comes before the helper ends.
   */
  readonly exited: Promise<number>;
  /** The helper process itself has ended (and was reaped). */
  readonly gone: Promise<void>;
  /** Stop following the helper (a detached create): nothing keeps this process waiting for it. */
  unref(): void;
}

/**
 * A started shoal-init waiting for its plan. It is started with posix_spawn through the addon
 * (no fork of Node, no child_process or net module), and followed through a pidfd and its sync
 * socket, both polled on Node's loop. Starting it before the plan is known lets its exec and
 * sealed re-exec run on the other core while the runtime builds the plan; it exits by itself if
 * the plan never comes (EOF on the sync channel).
 */
export class Helper implements HelperProcess {
  readonly exited: Promise<number>;
  readonly gone: Promise<void>;
  private readonly report: (code: number) => void;
  private readonly reaped: () => void;
  /** A start still running on the spawner thread (spawnHelperStart), until `ready`. */
  private job: number | null = null;
  private hostPid = -1;
  private pidfd = -1;
  private sync = -1;
  private syncWatch: number | null = null;
  private exitWatch: number | null = null;
  private status: number | null = null;
  /** What the channel had past the last line taken, a char per byte (latin1). */
  private buf = '';
  private ended = false;
  /** The process waits for 'G' after READY (START_SYNC). */
  private waitsForGo = false;
  private readonly waiters: (() => void)[] = [];

  /** `background`: the start runs on the spawner thread; `ready` (called by every use) waits for it. */
  private constructor(opts: HelperOptions, background: boolean) {
    const stdio = opts.stdio ?? ['inherit', 'inherit', 'inherit'];
    const fds = [...stdio.map((e, i) => (e === 'inherit' ? i : e === 'ignore' ? -1 : e)), ...Array.from({ length: opts.passFds }, (_, i) => 3 + i)];
    let report!: (code: number) => void;
    this.exited = new Promise<number>((resolve) => (report = resolve));
    this.report = report;
    let reaped!: () => void;
    this.gone = new Promise<void>((resolve) => (reaped = resolve));
    this.reaped = reaped;
    const args = opts.earlyNetns ? [String(fds.length), 'net'] : [String(fds.length)];
    try {
      const path = (exe.path ??= helperPath());
      const sealFrom = exe.fd === undefined ? path : undefined;
      if (background) this.job = native().spawnHelperStart(path, args, fds, opts.cwd, exe.fd, sealFrom);
      else this.adopt(native().spawnHelper(path, args, fds, opts.cwd, exe.fd, sealFrom));
    } catch (e) {
      throw startError(e);
    }
    trace('helper spawned');
  }

  /** The helper's pid (waits for a start on the spawner thread). */
  get pid(): number {
    this.ready();
    return this.hostPid;
  }

  /** Wait for a start on the spawner thread: its failure is thrown here. */
  private ready(): void {
    if (this.job === null) return;
    const id = this.job;
    this.job = null;
    let r: SpawnedHelper;
    try {
      r = native().spawnHelperJoin(id);
    } catch (e) {
      throw startError(e);
    }
    this.adopt(r);
    trace('helper joined');
  }

  /**
   * The sync channel, also while the start still runs on the spawner thread (what is written
   * waits there for the helper; a write into a start that failed is an EPIPE, which writeFd
   * ignores, and the failure shows at the join).
   */
  private channel(): number {
    return this.job !== null ? native().spawnHelperChannel(this.job) : this.sync;
  }

  /** Take over a started helper: its pid, pidfd and sync channel, and follow its exit. */
  private adopt(r: SpawnedHelper): void {
    keepCopy(r.exeFd);
    this.hostPid = r.pid;
    this.pidfd = r.pidfd;
    this.sync = r.sync;
    const reap = () => {
      this.exitWatch = null;
      if (!this.tryReap()) this.exitWatch = native().watchFdReadable(this.pidfd, reap);
    };
    this.exitWatch = native().watchFdReadable(this.pidfd, reap);
  }

  /** Reap the helper if it has ended (once); whether it has. */
  private tryReap(): boolean {
    if (this.status !== null) return true;
    let info: ExitInfo | null;
    try {
      info = native().pidfdWaitExit(this.pidfd);
    } catch {
      info = { status: 255, signal: null }; // reaped elsewhere
    }
    if (!info) return false;
    this.status = info.status;
    if (this.exitWatch !== null) native().unwatchFd(this.exitWatch);
    this.exitWatch = null;
    native().closeFd(this.pidfd);
    this.report(info.status);
    this.reaped();
    return true;
  }

  /**
   * Start the helper now, on the addon's spawner thread (posix_spawn holds its caller until the
   * child's exec, and Node's thread has the state and cgroup work to do meanwhile); hand it its
   * plan later with `run`.
   */
  static spawn(opts: HelperOptions): Helper {
    return new Helper(opts, true);
  }

  /** Start the helper and wait for it (a plan ready to go: nothing to overlap). */
  static spawnNow(opts: HelperOptions): Helper {
    return new Helper(opts, false);
  }

  /** Reads what the sync socket has, then waits for more (one readiness watch at a time). */
  private pump(): void {
    if (this.sync < 0 || this.syncWatch !== null) return;
    for (;;) {
      // (the addon's read: no Buffer to allocate and join, no exception for EAGAIN)
      const r = native().readLatin1(this.sync, 4096);
      if (r === Errno.EAGAIN) break;
      if (typeof r === 'number' || r === '') {
        this.ended = true; // EOF, or ECONNRESET and the like: the helper is gone
        break;
      }
      this.buf += r;
    }
    this.waiters.splice(0).forEach((w) => w());
    if (!this.ended) {
      this.syncWatch = native().watchFdReadable(this.sync, () => {
        this.syncWatch = null;
        this.pump();
      });
    }
  }

  /** The next "LINE\n" from the helper, or null once the channel closed. */
  private async next(): Promise<string | null> {
    for (;;) {
      const nl = this.buf.indexOf('\n');
      if (nl >= 0) {
        const raw = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        // The lines are UTF-8 (an error's path may not be ASCII), read a byte per char.
        return /[^\x00-\x7f]/.test(raw) ? Buffer.from(raw, 'latin1').toString('utf8') : raw;
      }
      if (this.ended || this.sync < 0) return null;
      await new Promise<void>((r) => {
        this.waiters.push(r);
        this.pump();
      });
    }
  }

  private closeSync(): void {
    if (this.syncWatch !== null) native().unwatchFd(this.syncWatch);
    this.syncWatch = null;
    if (this.sync >= 0) native().closeFd(this.sync);
    this.sync = -1;
    this.waiters.splice(0).forEach((w) => w());
  }

  /**
   * Send the plan and follow the protocol until the process is ready (READY, or the sync channel
   * closing after PID for processes that start at once). Resolves with the helper, which in "run"
   * mode exits with the process's status. Throws the helper's setup error. `foreground` (plans
   * with REPORT_EXIT) keeps the channel open for the helper's exit report (see release).
   */
  async run(plan: PlanWriter, events: HelperEvents, foreground = false): Promise<HelperProcess> {
    const bytes = plan.encode();
    this.waitsForGo = plan.has(Op.START_SYNC);
    // A start still running on the spawner thread is joined after the caller's synchronous work
    // (the cgroup), the plan waiting in the channel meanwhile: a failed start shows there, or here.
    writeFd(this.channel(), bytes);
    await null;
    this.ready();
    let pidSeen = false;
    for (;;) {
      const line = await this.next();
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
        writeFd(this.sync, Buffer.concat([head, json]));
      } else if (line === 'READY') {
        trace('init ready');
        break;
      } else if (line.startsWith('ERR ')) {
        throw setupError(line);
      }
    }
    if (!foreground && !this.waitsForGo) {
      this.closeSync();
      return this;
    }
    // The helper reports the process's exit ("EXIT <code>") before it ends itself (init.c); a
    // process waiting for its go-ahead closes the channel at its exec (or its end).
    void this.next().then((line) => {
      if (line?.startsWith('EXIT ')) this.report(Number(line.slice(5)));
      this.closeSync();
    });
    return this;
  }

  /** A plan with CGROUPS_LATER: the cgroup directories exist now (the init may bind them). */
  cgroupDirsReady(): void {
    writeFd(this.channel(), 'D'); // (no join yet: Node's thread has the limits to write)
  }

  /** A plan with CGROUPS_LATER: the cgroups have their limits now (after cgroupDirsReady). */
  cgroupsReady(): void {
    this.ready();
    writeFd(this.sync, 'K');
  }

  /** A plan with START_SYNC: let the created process run (its `start`). */
  release(): void {
    if (!this.waitsForGo || this.sync < 0) return;
    this.waitsForGo = false;
    try {
      writeFd(this.sync, 'G');
    } catch (e) {
      this.closeSync();
      throw e;
    }
  }

  unref(): void {
    this.ready();
    if (this.exitWatch !== null) native().unwatchFd(this.exitWatch);
    this.exitWatch = null;
  }

  /** Abandon the helper (create failed before or during setup). */
  abort(): void {
    try {
      this.ready();
    } catch {
      return; // the start failed: nothing was left
    }
    this.closeSync();
    // Its channel closed, the helper ends by itself and takes an init it made with it (killed and
    // reaped: a SIGKILLed helper would leave that init to whoever adopts orphans, maybe as a
    // zombie). A helper that does not end in time is killed. Either way it is reaped before this
    // returns: a failed create leaves no process.
    const pause = new Int32Array(new SharedArrayBuffer(4));
    for (let i = 0; i < 200 && !this.tryReap(); i++) Atomics.wait(pause, 0, 0, 1);
    if (this.status !== null) return;
    try {
      native().pidfdSendSignal(this.pidfd, 9);
    } catch {
      // already gone
    }
    for (let i = 0; i < 2000 && !this.tryReap(); i++) Atomics.wait(pause, 0, 0, 1);
  }
}

/** Spawn the helper and run the plan at once (exec, where nothing is worth overlapping). */
export async function runHelper(plan: PlanWriter, opts: HelperOptions & { events: HelperEvents }): Promise<HelperProcess> {
  return Helper.spawnNow(opts).run(plan, opts.events);
}
