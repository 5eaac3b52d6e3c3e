/*
 * Checkpoint and restore of a container with CRIU (the `criu` binary, driven by its command line).
 *
 * checkpoint: `criu dump -t <init pid> --root <rootfs>` with the container's bind mounts and the
 * file maskedPaths declared external (as runc does), the cgroup managed by CRIU, then a shoal
 * descriptor (config + state bits + stdio) written into the image directory.
 * restore: recreate the cgroup with the engine's cgroup layer, bind the rootfs onto a mount point
 * of its own, `criu restore --restore-detached --pidfile ...` with the external mounts mapped back
 * to their host sources, then write state.json (pid + start time, phase created, no exec fifo: so
 * the container is "running" for state, kill and delete).
 */
import * as fs from 'fs';
import * as path from 'path';
import { spawn, ChildProcess } from 'child_process';
import { MNT_DETACH, native } from '../native';
import { MS } from './plan/mount-options';
import { SIGNALS } from './kill';
import type { Spec, Mount } from '../../../spec/src/config';
import { loadConfig } from '../../../spec/src/validate';
import { createCgroup, loadCgroup, planCgroup } from './cgroup/manager';
import type { CgroupHandle } from './cgroup/types';
import { ShoalError } from './errors';
import { procStat, waitGone, writePidFile } from './proc';
import { ContainerState, StateStore, initialState } from './state';
import { containerCgroupOptions } from './create';
import { computeStatus } from './status';
import { destroyContainer } from './delete';

/** Name of the shoal descriptor written next to CRIU's images. */
export const DESCRIPTOR_FILE = 'shoal-checkpoint.json';

/** Values runc accepts for --manage-cgroups-mode (CRIU's --manage-cgroups modes). */
export const MANAGE_CGROUPS_MODES = ['soft', 'full', 'strict', 'ignore'] as const;

/** CRIU options shared by checkpoint and restore (runc's flags of the same names). */
export interface CriuCommonOptions {
  store: StateStore;
  id: string;
  /** Directory of CRIU's images (default ./checkpoint, as runc). */
  imagePath?: string;
  /** Directory for CRIU's log and work files (default: the image path). */
  workPath?: string;
  tcpEstablished?: boolean;
  extUnixSk?: boolean;
  shellJob?: boolean;
  fileLocks?: boolean;
  /** soft | full | strict | ignore; default: CRIU's own (soft). */
  manageCgroupsMode?: string;
  /** The criu binary; default $SHOAL_CRIU, then criu in PATH or /usr/sbin, /sbin, /usr/local/sbin. */
  criuPath?: string;
  warn: (msg: string) => void;
}

/** Options of `checkpoint`. */
export interface CheckpointOptions extends CriuCommonOptions {
  leaveRunning?: boolean;
  /** Only dump memory (criu pre-dump --track-mem); the container keeps running. */
  preDump?: boolean;
  /** A previous pre-dump's image dir, relative to the image path (criu --prev-images-dir). */
  parentPath?: string;
}

/** Options of `restore`. */
export interface RestoreOptions extends CriuCommonOptions {
  /** Bundle whose config.json to use; default the one recorded at checkpoint. */
  bundle?: string;
  pidFile?: string;
  /** Return once restored (else wait for the restored init, like runc restore without -d). */
  detach?: boolean;
  /**
   * The restored init's stdio: fds given to CRIU as its 0, 1, 2, which it hands to the restored
   * process for the dumped pipes and external files (default: restore's own stdio).
   */
  stdio?: [number, number, number];
}

/** What checkpoint stores in DESCRIPTOR_FILE: enough to rebuild the container's state. */
export interface CheckpointDescriptor {
  version: 1;
  id: string;
  bundle: string;
  rootfs: string;
  created: string;
  owner: string;
  annotations: Record<string, string>;
  ociVersion: string;
  config: Spec;
  /** readlink of /proc/<init>/fd/{0,1,2} at checkpoint time ("pipe:[123]", "/dev/null"...). */
  stdio: string[];
  /**
   * For fds 0, 1, 2: the CRIU key restore must give an fd for with --inherit-fd ("pipe:[123]",
   * or "file[<mnt_id>:<inode>]" for a file outside the container's mounts, dumped as external),
   * or null when CRIU restores it by itself. Absent in checkpoints of older shoal versions.
   */
  stdioKeys?: (string | null)[];
  /** The container's cgroup path at checkpoint time. */
  cgroupPath?: string;
  /** maskedPaths that were files (bind mounts of /dev/null), declared external at the dump. */
  maskedFiles: string[];
}

