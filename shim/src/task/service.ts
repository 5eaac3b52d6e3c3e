/*
 * The containerd.task.v2 Task service over plain objects: each method takes the request message
 * and returns the response message in the protobuf types' plain-object form (.proto field names,
 * snake_case; Any = {type_url, value}; Timestamp = {seconds, nanos}), so registering it with the
 * ttrpc server is `server.register('containerd.task.v2.Task', service.handlers())`.
 *
 * Handlers only look the container up, delegate to Container, and publish the event. Errors are
 * ShoalErrors whose `code` the ttrpc layer maps (NOT_FOUND, ALREADY_EXISTS, INVALID_STATE ->
 * FailedPrecondition, UNSUPPORTED -> Unimplemented). A slow Create never blocks State: the table
 * is only read synchronously.
 */
import type { Process as OciProcess } from '../../../spec/src/config';
import { ShoalError } from '../runtime/errors';
import { StateStore } from '../runtime/state';
import { Container } from './container';
import { parseCheckpointOptions, parseOptionsAny, type RuntimeOptions } from './options';
import type { RootfsMount } from './rootfs';
import { startOrphanReaper } from './reaper';
import { statusCode } from './state-machine';
import { ShimProcess, toTimestamp } from './process';
import { trace, tracing } from '../runtime/trace';

/** A message in plain-object form. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Msg = Record<string, any>;

/** One RPC handler: request message in, response message out (ctx: the ttrpc call context). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Handler = (req: Msg, ctx?: any) => Promise<Msg>;

/** Publishes an event: topic ("/tasks/exit"), the event's full protobuf type name and the message. */
export type Publish = (topic: string, type: string, event: Msg) => void;

/** What the service needs from the shim around it. */
export interface TaskServiceOptions {
  /** The containerd namespace (for logging binaries and the state root). */
  namespace: string;
  /** The runtime engine's state root, e.g. /run/containerd/shoal/<namespace>. */
  stateRoot: string;
  publish?: Publish;
  /** Called when Shutdown may end the shim (no containers left, or `now`), or the linger ran out. */
  onShutdown?: () => void;
  /**
   * How long an idle shim (no containers, no call in flight) stays up for the next container of
   * its group before ending itself; 0 (the default) ends it at Shutdown, as runc's shim does.
   */
  lingerMs?: number;
  warn?: (msg: string) => void;
  /** Reap orphaned zombies re-parented to this process (default true; off for in-process tests). */
  reapOrphans?: boolean;
  /** Runtime options for a Create without any (those containerd wrote on `start`'s stdin). */
  defaultOptions?: RuntimeOptions | null;
}

const ev = (name: string) => `containerd.events.${name}`;

/** The Task service of one shim: every container of its group. */
export class TaskService {
  /** Containers by id (a creating container is listed in `creating` until Create returns). */
  readonly containers = new Map<string, Container>();
  private readonly creating = new Set<string>();
  private readonly store: StateStore;
  private readonly stopReaper: () => void;
  /** RPCs in flight, and the idle linger's timer (see armLinger). */
  private calls = 0;
  private lingerTimer: NodeJS.Timeout | null = null;

  constructor(private readonly opts: TaskServiceOptions) {
    this.store = new StateStore(opts.stateRoot);
    this.stopReaper = opts.reapOrphans === false ? () => undefined : startOrphanReaper();
  }

  private get ctx() {
    return { store: this.store, namespace: this.opts.namespace, warn: this.opts.warn ?? ((m: string) => process.stderr.write(`shoal-shim: ${m}\n`)) };
  }

  private publish(topic: string, type: string, event: Msg): void {
    try {
      this.opts.publish?.(topic, ev(type), event);
    } catch (e) {
      this.ctx.warn(`publish ${topic}: ${(e as Error).message}`);
    }
  }

  private container(id: string): Container {
    const c = this.containers.get(id);
    if (!c) throw new ShoalError('NOT_FOUND', `container ${id}: not found`);
    return c;
  }

