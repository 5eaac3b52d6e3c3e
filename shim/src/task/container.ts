/*
 * One container of the shim: its init, its execs and its rootfs mounts, driving the in-process
 * runtime engine (shim/src/runtime) with the state root chosen by the shim. Handlers in
 * service.ts look a container up and delegate here; nothing here knows about ttrpc.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { Process as OciProcess } from '../../../spec/src/config';
import { native } from '../native';
import { createContainer, hookState, type Created } from '../runtime/create';
import { runHooks } from '../runtime/hooks';
import { deleteContainer } from '../runtime/delete';
import { ShoalError } from '../runtime/errors';
import { execProcess } from '../runtime/exec';
import { killContainer } from '../runtime/kill';
import { containerPids, setPaused } from '../runtime/pause';
import { StateStore } from '../runtime/state';
import { updateContainer } from '../runtime/update';
import type { LinuxResources } from '../../../spec/src/config';
import { ConsoleSocket } from './console';
import { ProcessIo } from './io';
import type { StdioConfig } from './io-uri';
import { ExitRecord, ShimProcess } from './process';
import { containerCgroup, statsAny, watchContainerOom } from './metrics';
import { checkOptions, DEFAULT_OPTIONS, RuntimeOptions } from './options';
import { mountRootfs, RootfsMount, unmountRootfs } from './rootfs';
import type { AnyMsg } from '../ttrpc/proto';

/** What the engine and IO need besides the request. */
export interface ContainerContext {
  store: StateStore;
  namespace: string;
  warn: (msg: string) => void;
}

/** The fields of a Create request the container needs. */
export interface CreateParams extends StdioConfig {
  id: string;
  bundle: string;
  rootfs: RootfsMount[];
  /** Runtime options (Create's options Any, else the start stdin's). */
  options?: RuntimeOptions;
  /** A checkpoint (CRIU image dir) to restore at Start instead of creating a new init. */
  checkpoint?: string;
}

/** Checkpoint's options (containerd.runc.v1.CheckpointOptions, with the request's path). */
export interface CheckpointParams {
  /** Where CRIU's images go. */
  imagePath: string;
  /** Where CRIU's work files go (default a dir in the bundle, removed afterwards). */
  workPath?: string;
  /** Stop the container after the dump (else it keeps running). */
  exit?: boolean;
  openTcp?: boolean;
  externalUnixSockets?: boolean;
  fileLocks?: boolean;
  /** soft | full | strict | ignore. */
  cgroupsMode?: string;
}

/** File in the bundle naming a non-default state root (runc option `root`), for `delete`. */
export const STATE_ROOT_FILE = 'shoal-state-root';

/** How long Delete waits for a killed created init to be reaped. */
const DELETE_WAIT_MS = 5000;

/** Opens a process's IO and console socket, runs `spawn` (the engine), then wires the pty. */
async function launch(p: ShimProcess, ctx: ContainerContext, opts: RuntimeOptions, spawn: (io: ProcessIo, consoleSocket?: string) => Promise<number>): Promise<void> {
  const io = await ProcessIo.open(p.stdio, { id: p.containerId, namespace: ctx.namespace, uid: opts.ioUid, gid: opts.ioGid });
  let console: ConsoleSocket | null = null;
  try {
    if (p.stdio.terminal) console = await ConsoleSocket.listen();
    const pid = await spawn(io, console?.path);
    io.closeContainerEnds();
    p.io = io;
    p.attach(pid);
    if (console) io.attachConsole(await console.receive());
  } catch (e) {
    io.closeContainerEnds();
    await io.close();
    throw e;
  } finally {
    console?.close();
  }
  p.onExit(() => void io.close());
}

/** A container managed by the shim. */
export class Container {
  /** Exec processes by exec id. */
  readonly execs = new Map<string, ShimProcess>();
  private stopOom: () => void = () => undefined;
  /** The held create, until Start lets its process go. */
  private created: Created | undefined;
  /** Create from a checkpoint: the image dir Start restores from (unset once restored). */
  private restoreFrom: string | undefined;
  /** A Start is restoring it now. */
  private restoring = false;
  /** Who hears of OOM kills (armed once the container has its cgroup). */
  private onOom: (() => void) | undefined;