/** Locate criu, or throw UNSUPPORTED "<cmd>: criu not found (install criu)". */
export function findCriu(cmd: string, explicit?: string): string {
  const want = explicit ?? process.env.SHOAL_CRIU;
  if (want) {
    if (fs.existsSync(want)) return want;
    throw new ShoalError('UNSUPPORTED', `${cmd}: criu not found at ${want} (install criu)`);
  }
  const dirs = [...(process.env.PATH ?? '').split(':').filter(Boolean), '/usr/sbin', '/sbin', '/usr/local/sbin'];
  for (const d of dirs) {
    const p = path.join(d, 'criu');
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  throw new ShoalError('UNSUPPORTED', `${cmd}: criu not found (install criu)`);
}

/** The last `lines` lines of a CRIU log (empty string when it cannot be read). */
export function criuLogTail(file: string, lines = 25): string {
  try {
    const all = fs.readFileSync(file, 'utf8').trimEnd().split('\n');
    return all.slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** Whether an OCI mount is a bind mount (type "bind" or a bind/rbind option). */
export function isBindMount(m: Mount): boolean {
  return m.type === 'bind' || !!m.options?.some((o) => o === 'bind' || o === 'rbind');
}

/** The container-side path of a mount destination, cleaned ("/data/" -> "/data"). */
function cleanDest(dest: string): string {
  return path.posix.resolve('/', dest);
}

/** maskedPaths that are files (bind mounts of /dev/null) in the container's root. */
function maskedFiles(config: Spec, rootOfInit: string): string[] {
  const out: string[] = [];
  for (const p of config.linux?.maskedPaths ?? []) {
    try {
      if (!fs.statSync(path.join(rootOfInit, p)).isDirectory()) out.push(cleanDest(p));
    } catch {
      /* absent: nothing was mounted there */
    }
  }
  return out;
}

/** The flags both dump and restore take from the common options. */
function commonFlags(o: CriuCommonOptions): string[] {
  const a: string[] = [];
  if (o.tcpEstablished) a.push('--tcp-established');
  if (o.extUnixSk) a.push('--ext-unix-sk');
  if (o.shellJob) a.push('--shell-job');
  if (o.fileLocks) a.push('--file-locks');
  if (o.manageCgroupsMode !== undefined) {
    if (!(MANAGE_CGROUPS_MODES as readonly string[]).includes(o.manageCgroupsMode))
      throw new ShoalError('INVALID_ARGUMENT', `invalid manage cgroups mode: ${o.manageCgroupsMode} (want one of ${MANAGE_CGROUPS_MODES.join(', ')})`);
    a.push(`--manage-cgroups=${o.manageCgroupsMode}`);
  } else {
    a.push('--manage-cgroups');
  }
  return a;
}

function dirs(o: CriuCommonOptions): { image: string; work: string } {
  const image = path.resolve(o.imagePath ?? 'checkpoint');
  const work = path.resolve(o.workPath ?? image);
  return { image, work };
}

/** How a child process ended (or failed to start). */
interface ChildEnd {
  code: number | null;
  signal: NodeJS.Signals | null;
  error?: Error;
}

/** Resolves when `child` ends: at 'exit', or at 'close' (its piped output read to the end too). */
function childEnd(child: ChildProcess, event: 'exit' | 'close'): Promise<ChildEnd> {
  return new Promise((resolve) => {
    child.on('error', (error) => resolve({ code: null, signal: null, error }));
    child.on(event, (code: number | null, signal: NodeJS.Signals | null) => resolve({ code, signal }));
  });
}

/**
 * Runs criu to completion without blocking the event loop (a dump takes seconds, and the shim
 * serves other containers meanwhile); on failure throws with the tail of its log.
 */
async function runCriu(cmd: string, criu: string, args: string[], log: string): Promise<void> {
  const child = spawn(criu, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const r = await childEnd(child, 'close');
  if (r.error) throw new ShoalError('INTERNAL', `${cmd}: run ${criu}: ${r.error.message}`);
  if (r.code !== 0) throw criuFailure(cmd, r.code, r.signal, log, output);
}

function criuFailure(cmd: string, status: number | null, signal: string | null, log: string, output: string): ShoalError {
  const tail = criuLogTail(log) || output.trim().split('\n').slice(-25).join('\n');
  const how = signal ? `signal ${signal}` : `status ${status}`;
  return new ShoalError('INTERNAL', `${cmd}: criu failed (${how}); tail of ${log}:\n${tail}`);
}

/** The mount ids of a process's mount namespace (first field of its mountinfo). */
function mountIds(pid: number): Set<number> {
  const ids = new Set<number>();
  for (const line of fs.readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n')) if (line) ids.add(Number(line.split(' ', 1)[0]));
  return ids;
}

/** The mnt_id of a process's open fd (its fdinfo), or -1. */
function fdMountId(pid: number, fd: number): number {
  try {
    const m = /^mnt_id:\s*(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
    return m ? Number(m[1]) : -1;
  } catch {
    return -1;
  }
}

/**
 * The restore keys of the init's fds 0-2 (see CheckpointDescriptor.stdioKeys): its pipes, and
 * files on mounts its mount namespace does not have (a containerd fifo, the host's /dev/null, a
 * log file): CRIU cannot reopen those by path, so they are dumped as external and inherited.
 */
function initStdioKeys(pid: number, links: string[]): (string | null)[] {
  let ids: Set<number> | null = null;
  return links.map((link, fd) => {
    if (link.startsWith('pipe:')) return link;
    if (!link.startsWith('/')) return null;
    const mnt = fdMountId(pid, fd);
    ids ??= mountIds(pid);
    if (mnt < 0 || ids.has(mnt)) return null;
    try {
      const ino = fs.statSync(`/proc/${pid}/fd/${fd}`, { bigint: true }).ino;
      return `file[${mnt.toString(16)}:${ino.toString(16)}]`;
    } catch {
      return null;
    }
  });
}

/**
 * `checkpoint`: dump a running (or paused) container into the image dir with CRIU. Without
 * leaveRunning (and without preDump) CRIU kills its processes after the dump, so the container is
 * "stopped" afterwards; its state dir stays until `delete` or a `restore` of the same id.
 */
export async function checkpointContainer(o: CheckpointOptions): Promise<void> {
  const criu = findCriu('checkpoint', o.criuPath);
  const s = o.store.load(o.id);
  const status = computeStatus(s, o.store.fifo(o.id));
  if (status === 'created' || status === 'creating') throw new ShoalError('INVALID_STATE', 'container cannot be checkpointed in created state');
  if (status === 'stopped') throw new ShoalError('INVALID_STATE', 'container not running');
  const { image, work } = dirs(o);
  fs.mkdirSync(image, { recursive: true });
  fs.mkdirSync(work, { recursive: true });
  const log = path.join(work, o.preDump ? 'pre-dump.log' : 'dump.log');
  fs.rmSync(log, { force: true });

  const initRoot = `/proc/${s.pid}/root`;
  const args = [o.preDump ? 'pre-dump' : 'dump', '-t', String(s.pid), '-D', image, '-W', work, '-o', log, '-v4', '--root', s.rootfs];
  args.push(...commonFlags(o));
  if (o.preDump) args.push('--track-mem');
  if (o.parentPath) args.push('--prev-images-dir', o.parentPath, '--track-mem');
  if (o.leaveRunning && !o.preDump) args.push('--leave-running');
  for (const m of s.config.mounts ?? []) {
    if (isBindMount(m)) args.push('--external', `mnt[${cleanDest(m.destination)}]:${cleanDest(m.destination)}`);
  }
  const masked = maskedFiles(s.config, initRoot);
  for (const p of masked) args.push('--external', `mnt[${p}]:${p}`);
  if (s.cgroup) {
    // The cgroup CRIU freezes the tree with: v1 the freezer hierarchy's dir, v2 the unified one.
    const cg = loadCgroup(s.cgroup);
    const freezer = cg.controllerDir('freezer') ?? (cg.mode === 'v2' ? cg.dirs()[0] : undefined);
    if (freezer && fs.existsSync(freezer)) args.push('--freeze-cgroup', freezer);
  }
  const stdio = [0, 1, 2].map((fd) => {
    try {
      return fs.readlinkSync(`/proc/${s.pid}/fd/${fd}`);
    } catch {
      return '';
    }
  });
  const stdioKeys = initStdioKeys(s.pid, stdio);
  for (const k of new Set(stdioKeys)) if (k?.startsWith('file[')) args.push('--external', k);
  const descriptor: CheckpointDescriptor = {
    version: 1,
    id: s.id,
    bundle: s.bundle,
    rootfs: s.rootfs,
    created: s.created,
    owner: s.owner,
    annotations: s.annotations,
    ociVersion: s.ociVersion,
    config: s.config,
    stdio,
    stdioKeys,
    cgroupPath: s.cgroup?.path,
    maskedFiles: masked,
  };
  await runCriu('checkpoint', criu, args, log);
  fs.writeFileSync(path.join(image, DESCRIPTOR_FILE), JSON.stringify(descriptor, null, 2));
  if (!o.leaveRunning && !o.preDump) {
    // CRIU killed the tree; wait until the init is really gone so `state` says stopped.
    if (!(await waitGone(s.pid, s.startTime, 5000))) o.warn(`checkpoint: init ${s.pid} still alive after the dump`);
  }
}

/** Read and check the descriptor checkpoint left in an image dir. */
export function readDescriptor(image: string): CheckpointDescriptor {
  const f = path.join(image, DESCRIPTOR_FILE);
  let d: CheckpointDescriptor;
  try {
    d = JSON.parse(fs.readFileSync(f, 'utf8')) as CheckpointDescriptor;
  } catch (e) {
    throw new ShoalError('INVALID_ARGUMENT', `restore: ${f}: not a shoal checkpoint (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (d.version !== 1 || !d.config) throw new ShoalError('INVALID_ARGUMENT', `restore: ${f}: unsupported checkpoint descriptor`);
  return d;
}

async function mountBind(src: string, dst: string): Promise<void> {
  try {
    await native().mountAsync(src, dst, '', MS.BIND, '');
  } catch (e) {
    throw new ShoalError('SETUP_FAILED', `restore: bind ${src} on ${dst}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/**
 * Creates the missing destinations of the bind mounts in the rootfs: directories, or an empty
 * file where the source is not a directory. Nothing is created through a symlink: a path whose
 * component is one is left alone (CRIU then reports the mount).
 */
function makeBindTargets(rootfs: string, bundle: string, mounts: Mount[]): void {
  for (const m of mounts) {
    if (!isBindMount(m) || !m.source) continue;
    const parts = cleanDest(m.destination).split('/').filter(Boolean);
    let cur = rootfs;
    let safe = true;
    for (let i = 0; i < parts.length && safe; i++) {
      cur = path.join(cur, parts[i]);
      const last = i === parts.length - 1;
      let st: fs.Stats | null = null;
      try {
        st = fs.lstatSync(cur);
      } catch {
        /* missing: made below */
      }
      if (st) {
        safe = !st.isSymbolicLink() && (last || st.isDirectory());
        continue;
      }
      let dir = !last;
      if (last) {
        try {
          dir = fs.statSync(path.resolve(bundle, m.source)).isDirectory();
        } catch {
          dir = true;
        }
      }
      if (dir) fs.mkdirSync(cur, { mode: 0o755 });
      else fs.closeSync(fs.openSync(cur, 'wx', 0o644));
    }
  }
}

/**
 * Detach the rootfs bind made for CRIU and remove its mount point. Returns false if it is still
 * mounted: then nothing may remove the state dir recursively (it would reach into the rootfs).
 */
function releaseRoot(dir: string): boolean {
  try {
    native().umount2(dir, MNT_DETACH);
  } catch {
    /* not mounted */
  }
  try {
    fs.rmdirSync(dir);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT';
  }
}


/**
 * `restore`: rebuild a checkpointed container under `id`: recreate its cgroup, let CRIU restore
 * the process tree and its namespaces into it, then record the restored init in state.json.
 * A stopped container of the same id (what checkpoint leaves) is replaced. Returns the state and,
 * unless detach, the restored init's exit status once it ends (CRIU stays its parent).
 */
export async function restoreContainer(o: RestoreOptions): Promise<{ state: ContainerState; exitCode: Promise<number> }> {
  const criu = findCriu('restore', o.criuPath);
  const { image, work } = dirs(o);
  const d = readDescriptor(image);
  const bundle = o.bundle ? path.resolve(o.bundle) : d.bundle;
  const config = o.bundle ? loadConfig(bundle) : d.config;
  if (!config.root?.path) throw new ShoalError('INVALID_CONFIG', 'config.json: root.path: required');
  const rootfs = path.resolve(bundle, config.root.path);
  if (!fs.existsSync(rootfs)) throw new ShoalError('INVALID_CONFIG', `config.json: root.path: rootfs ${rootfs} does not exist`);

  if (o.store.exists(o.id)) {
    let old: ContainerState | undefined;
    try {
      old = o.store.load(o.id);
    } catch {
      /* half-made dir: reserve below reports it */
    }
    if (old) {
      if (computeStatus(old, o.store.fifo(o.id)) !== 'stopped') throw new ShoalError('ALREADY_EXISTS', `container with id exists: ${o.id}`);
      await destroyContainer(o.store, old, { warn: o.warn, runPoststop: false });
    }
  }
  fs.mkdirSync(work, { recursive: true });
  const log = path.join(work, 'restore.log');
  fs.rmSync(log, { force: true });

  o.store.reserve(o.id);
  const state = initialState(o.id, bundle, rootfs, { ...config, ociVersion: d.ociVersion }, d.owner ?? '');
  let cgroup: CgroupHandle | null = null;
  const criuRoot = path.join(o.store.dir(o.id), 'criu-root');
  let mounted = false;
  try {
    const cgOpts = containerCgroupOptions(o.id, config);
    state.cgroup = planCgroup(cgOpts).toJSON();
    o.store.save(state);
    cgroup = createCgroup(cgOpts);

    // A fresh rootfs (containerd restores onto a new snapshot) lacks the mount points the
    // container's create made: CRIU mounts the external binds on them.
    makeBindTargets(rootfs, bundle, config.mounts ?? []);
    // CRIU pivots into --root, which must be a mount point: bind the rootfs onto one.
    fs.mkdirSync(criuRoot);
    await mountBind(rootfs, criuRoot);
    mounted = true;

    const pidFile = path.join(o.store.dir(o.id), 'restore.pid');
    const args = ['restore', '-D', image, '-W', work, '-o', log, '-v4', '--root', criuRoot, '--pidfile', pidFile];
    if (o.detach) args.push('--restore-detached');
    args.push(...commonFlags(o));
    // Restore the dumped cgroup tree under the new container cgroup.
    args.push('--cgroup-root', cgroup.path);
    for (const m of config.mounts ?? []) {
      if (!isBindMount(m) || !m.source) continue;
      args.push('--external', `mnt[${cleanDest(m.destination)}]:${path.resolve(bundle, m.source)}`);
    }
    for (const p of d.maskedFiles ?? []) args.push('--external', `mnt[${p}]:/dev/null`);
    // The old stdio's pipes and external files are re-plumbed onto ours (or o.stdio), as runc
    // does with its descriptors.json; each key once (stdout and stderr may share one file).
    const keys = d.stdioKeys ?? d.stdio.map((desc) => (desc.startsWith('pipe:') ? desc : null));
    const given = new Set<string>();
    keys.forEach((key, fd) => {
      if (!key || given.has(key)) return;
      given.add(key);
      args.push('--inherit-fd', `fd[${fd}]:${key}`);
    });
    // criu joins the container's cgroup first, so the restored tree (and its cgroup namespace)
    // starts there, as runc does.
    const procs = cgroup.procsFiles();
    const prefix = ['sh', '-c', 'p=$1; shift; for f in $p; do echo $$ > "$f" || exit 1; done; exec "$@"', 'sh', procs.join(' ')];
    const child = spawn(prefix[0], [...prefix.slice(1), criu, ...args], { stdio: o.stdio ?? ['inherit', 'inherit', 'inherit'] });
    const exited = childEnd(child, 'exit');
    let done: ChildEnd | undefined;
    exited.then((r) => (done = r));
    // Detached: criu exits once the tree runs. Attached: it writes the pid file, then waits.
    for (;;) {
      if (fs.existsSync(pidFile) && fs.readFileSync(pidFile, 'utf8').trim()) break;
      if (done) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    if (o.detach || !fs.existsSync(pidFile)) {
      const r = await exited;
      if (r.error) throw new ShoalError('INTERNAL', `restore: run ${criu}: ${r.error.message}`);
      if (r.code !== 0) throw criuFailure('restore', r.code, r.signal, log, '');
    }
    const pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
    if (!pid) throw new ShoalError('INTERNAL', `restore: criu wrote no pid to ${pidFile}`);
    state.pid = pid;
    state.startTime = procStat(pid)?.startTime ?? 0;
    state.phase = 'created';
    o.store.save(state);
    if (o.pidFile) writePidFile(o.pidFile, pid);
    mounted = false;
    if (!releaseRoot(criuRoot)) o.warn(`restore: could not unmount ${criuRoot}; unmount it before delete`);
    const exitCode = o.detach
      ? Promise.resolve(0)
      : exited.then((r) => (r.code ?? 128 + (r.signal ? SIGNALS[r.signal] ?? 0 : 0)));
    return { state, exitCode };
  } catch (e) {
    if (mounted && !releaseRoot(criuRoot)) {
      // Removing the state dir now would recurse into the rootfs: leave it for the operator.
      throw new ShoalError('INTERNAL', `${(e as Error).message}\n(restore: ${criuRoot} is still mounted; unmount it, then delete --force ${o.id})`);
    }
    if (!cgroup) state.cgroup = null;
    await destroyContainer(o.store, state, { warn: o.warn, runPoststop: false });
    throw e;
  }
}