  private watchExit(p: ShimProcess): void {
    p.onExit(() =>
      this.publish('/tasks/exit', 'TaskExit', { container_id: p.containerId, id: p.id, pid: p.pid, exit_status: p.exit!.status, exited_at: toTimestamp(p.exit!.exitedAt) }),
    );
  }

  /** State: the status of the init or an exec. */
  async State(r: Msg): Promise<Msg> {
    const c = this.container(r.id);
    const p = c.process(r.exec_id);
    return {
      id: p.id, bundle: c.bundle, pid: p.pid, status: statusCode(p.state), stdin: p.stdio.stdin, stdout: p.stdio.stdout, stderr: p.stdio.stderr,
      terminal: p.stdio.terminal, exit_status: p.exit?.status ?? 0, exited_at: p.exit ? toTimestamp(p.exit.exitedAt) : null, exec_id: p.execId,
    };
  }

  /** Create: mounts the rootfs, creates the container; the init waits for Start. */
  async Create(r: Msg): Promise<Msg> {
    const id: string = r.id;
    if (this.containers.has(id) || this.creating.has(id)) throw new ShoalError('ALREADY_EXISTS', `container ${id}: already exists`);
    const options = parseOptionsAny(r.options) ?? this.opts.defaultOptions ?? undefined;
    this.creating.add(id);
    try {
      const rootfs: RootfsMount[] = (r.rootfs ?? []).map((m: Msg) => ({ type: m.type, source: m.source, target: m.target, options: m.options ?? [] }));
      const c = await Container.create({ id, bundle: r.bundle, rootfs, stdin: r.stdin ?? '', stdout: r.stdout ?? '', stderr: r.stderr ?? '', terminal: !!r.terminal, options, checkpoint: r.checkpoint || undefined }, this.ctx);
      this.containers.set(id, c);
      this.watchExit(c.init);
      c.watchOom(() => this.publish('/tasks/oom', 'TaskOOM', { container_id: id }));
      this.publish('/tasks/create', 'TaskCreate', {
        container_id: id, bundle: r.bundle, rootfs: r.rootfs ?? [], io: { stdin: r.stdin, stdout: r.stdout, stderr: r.stderr, terminal: !!r.terminal }, checkpoint: r.checkpoint ?? '', pid: c.init.pid,
      });
      return { pid: c.init.pid };
    } finally {
      this.creating.delete(id);
    }
  }

  /** Start: releases the init, or starts an exec. */
  async Start(r: Msg): Promise<Msg> {
    const c = this.container(r.id);
    // An exit during Start (a short command) is recorded and published after the start event.
    const p = c.process(r.exec_id);
    p.holdExit();
    try {
      await c.start(r.exec_id);
      if (p.execId) this.publish('/tasks/exec-started', 'TaskExecStarted', { container_id: c.id, exec_id: p.execId, pid: p.pid });
      else this.publish('/tasks/start', 'TaskStart', { container_id: c.id, pid: p.pid });
      return { pid: p.pid };
    } finally {
      p.releaseExit();
    }
  }

  /** Delete: removes an exec, or the container (which must be created or stopped). */
  async Delete(r: Msg): Promise<Msg> {
    const c = this.container(r.id);
    const { pid, exit } = await c.delete(r.exec_id);
    if (!r.exec_id) {
      this.containers.delete(c.id);
      this.publish('/tasks/delete', 'TaskDelete', { container_id: c.id, pid, exit_status: exit.status, exited_at: toTimestamp(exit.exitedAt), id: c.id });
    }
    return { pid, exit_status: exit.status, exited_at: toTimestamp(exit.exitedAt) };
  }

  /** Pids: every process of the container; execs carry a ProcessDetails{exec_id} Any. */
  async Pids(r: Msg): Promise<Msg> {
    return { processes: this.container(r.id).pids().map(({ pid, execId }) => ({ pid, info: execId ? processDetails(execId) : null })) };
  }