  private constructor(
    readonly init: ShimProcess,
    readonly bundle: string,
    private readonly ctx: ContainerContext,
    private readonly mountedRootfs: boolean,
    private readonly options: RuntimeOptions,
  ) {
    // With no pid namespace of their own, execs would outlive the init: end them with it.
    init.onExit(() => {
      for (const e of this.execs.values()) {
        try {
          if (e.state === 'running' || e.state === 'paused') e.signal(9);
        } catch {
          // exited meanwhile
        }
      }
    });
  }

  /** The container id. */
  get id(): string {
    return this.init.containerId;
  }

  /**
   * Mounts the rootfs, opens the init's IO and creates the container (the init waits for Start).
   * Everything is undone when a step fails.
   */
  static async create(p: CreateParams, shimCtx: ContainerContext): Promise<Container> {
    const options = p.options ?? DEFAULT_OPTIONS;
    checkOptions(options);
    const bundle = path.resolve(p.bundle);
    // runc's `root` option: this container's state lives under <root>/<namespace>.
    const ctx = options.root ? { ...shimCtx, store: new StateStore(path.join(options.root, shimCtx.namespace)) } : shimCtx;
    if (options.root) fs.writeFileSync(path.join(bundle, STATE_ROOT_FILE), ctx.store.root);
    const rootfs = path.join(bundle, 'rootfs');
    const mounted = p.rootfs.length > 0;
    if (mounted) {
      fs.mkdirSync(rootfs, { recursive: true });
      await mountRootfs(p.rootfs, rootfs);
    }
    const init = new ShimProcess(p.id, '', { stdin: p.stdin, stdout: p.stdout, stderr: p.stderr, terminal: p.terminal });
    let created: Created | undefined;
    try {
      if (p.checkpoint) {
        // Restored at Start, as runc's shim does; what Start needs is checked now.
        checkRestorable(p.checkpoint, p.terminal);
        const c = new Container(init, bundle, ctx, mounted, options);
        c.restoreFrom = p.checkpoint;
        return c;
      }
      // Held: the init waits on its helper's channel for Start (no exec.fifo), and the state is
      // written once; `delete` after a crash finds the cgroup from the bundle (cleanupDeadShim).
      await launch(init, ctx, options, async (io, consoleSocket) => {
        created = await createContainer({ store: ctx.store, id: p.id, bundle, mode: 'create', held: true, consoleSocket, stdio: io.stdio, warn: ctx.warn, noPivot: options.noPivotRoot });
        return created.state.pid;
      });
      // (no init.pid: `delete` with the shim gone reads the pid from the state)
    } catch (e) {
      if (mounted) await unmountRootfs(rootfs);
      throw e;
    }
    const c = new Container(init, bundle, ctx, mounted, options);
    c.created = created;
    return c;
  }

  /** Publishes OOM kills through `onOom` from now (or from the restore) until the container is deleted. */
  watchOom(onOom: () => void): void {
    this.onOom = onOom;
    if (!this.restoreFrom) this.armOom();
  }

  private armOom(): void {
    if (!this.onOom) return;
    const cg = containerCgroup(this.ctx.store.load(this.id));
    if (cg) this.stopOom = watchContainerOom(cg, this.onOom, this.ctx.warn);
  }

  /** Stats: the cgroup Metrics Any (v1 on v1/hybrid hosts, v2 on pure v2). */
  stats(): AnyMsg {
    if (this.init.state === 'deleted') throw new ShoalError('NOT_FOUND', `container ${this.id}: not found`);
    const cg = containerCgroup(this.ctx.store.load(this.id));
    if (!cg) throw new ShoalError('NOT_FOUND', `container ${this.id} has no cgroup`);
    return statsAny(cg);
  }

  /** Update: applies new LinuxResources to the live container (all or nothing). */
  update(resources: LinuxResources): void {
    this.init.check('update');
    updateContainer(this.ctx.store, this.id, resources);
  }

  /** The init or an exec; NOT_FOUND for an unknown exec id. */
  process(execId: string | undefined): ShimProcess {
    if (!execId) return this.init;
    const p = this.execs.get(execId);
    if (!p) throw new ShoalError('NOT_FOUND', `process ${execId} does not exist`);
    return p;
  }

