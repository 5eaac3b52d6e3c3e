import * as fs from 'fs';
import * as path from 'path';
import { checkConfig, readConfig } from '../../../spec/src/validate';
import type { Spec } from '../../../spec/src/config';
import { createCgroup, createCgroupFirst, planCgroup, CreateCgroupOptions } from './cgroup/manager';
import type { CgroupHandle } from './cgroup/types';
import { ShoalError } from './errors';
import { runHooks, HookState } from './hooks';
import { buildPlan } from './plan/build';
import { procStat, writePidFile } from './proc';
import { ContainerState, StateStore, initialState } from './state';
import { Helper, HelperProcess, StdioEntry } from './helper';
import { destroyContainer } from './delete';
import { trace } from './trace';
import { sharingRequested } from '../layers/config';

/** Everything `create` and `run` take. */
export interface CreateOptions {
  store: StateStore;
  id: string;
  bundle: string;
  pidFile?: string;
  consoleSocket?: string;
  /**
   * With no consoleSocket and a config asking for a terminal: makes a console socket and returns
   * its path (a foreground `run -t` receives the pty itself). Called after config.json is read.
   */
  openConsole?: () => Promise<string>;
  preserveFds?: number;
  noPivot?: boolean;
  /** "run" keeps the helper as the init's parent so its exit status can be returned. */
  mode: 'create' | 'run';
  /**
   * A foreground `run`, which alone starts the process: no exec.fifo, the process goes on right
   * after it is created (with a terminal or a pid file, once `Created.release` says so: the
   * caller attaches to the pty first, the pid file is written before), and the helper reports its
   * exit before it ends (`helper.exited`). The caller
   * calls `release`, then runs the poststart hooks. Until `release` the state on disk says
   * "creating".
   */
  startAtOnce?: boolean;
  /**
   * The caller stays until it starts the container, through `Created.release` (the shim): the
   * process waits on the helper's channel instead of an exec.fifo, and the state is written once,
   * created. A crash before that leaves no state: the caller cleans up from the bundle
   * (cleanupDeadShim plans the cgroup from its config.json).
   */
  held?: boolean;
  /** Called once the process's pid is known (before it can run). */
  onPid?: (pid: number) => void;
  warn: (msg: string) => void;
  /** The init's stdio (default: this process's own). */
  stdio?: [StdioEntry, StdioEntry, StdioEntry];
}

/** A created container, with the helper still attached in "run" mode. */
export interface Created {
  state: ContainerState;
  /**
   * With `startAtOnce`: lets a process with a terminal start, and records the container as
   * created. With `held`: lets the created process start (its `start`).
   */
  release?: () => void;
  /** The helper: in run mode it exits with the container's status. */
  helper: HelperProcess;
  config: Spec;
}

/**
 * The cgroup of a container's config. devices: [] restricts the device cgroup as runc does
 * (resources.devices, then its default allow list); linux.devices are nodes to create, not allow
 * rules: runc adds none for them.
 */
export function containerCgroupOptions(id: string, config: Spec): CreateCgroupOptions {
  return { id, cgroupsPath: config.linux?.cgroupsPath, resources: config.linux?.resources, devices: [] };
}

/**
 * Whether the init gets a new network namespace owned by the host's user namespace (one created
 * inside a new user namespace must be made after it, by the clone).
 */
function wantsOwnNetns(config: unknown): boolean {
  // (config.json as parsed, before it is validated: anything unexpected means no)
  const ns: unknown = (config as Spec | null)?.linux?.namespaces;
  if (!Array.isArray(ns)) return false;
  return ns.some((n) => n?.type === 'network' && !n.path) && !ns.some((n) => n?.type === 'user');
}

/** The state JSON of runtime.md (what `state` prints and hooks receive). */
export function hookState(s: ContainerState, status: string): HookState {
  return { ociVersion: s.ociVersion, id: s.id, status, pid: s.pid || undefined, bundle: s.bundle, annotations: s.annotations };
}

/**
 * Create a container: validate config.json, reserve the state dir, create the cgroup, start the
 * helper with the compiled plan, run the runtime's hooks when the init asks, and return once the
 * init waits on exec.fifo. On any failure everything is undone: the init is killed, the cgroup and
 * the state dir are removed.
 */