  /** Pause: freezes the container. */
  async Pause(r: Msg): Promise<Msg> {
    await this.container(r.id).setPaused(true);
    this.publish('/tasks/paused', 'TaskPaused', { container_id: r.id });
    return {};
  }

  /** Resume: thaws the container. */
  async Resume(r: Msg): Promise<Msg> {
    await this.container(r.id).setPaused(false);
    this.publish('/tasks/resumed', 'TaskResumed', { container_id: r.id });
    return {};
  }

  /** Kill: signals the init or an exec, or with `all` every process of the container. */
  async Kill(r: Msg): Promise<Msg> {
    this.container(r.id).kill(r.exec_id, r.signal || 15, !!r.all);
    return {};
  }

  /** Exec: registers a process (spec: Any with the OCI Process JSON); Start runs it. */
  async Exec(r: Msg): Promise<Msg> {
    const c = this.container(r.id);
    let spec: OciProcess;
    try {
      spec = JSON.parse(Buffer.from(r.spec?.value ?? []).toString('utf8'));
    } catch {
      throw new ShoalError('INVALID_ARGUMENT', 'exec spec is not an OCI process');
    }
    c.addExec(r.exec_id, spec, { stdin: r.stdin ?? '', stdout: r.stdout ?? '', stderr: r.stderr ?? '', terminal: !!r.terminal });
    this.watchExit(c.process(r.exec_id));
    this.publish('/tasks/exec-added', 'TaskExecAdded', { container_id: c.id, exec_id: r.exec_id });
    return {};
  }

  /** ResizePty: sets the pty's window size. */
  async ResizePty(r: Msg): Promise<Msg> {
    this.container(r.id).resize(r.exec_id, r.width ?? 0, r.height ?? 0);
    return {};
  }

  /** CloseIO: closes the process's stdin. */
  async CloseIO(r: Msg): Promise<Msg> {
    if (r.stdin) this.container(r.id).closeIO(r.exec_id);
    return {};
  }

  /** Wait: resolves when the process exits. */
  async Wait(r: Msg): Promise<Msg> {
    const p = this.container(r.id).process(r.exec_id);
    const exit = await p.wait();
    return { exit_status: exit.status, exited_at: toTimestamp(exit.exitedAt) };
  }

  /** Connect: the shim's and the init's pids. */
  async Connect(r: Msg): Promise<Msg> {
    const c = this.containers.get(r.id);
    return { shim_pid: process.pid, task_pid: c?.init.pid ?? 0, version: '' };
  }

  /**
   * Shutdown: ends the shim once no container is left (or at once with `now`). A lingering shim
   * (lingerMs) instead ends when it has been idle that long (see handlers()).
   */
  async Shutdown(r: Msg, ctx?: { afterReply?(fn: () => void): void }): Promise<Msg> {
    if (r.now || (this.idle() && !this.opts.lingerMs)) {
      this.stopReaper();
      const go = () => this.opts.onShutdown?.();
      if (ctx?.afterReply) ctx.afterReply(go);
      else setImmediate(go);
    }
    return {};
  }

  /** Stats: the container's cgroup metrics (io.containerd.cgroups.v1/v2.Metrics Any). */
  async Stats(r: Msg): Promise<Msg> {
    return { stats: this.container(r.id).stats() };
  }

  /** Update: resources is an Any with the JSON OCI LinuxResources; applied all or nothing. */
  async Update(r: Msg): Promise<Msg> {
    const c = this.container(r.id);
    let resources;
    try {
      resources = JSON.parse(Buffer.from(r.resources?.value ?? []).toString('utf8') || '{}');
    } catch {
      throw new ShoalError('INVALID_ARGUMENT', 'update resources are not OCI LinuxResources JSON');
    }
    if (!resources || typeof resources !== 'object' || Array.isArray(resources)) throw new ShoalError('INVALID_ARGUMENT', 'update resources are not OCI LinuxResources JSON');
    c.update(resources);
    return {};
  }