  /** Releases the init (Start without exec id) or starts a registered exec. */
  async start(execId: string | undefined): Promise<ShimProcess> {
    const p = this.process(execId);
    p.check('start');
    if (p === this.init && this.restoreFrom) {
      if (this.restoring) throw new ShoalError('INVALID_STATE', `container ${this.id}: already being started`);
      this.restoring = true;
      try {
        await this.restore(this.restoreFrom);
      } finally {
        this.restoring = false;
      }
    } else if (p === this.init) {
      const c = this.created;
      this.created = undefined;
      if (!c?.release) throw new ShoalError('INVALID_STATE', `container ${this.id}: already started`);
      c.release();
      // Awaited so that an async poststart (hooks off the event loop) is waited for too.
      await runHooks('poststart', c.config.hooks?.poststart, hookState(c.state, 'running'), { warnOnly: true, warn: this.ctx.warn });
    } else {
      this.init.check('exec');
      await launch(p, this.ctx, this.options, async (io, consoleSocket) => {
        const r = await execProcess({ store: this.ctx.store, id: this.id, process: p.spec!, detach: true, consoleSocket, stdio: io.stdio });
        return r.pid;
      });
    }
    p.apply('start');
    return p;
  }

  /**
   * Start of a container created from a checkpoint: CRIU restores its processes into a new
   * cgroup, with the dumped stdio (containerd's fifos, pipes) re-plumbed onto this task's IO.
   */
  private async restore(image: string): Promise<void> {
    const { restoreContainer } = criu();
    let devNull = -1;
    try {
      await this.withCriuWork(this.options.criuWorkPath, (work) => launch(this.init, this.ctx, this.options, async (io) => {
        const stdio = io.stdio.map((e) => {
          if (typeof e === 'number') return e;
          if (devNull < 0) devNull = fs.openSync('/dev/null', 'r+');
          return devNull;
        }) as [number, number, number];
        const r = await restoreContainer({ store: this.ctx.store, id: this.id, imagePath: image, workPath: work, bundle: this.bundle, detach: true, stdio, fileLocks: true, warn: this.ctx.warn });
        return r.state.pid;
      }));
    } finally {
      if (devNull >= 0) fs.closeSync(devNull);
    }
    this.restoreFrom = undefined;
    this.armOom();
  }

  /**
   * Checkpoint: CRIU dumps the running (or paused) container into `imagePath`; with `exit` its
   * processes are killed after the dump, else it goes on running. A terminal cannot be dumped.
   */
  async checkpoint(o: CheckpointParams): Promise<void> {
    const state = this.init.state;
    if (state !== 'running' && state !== 'paused') throw new ShoalError('INVALID_STATE', `cannot checkpoint task in ${state} state`);
    if (this.init.stdio.terminal) throw new ShoalError('UNSUPPORTED', `container ${this.id}: checkpoint of a container with a terminal is not supported by containerd-shim-shoal-v2`);
    if (!o.imagePath) throw new ShoalError('INVALID_ARGUMENT', 'checkpoint: no image path');
    await this.withCriuWork(o.workPath, (work) =>
      criu().checkpointContainer({
        store: this.ctx.store, id: this.id, imagePath: o.imagePath, workPath: work, leaveRunning: !o.exit,
        tcpEstablished: o.openTcp, extUnixSk: o.externalUnixSockets, fileLocks: o.fileLocks, manageCgroupsMode: o.cgroupsMode || undefined, warn: this.ctx.warn,
      }),
    );
  }

  /** Runs `fn` with CRIU's work dir: `given`, else a dir in the bundle removed afterwards. */
  private async withCriuWork<T>(given: string | undefined, fn: (work: string) => Promise<T>): Promise<T> {
    const work = given || path.join(this.bundle, 'criu-work');
    try {
      return await fn(work);
    } finally {
      if (!given) fs.rmSync(work, { recursive: true, force: true });
    }
  }

  /** Registers an exec (started by a later Start with its exec id). */
  addExec(execId: string, spec: OciProcess, stdio: StdioConfig): ShimProcess {
    if (!execId) throw new ShoalError('INVALID_ARGUMENT', 'exec id cannot be empty');
    if (this.execs.has(execId)) throw new ShoalError('ALREADY_EXISTS', `id ${execId}: already exists`);
    this.init.check('exec');
    const p = new ShimProcess(this.id, execId, { ...stdio, terminal: stdio.terminal || !!spec.terminal }, { ...spec, terminal: stdio.terminal || !!spec.terminal });
    this.execs.set(execId, p);
    return p;
  }

