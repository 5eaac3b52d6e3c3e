/*
 * One process of the shim's table: a container's init (execId "") or an exec. It carries the
 * state machine, the pidfd watch that records its exit, its stdio and the waiters of Wait.
 */
import type { Process as OciProcess } from '../../../spec/src/config';
import { native } from '../native';
import { ShoalError } from '../runtime/errors';
import type { ProcessIo } from './io';
import type { StdioConfig } from './io-uri';
import { watchProcess, WatchedProcess } from './reaper';
import { next, ProcOp, ProcState } from './state-machine';

/** A google.protobuf.Timestamp in plain-object form. */
export interface Timestamp {
  seconds: number;
  nanos: number;
}

/** A Date as a protobuf Timestamp. */
export function toTimestamp(d: Date): Timestamp {
  const ms = d.getTime();
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 };
}

/** How a process ended. */
export interface ExitRecord {
  /** The exit code, or 128 + signal. */
  status: number;
  exitedAt: Date;
}

/** A process of a container, init or exec, with its lifecycle state. */
export class ShimProcess {
  /** The lifecycle state; changed only through `apply`. */
  state: ProcState = 'created';
  /** Host pid, 0 until started (execs) or created (init). */
  pid = 0;
  /** The exit, once the process was reaped. */
  exit: ExitRecord | null = null;
  /** Its stdio, open from create/start until it exited. */
  io: ProcessIo | null = null;
  private watched: WatchedProcess | null = null;
  private resolveExit!: (e: ExitRecord) => void;
  private readonly exited: Promise<ExitRecord>;
  private readonly exitListeners: ((p: ShimProcess) => void)[] = [];
  /** While > 0 an exit is held back (Start in flight), as containerd's runc shim does. */
  private holds = 0;
  private heldExit: ExitRecord | null = null;

  constructor(
    /** The container id. */
    readonly containerId: string,
    /** The exec id, "" for the init. */
    readonly execId: string,
    /** The stdio strings containerd passed. */
    readonly stdio: StdioConfig,
    /** An exec's OCI process (from Exec's spec Any). */
    readonly spec?: OciProcess,
  ) {
    this.exited = new Promise((r) => (this.resolveExit = r));
  }

  /** The id containerd uses for this process in events: the exec id, else the container id. */
  get id(): string {
    return this.execId || this.containerId;
  }

  /** Checks that `op` is allowed now (throws "cannot <op> task in <state> state"). */
  check(op: ProcOp): void {
    next(this.state, op);
  }

  /** Moves the state machine through `op` (throws when illegal). */
  apply(op: ProcOp): void {
    this.state = next(this.state, op);
  }

  /** Registers a listener called once when the process exits. */
  onExit(fn: (p: ShimProcess) => void): void {
    if (this.exit) fn(this);
    else this.exitListeners.push(fn);
  }

  /** Starts watching the process's pidfd; its exit is recorded when it is reaped. */
  attach(pid: number): void {
    this.pid = pid;
    this.watched = watchProcess(pid);
    this.watched.exited.then((info) => this.setExited(info.status));
  }

  /**
   * Holds back the exit until `releaseExit`: a process may exit while Start is still running
   * (a short command released from exec.fifo), and its exit must neither fail Start's own state
   * transition nor be published before /tasks/start.
   */
  holdExit(): void {
    this.holds++;
  }

  /** Ends a `holdExit`; an exit that came meanwhile is recorded now. */
  releaseExit(): void {
    if (--this.holds > 0 || !this.heldExit) return;
    const held = this.heldExit;
    this.heldExit = null;
    this.setExited(held.status, held.exitedAt);
  }

  /** Records the exit (the first one wins) and wakes Wait. */
  setExited(status: number, when = new Date()): void {
    if (this.exit) return;
    if (this.holds > 0) {
      this.heldExit ??= { status, exitedAt: when };
      return;
    }
    this.exit = { status, exitedAt: when };
    this.state = next(this.state, 'exit');
    this.resolveExit(this.exit);
    for (const fn of this.exitListeners.splice(0)) fn(this);
  }

  /** Resolves once the process exited. */
  wait(): Promise<ExitRecord> {
    return this.exited;
  }

  /** Waits for the exit for at most `ms`; null on timeout. */
  async waitFor(ms: number): Promise<ExitRecord | null> {
    let timer: NodeJS.Timeout | undefined;
    const t = new Promise<null>((r) => (timer = setTimeout(() => r(null), ms)));
    const res = await Promise.race([this.exited, t]);
    clearTimeout(timer);
    return res;
  }

  /**
   * Signals the process through its pidfd, so a recycled pid is never hit. A process that
   * already exited gives NOT_FOUND "process already finished" (containerd treats it as done).
   */
  signal(sig: number): void {
    if (this.state === 'deleted' || this.state === 'stopped' || !this.watched || this.watched.reaped())
      throw new ShoalError('NOT_FOUND', 'process already finished');
    this.check('kill');
    try {
      native().pidfdSendSignal(this.watched.pidfd, sig);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ESRCH') throw new ShoalError('NOT_FOUND', 'process already finished');
      throw e;
    }
  }
}