export async function createContainer(o: CreateOptions): Promise<Created> {
  const bundle = path.resolve(o.bundle);
  if (!fs.existsSync(bundle)) throw new ShoalError('INVALID_ARGUMENT', `bundle ${bundle}: no such directory`);
  trace('create: begin');
  const listenFds = Number(process.env.LISTEN_FDS) > 0 && Number(process.env.LISTEN_PID) === process.pid ? Number(process.env.LISTEN_FDS) : 0;
  const preserve = o.preserveFds ?? 0;
  const raw = readConfig(bundle);
  // The helper starts now: its exec and dynamic loading, and the network namespace it can make
  // ahead (the slowest to make), overlap with the validation, the state and cgroup work and the
  // plan below. Until it has a plan it only waits, so an abort (a config that is not valid
  // either) is a plain kill.
  const helper = Helper.spawn({ passFds: listenFds + preserve, cwd: bundle, stdio: o.stdio, earlyNetns: wantsOwnNetns(raw) });
  let rootfs: string;
  let config: Spec;
  try {
    config = checkConfig(raw, bundle);
    trace('config loaded and validated');
    if (!config.root?.path) throw new ShoalError('INVALID_CONFIG', 'config.json: root.path: required');
    rootfs = path.resolve(bundle, config.root.path);
    if (!fs.existsSync(rootfs)) throw new ShoalError('INVALID_CONFIG', `config.json: root.path: rootfs ${rootfs} does not exist`);
    if (!config.process) throw new ShoalError('INVALID_CONFIG', 'config.json: process: required to create a container');
    if (config.process.terminal && !o.consoleSocket && o.openConsole) o = { ...o, consoleSocket: await o.openConsole() };
    if (config.process.terminal && !o.consoleSocket && o.mode === 'create')
      throw new ShoalError('INVALID_ARGUMENT', 'cannot allocate tty if shoal will detach without setting console socket');
    if (!config.process.terminal && o.consoleSocket)
      throw new ShoalError('INVALID_ARGUMENT', 'cannot use console socket if shoal will not allocate tty');
    o.store.reserve(o.id);
  } catch (e) {
    helper.abort();
    throw e;
  }

  const state = initialState(o.id, bundle, rootfs, config);
  let cgroup: CgroupHandle | null = null;
  try {
    // Record the cgroup before it exists, so a crash at any point leaves it findable (a held
    // create's caller finds it from the bundle).
    const cgOpts = containerCgroupOptions(o.id, config);
    const planned = planCgroup(cgOpts);
    state.cgroup = planned.toJSON();
    if (!o.held) o.store.save(state);
    // The cgroup2 directory first (the init is cloned into it); the rest of the cgroup is made
    // after the plan went out, while the helper clones the init and the init makes its mounts.
    createCgroupFirst(planned);
    cgroup = planned;

    // Memory sharing (issue 7): identical files of the layer store replace the rootfs's copies.
    if (sharingRequested(config.annotations)) {
      const { planSharing, toOciMount } = require('../layers/share') as typeof import('../layers/share');
      const { openLayerStore } = require('../layers/store') as typeof import('../layers/store');
      const layers = openLayerStore();
      const shared = planSharing({ rootfs, annotations: config.annotations ?? {}, readonlyRootfs: !!config.root.readonly, store: layers });
      shared.warnings.forEach((w) => o.warn(w));
      layers.registerUse(o.id, shared.digests, o.store.dir(o.id));
      config.mounts = [...shared.mounts.map(toOciMount), ...(config.mounts ?? [])];
      trace(`sharing planned: ${shared.mounts.length} shared files, ${shared.stats.hashed} hashed`);
    }

    const hooks = config.hooks ?? {};
    const hookSync = !!(hooks.prestart?.length || hooks.createRuntime?.length || hooks.createContainer?.length || hooks.startContainer?.length);
    const plan = buildPlan(config, {
      mode: o.mode,
      bundle,
      rootfs,
      execFifo: o.startAtOnce || o.held ? undefined : o.store.fifo(o.id),
      // With a terminal (shoal attaches to the pty first) or a pid file (written before the
      // process runs, as runc does) the process waits for the go-ahead; a held one until start.
      startSync: o.startAtOnce ? !!config.process.terminal || !!o.pidFile : !!o.held,
      reportExit: !!o.startAtOnce,
      cgroup: planned,
      cgroupsLater: true,
      consoleSocket: o.consoleSocket ? path.resolve(o.consoleSocket) : undefined,
      preserveFds: preserve,
      listenFds,
      noPivot: !!o.noPivot,
      hookSync,
    });
    trace('plan built');
    const running = helper.run(plan, {
      // The pid is recorded with the created state (or before a hook runs): until then a crash
      // leaves an init that is in its cgroup by the time it is ready (delete --force kills
      // it there) or that ends by itself (the helper's channel closes).
      onPid: (pid) => {
        state.pid = pid;
        state.startTime = procStat(pid)?.startTime ?? 0;
        o.onPid?.(pid);
      },
      onHooks: async () => {
        o.store.save(state);
        const hs = hookState(state, 'creating');
        await runHooks('prestart', hooks.prestart, hs);
        await runHooks('createRuntime', hooks.createRuntime, hs);
        return JSON.stringify(hs);
      },
    }, !!o.startAtOnce);
    // (the plan is on its way: run's synchronous part wrote it)
    try {
      createCgroup(cgOpts, planned, () => helper.cgroupDirsReady());
      helper.cgroupsReady();
    } catch (e) {
      running.catch(() => undefined); // the helper is aborted below: its run fails too
      throw e;
    }
    trace('cgroup created');
    const child = await running;
    if (o.pidFile) writePidFile(o.pidFile, state.pid);
    const created = (): void => {
      state.phase = 'created';
      o.store.save(state);
    };
    if (!o.startAtOnce) {
      created();
      return { state, helper: child, config, release: o.held ? () => helper.release() : undefined };
    }
    // A foreground run's process goes on at once (unless it waits for the go-ahead): it is
    // recorded as created by `release`, off the path to the container's first instruction.
    return {
      state,
      helper: child,
      config,
      release: () => {
        // Recorded first: a process that waits for the go-ahead runs only once it is recorded.
        created();
        helper.release();
      },
    };
  } catch (e) {
    helper.abort();
    // Only a cgroup this create made is ours to remove (createCgroupFirst refuses a busy one).
    if (!cgroup) state.cgroup = null;
    await destroyContainer(o.store, state, { warn: o.warn, runPoststop: false });
    throw e;
  }
}