  /** Signals a process; with `all` every process of the container (through its cgroup). */
  kill(execId: string | undefined, sig: number, all: boolean): void {
    const p = this.process(execId);
    if (all && p === this.init) {
      if (this.init.state === 'deleted') throw new ShoalError('NOT_FOUND', 'process already finished');
      // Async now (cgroup.kill): errors must not become an unhandled rejection in the daemon.
      killContainer(this.ctx.store, this.id, sig, true).catch((e) => process.stderr.write(`kill --all ${this.id}: ${(e as Error).message}\n`));
      return;
    }
    p.signal(sig);
  }

  /** Freezes or thaws the container through its cgroup. */
  async setPaused(paused: boolean): Promise<void> {
    this.init.check(paused ? 'pause' : 'resume');
    await setPaused(this.ctx.store, this.id, paused);
    this.init.apply(paused ? 'pause' : 'resume');
  }

  /** Host pids of the container, each with the exec id when it is an exec's. */
  pids(): { pid: number; execId?: string }[] {
    if (this.init.state === 'stopped' || this.init.state === 'deleted' || this.restoreFrom) return [];
    const byPid = new Map([...this.execs.values()].filter((e) => e.pid).map((e) => [e.pid, e.execId]));
    return containerPids(this.ctx.store, this.id).map((pid) => ({ pid, execId: byPid.get(pid) }));
  }

  /** ResizePty: sets the window size of the process's pty. */
  resize(execId: string | undefined, width: number, height: number): void {
    const p = this.process(execId);
    p.check('resize');
    const fd = p.io?.consoleFd ?? -1;
    if (fd < 0) throw new ShoalError('INVALID_STATE', 'tty not available');
    native().setWinsize(fd, height, width);
  }

  /** CloseIO: ends the process's stdin. */
  closeIO(execId: string | undefined): void {
    const p = this.process(execId);
    p.check('closeIO');
    p.io?.closeStdin();
  }

  /**
   * Deletes an exec, or the container with its init (which must be created or stopped): the
   * engine kills a created init, removes the cgroup and the state; the rootfs is unmounted.
   */
  async delete(execId: string | undefined): Promise<{ pid: number; exit: ExitRecord }> {
    const p = this.process(execId);
    p.check('delete');
    if (p === this.init) {
      for (const e of this.execs.values()) if (e.state !== 'stopped' && e.state !== 'deleted' && e.state !== 'created') throw new ShoalError('INVALID_STATE', `cannot delete task with running exec ${e.execId}`);
      // Before the cgroup goes: removing it wakes v1 OOM eventfds.
      this.stopOom();
      // A container never restored has nothing in the engine yet.
      if (!this.restoreFrom) await deleteContainer(this.ctx.store, this.id, true, this.ctx.warn);
      if (!p.exit && p.pid) await p.waitFor(DELETE_WAIT_MS);
      if (this.mountedRootfs) await unmountRootfs(path.join(this.bundle, 'rootfs'));
      if (this.options.root) fs.rmSync(path.join(this.bundle, STATE_ROOT_FILE), { force: true });
    } else {
      this.execs.delete(p.execId);
    }
    await p.io?.close();
    const exit = p.exit ?? { status: p.pid ? 137 : 0, exitedAt: new Date() };
    if (!p.exit) p.setExited(exit.status, exit.exitedAt);
    p.state = 'deleted';
    return { pid: p.pid, exit };
  }
}

/** Create from a checkpoint: the image must be a shoal checkpoint, criu installed, and no terminal. */
function checkRestorable(image: string, terminal: boolean): void {
  criu().readDescriptor(image);
  criu().findCriu('restore');
  if (terminal) throw new ShoalError('UNSUPPORTED', 'restore of a container with a terminal is not supported by containerd-shim-shoal-v2');
}

/** The CRIU module, loaded on first use: a shim that never checkpoints does not load it. */
function criu(): typeof import('../runtime/checkpoint') {
  return require('../runtime/checkpoint') as typeof import('../runtime/checkpoint');
}