  /**
   * Checkpoint: CRIU dumps the container into the options' image_path, else into `path`
   * (containerd then stores that as a checkpoint image and publishes /tasks/checkpointed; for a
   * non-runc runtime name it passes a temp dir as `path` even when the caller, Kubernetes' CRI,
   * asked for an image_path). Options: see parseCheckpointOptions.
   */
  async Checkpoint(r: Msg): Promise<Msg> {
    const c = this.container(r.id);
    const o = parseCheckpointOptions(r.options);
    const str = (v: unknown) => (typeof v === 'string' && v ? v : undefined);
    await c.checkpoint({
      imagePath: str(o.image_path) ?? r.path ?? '', workPath: str(o.work_path), exit: !!o.exit, openTcp: !!o.open_tcp,
      externalUnixSockets: !!o.external_unix_sockets, fileLocks: !!o.file_locks, cgroupsMode: str(o.cgroups_mode),
    });
    return {};
  }

  /** Stops background work (the orphan reaper); for in-process use. */
  close(): void {
    this.stopReaper();
  }

  /** No container and no Create in progress. */
  private idle(): boolean {
    return this.containers.size === 0 && this.creating.size === 0;
  }

  /** Called around every RPC: a call holds the shim up; the last one out of an idle shim arms the linger. */
  private callBegins(): void {
    this.calls++;
    if (this.lingerTimer) clearTimeout(this.lingerTimer);
    this.lingerTimer = null;
  }

  private callEnds(): void {
    this.calls--;
    this.armLinger();
  }

  /** With lingerMs, an idle shim ends itself after that long without a call. */
  armLinger(): void {
    const ms = this.opts.lingerMs ?? 0;
    if (ms <= 0 || this.calls > 0 || !this.idle() || this.lingerTimer) return;
    this.lingerTimer = setTimeout(() => {
      this.lingerTimer = null;
      if (this.calls > 0 || !this.idle()) return;
      this.stopReaper();
      this.opts.onShutdown?.();
    }, ms);
  }

  /** The handlers by RPC name, for the ttrpc server. */
  handlers(): Record<string, Handler> {
    const names = ['State', 'Create', 'Start', 'Delete', 'Pids', 'Pause', 'Resume', 'Kill', 'Exec', 'ResizePty', 'CloseIO', 'Wait', 'Connect', 'Shutdown', 'Stats', 'Update', 'Checkpoint'] as const;
    const h: Record<string, Handler> = {};
    for (const n of names) {
      const method = this[n] as Handler;
      const call: Handler = async (req, ctx) => {
        this.callBegins();
        try {
          return await method.call(this, req, ctx);
        } finally {
          this.callEnds();
        }
      };
      // With SHOAL_TRACE, each RPC's begin and end are marked (the daemon has no stderr).
      h[n] = !tracing
        ? call
        : async (req, ctx) => {
            trace(`rpc ${n} ${req.id ?? ''} ${req.exec_id ?? ''}: begin`);
            try {
              return await call(req, ctx);
            } finally {
              trace(`rpc ${n} ${req.id ?? ''}: end`);
            }
          };
    }
    return h;
  }
}

/** A containerd.runc.v1.ProcessDetails{exec_id} as an Any (field 1, hand-encoded). */
function processDetails(execId: string): Msg {
  const s = Buffer.from(execId, 'utf8');
  return { type_url: 'containerd.runc.v1.ProcessDetails', value: Buffer.concat([Buffer.from([0x0a]), varint(s.length), s]) };
}

/** A protobuf varint. */
export function varint(n: number): Buffer {
  const out: number[] = [];
  let v = BigInt(n);
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) b |= 0x80;
    out.push(b);
  } while (v > 0n);
  return Buffer.from(out);
}
