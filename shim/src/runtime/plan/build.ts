import * as fs from 'fs';
import * as path from 'path';
import type { Spec, Mount, Hook, Process, IDMapping, Linux } from '../../../../spec/src/config';
import type { CgroupHandle } from '../cgroup/types';
import { ShoalError } from '../errors';
import { Op } from './ops';
import { PlanWriter } from './writer';
import { parseMountOptions, rootPropagation, MS, MOUNT_ATTR } from './mount-options';
import { encodeSeccomp } from './seccomp';
import { capsRecordArgs } from './caps';
import { trace } from '../trace';

/** OCI namespace type -> CLONE_NEW* flag. */
export const NAMESPACE_FLAGS: Record<string, number> = {
  pid: 0x20000000,
  network: 0x40000000,
  mount: 0x00020000,
  ipc: 0x08000000,
  uts: 0x04000000,
  user: 0x10000000,
  cgroup: 0x02000000,
  time: 0x00000080,
};

/** RLIMIT_* name -> resource number (asm-generic/resource.h). */
export const RLIMITS: Record<string, number> = {
  RLIMIT_CPU: 0, RLIMIT_FSIZE: 1, RLIMIT_DATA: 2, RLIMIT_STACK: 3, RLIMIT_CORE: 4, RLIMIT_RSS: 5,
  RLIMIT_NPROC: 6, RLIMIT_NOFILE: 7, RLIMIT_MEMLOCK: 8, RLIMIT_AS: 9, RLIMIT_LOCKS: 10,
  RLIMIT_SIGPENDING: 11, RLIMIT_MSGQUEUE: 12, RLIMIT_NICE: 13, RLIMIT_RTPRIO: 14, RLIMIT_RTTIME: 15,
};

/** The default devices every Linux container gets (runtime-spec config-linux.md). */
const DEFAULT_DEVICES = [
  { path: '/dev/null', type: 'c', major: 1, minor: 3 },
  { path: '/dev/zero', type: 'c', major: 1, minor: 5 },
  { path: '/dev/full', type: 'c', major: 1, minor: 7 },
  { path: '/dev/random', type: 'c', major: 1, minor: 8 },
  { path: '/dev/urandom', type: 'c', major: 1, minor: 9 },
  { path: '/dev/tty', type: 'c', major: 5, minor: 0 },
];

/** What the plan needs besides config.json. */
export interface PlanContext {
  /** "run" keeps the helper as the init's parent to report its exit status. */
  mode: 'create' | 'run';
  bundle: string;
  /** Absolute rootfs path on the host. */
  rootfs: string;
  /** exec.fifo path; absent for processes that start at once (exec). */
  execFifo?: string;
  /** Instead of exec.fifo: the init waits after READY until the runtime sends 'G' (run with a terminal or a pid file). */
  startSync?: boolean;
  /** Run mode: the helper reports the process's exit on the sync channel before it ends. */
  reportExit?: boolean;
  /**
   * Only the cgroup2 directory exists yet: the runtime makes the rest while the init is set up,
   * and says so on the sync channel with 'D' once the directories exist (Helper.cgroupDirsReady)
   * and 'K' once they have their limits (Helper.cgroupsReady).
   */
  cgroupsLater?: boolean;
  cgroup: CgroupHandle | null;
  /** Whether the kernel has mount_setattr (default: from its version); tests set it. */
  mountSetattr?: boolean;
  consoleSocket?: string;
  preserveFds: number;
  /** LISTEN_FDS passed to shoal (socket activation): these fds follow stdio. */
  listenFds: number;
  noPivot: boolean;
  /** Whether the runtime must be asked to run its hooks (prestart, createRuntime). */
  hookSync: boolean;
}

/** An rlimit value as the helper's decimal string; "-1" (RLIM_INFINITY) when unset or out of range. */
function uint64(v: number | undefined): string {
  if (v === undefined || v < 0 || v >= 2 ** 63) return '-1';
  return String(Math.floor(v));
}

/** ioPriority.class -> IOPRIO_CLASS_* (linux/ioprio.h). */
export const IOPRIO_CLASSES: Record<string, number> = { IOPRIO_CLASS_RT: 1, IOPRIO_CLASS_BE: 2, IOPRIO_CLASS_IDLE: 3 };

/** scheduler.policy -> SCHED_* (linux/sched.h). */
export const SCHED_POLICIES: Record<string, number> = {
  SCHED_OTHER: 0, SCHED_FIFO: 1, SCHED_RR: 2, SCHED_BATCH: 3, SCHED_ISO: 4, SCHED_IDLE: 5, SCHED_DEADLINE: 6,
};

/** scheduler.flags -> SCHED_FLAG_* (linux/sched.h). */
export const SCHED_FLAGS: Record<string, number> = {
  SCHED_FLAG_RESET_ON_FORK: 0x01,
  SCHED_FLAG_RECLAIM: 0x02,
  SCHED_FLAG_DL_OVERRUN: 0x04,
  SCHED_FLAG_KEEP_POLICY: 0x08,
  SCHED_FLAG_KEEP_PARAMS: 0x10,
  SCHED_FLAG_UTIL_CLAMP_MIN: 0x20,
  SCHED_FLAG_UTIL_CLAMP_MAX: 0x40,
};

/** Whether AppArmor is enabled on this host (securityfs entry and the module parameter, as runc). */
export function apparmorEnabled(): boolean {
  try {
    return fs.existsSync('/sys/kernel/security/apparmor') && fs.readFileSync('/sys/module/apparmor/parameters/enabled', 'utf8').startsWith('Y');
  } catch {
    return false;
  }
}

/** Whether SELinux is enabled on this host (selinuxfs mounted at /sys/fs/selinux). */
export function selinuxEnabled(): boolean {
  return fs.existsSync('/sys/fs/selinux/enforce');
}

/** id mappings as the text of /proc/<pid>/uid_map ("containerID hostID size" lines). */
export function idMapText(m: IDMapping[] | undefined): string {
  return (m ?? []).map((x) => `${x.containerID} ${x.hostID} ${x.size}\n`).join('');
}

/**
 * A cpu list of execCPUAffinity ("0-3,7") as the helper's explicit list ("0,1,2,3,7"). Throws on a
 * malformed list.
 */
export function cpuList(spec: string, what: string): string {
  const cpus: number[] = [];
  for (const part of spec.split(',')) {
    const m = /^\s*(\d+)(?:\s*-\s*(\d+))?\s*$/.exec(part);
    if (!m) throw new ShoalError('INVALID_CONFIG', `config.json: process.execCPUAffinity.${what}: invalid cpu list ${JSON.stringify(spec)}`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo || hi >= 8192) throw new ShoalError('INVALID_CONFIG', `config.json: process.execCPUAffinity.${what}: invalid cpu range ${part.trim()}`);
    for (let c = lo; c <= hi; c++) cpus.push(c);
  }
  return cpus.join(',');
}

/**
 * OP_CPU_AFFINITY for execCPUAffinity (exec only: the spec does not apply it to the init).
 * "initial" is applied by the helper before it joins the cgroup; "final" after. With only
 * "initial", the final affinity is reset to every cpu the cgroup allows ("*"), as runc does.
 */
export function addCpuAffinity(w: PlanWriter, proc: Process): void {
  const a = proc.execCPUAffinity;
  if (!a || (!a.initial && !a.final)) return;
  const initial = a.initial ? cpuList(a.initial, 'initial') : '';
  const final = a.final ? cpuList(a.final, 'final') : initial ? '*' : '';
  w.add(Op.CPU_AFFINITY, initial, final);
}

/**
 * process.ioPriority, process.scheduler, process.apparmorProfile and process.selinuxLabel
 * (validated as runc does). Shared by create and exec.
 */
export function addProcessAttributes(w: PlanWriter, proc: Process): void {
  if (proc.ioPriority) {
    const cls = IOPRIO_CLASSES[proc.ioPriority.class];
    if (cls === undefined) throw new ShoalError('INVALID_CONFIG', `config.json: process.ioPriority.class: unknown ${proc.ioPriority.class}`);
    const p = proc.ioPriority.priority;
    if (!Number.isInteger(p) || p < 0 || p > 7) throw new ShoalError('INVALID_CONFIG', `config.json: process.ioPriority.priority: ${p} is not in 0..7`);
    w.add(Op.IOPRIO, cls, p);
  }
  const sc = proc.scheduler;
  if (sc) {
    const policy = SCHED_POLICIES[sc.policy];
    if (policy === undefined) throw new ShoalError('INVALID_CONFIG', `config.json: process.scheduler.policy: unknown ${sc.policy}`);
    const nice = sc.nice ?? 0;
    if (!Number.isInteger(nice) || nice < -20 || nice > 19) throw new ShoalError('INVALID_CONFIG', `config.json: process.scheduler.nice: ${nice} is not in -20..19`);
    const prio = sc.priority ?? 0;
    if (prio !== 0 && sc.policy !== 'SCHED_FIFO' && sc.policy !== 'SCHED_RR')
      throw new ShoalError('INVALID_CONFIG', 'config.json: process.scheduler.priority: only for SCHED_FIFO or SCHED_RR');
    if (sc.policy !== 'SCHED_DEADLINE' && (sc.runtime || sc.deadline || sc.period))
      throw new ShoalError('INVALID_CONFIG', 'config.json: process.scheduler.runtime/deadline/period: only for SCHED_DEADLINE');
    let flags = 0;
    for (const f of sc.flags ?? []) {
      const v = SCHED_FLAGS[f];
      if (v === undefined) throw new ShoalError('INVALID_CONFIG', `config.json: process.scheduler.flags: unknown ${f}`);
      flags |= v;
    }
    w.add(Op.SCHEDULER, policy, nice, prio, flags, sc.runtime ?? 0, sc.deadline ?? 0, sc.period ?? 0);
  }
  if (proc.apparmorProfile) {
    if (!apparmorEnabled())
      throw new ShoalError('INVALID_CONFIG', `config.json: process.apparmorProfile: ${proc.apparmorProfile} requested but apparmor is not enabled on this host`);
    w.add(Op.APPARMOR, proc.apparmorProfile);
  }
  if (proc.selinuxLabel) {
    if (selinuxEnabled()) w.add(Op.SELINUX_LABEL, proc.selinuxLabel);
    else trace(`selinux is not enabled: ignoring process.selinuxLabel ${proc.selinuxLabel}`);
  }
}

/** Filesystems that take an SELinux context= option for linux.mountLabel (as runc labels them). */
const LABELED_FS = new Set(['tmpfs', 'devpts', 'mqueue', 'shm']);

/**
 * The idmap records of one bind mount: the mappings of the mount, or the container's user
 * namespace mappings when the mount only says idmap/ridmap (runtime-spec: MAY; error without
 * a user namespace). Returns the index for OP_MOUNT, or -1 when the mount is not idmapped.
 */
function idmapFor(w: PlanWriter, m: Mount, source: string, o: ReturnType<typeof parseMountOptions>, linux: Linux, userns: boolean, next: number): number {
  const hasMaps = !!(m.uidMappings?.length || m.gidMappings?.length);
  if (!o.idmap && !hasMaps) return -1;
  const where = `config.json: mounts[${m.destination}]`;
  if (!(o.bind || m.type === 'bind')) throw new ShoalError('INVALID_CONFIG', `${where}: idmapped mounts are only supported for bind mounts`);
  let uid = m.uidMappings, gid = m.gidMappings;
  if (hasMaps && (!uid?.length || !gid?.length)) throw new ShoalError('INVALID_CONFIG', `${where}: uidMappings and gidMappings must be given together`);
  if (!hasMaps) {
    if (!userns || !linux.uidMappings?.length || !linux.gidMappings?.length)
      throw new ShoalError('INVALID_CONFIG', `${where}: ${o.idmap} without uidMappings/gidMappings needs a user namespace with mappings`);
    uid = linux.uidMappings;
    gid = linux.gidMappings;
  }
  const recursiveTree = (o.flags & MS.REC) !== 0;
  w.add(Op.IDMAP_MOUNT, next, source, idMapText(uid), idMapText(gid), recursiveTree ? 1 : 0, o.idmap === 'ridmap' ? 1 : 0);
  return next;
}

/**
 * The records of a cgroup mount: a cgroup2 filesystem (new cgroup namespace, or no cgroup), a
 * bind of the container's v2 cgroup, or on v1/hybrid hosts a tmpfs with one bind per hierarchy.
 */
function cgroupMounts(w: PlanWriter, m: Mount, ctx: PlanContext, newCgroupNs: boolean): void {
  const o = parseMountOptions(m.options);
  const ro = o.flags & MS.RDONLY;
  const base = MS.NOSUID | MS.NODEV | MS.NOEXEC;
  const cg = ctx.cgroup;
  // A bind of the container's cgroup directories needs them to exist (made while the init is set
  // up: CGROUPS_LATER); a cgroup2 filesystem seen from a new cgroup namespace needs the init in
  // its cgroup, limits and all, first.
  const fsMount = !cg || (cg.mode === 'v2' && newCgroupNs);
  if (cg) w.add(ctx.cgroupsLater && !fsMount ? Op.AWAIT_CGROUP_DIRS : Op.AWAIT_CGROUPS);
  if (!cg || cg.mode === 'v2') {
    if (fsMount) {
      w.add(Op.MOUNT, 'cgroup2', m.destination, 'cgroup2', base | (o.flags & ~MS.BIND & ~MS.REC), o.propagation, '', 'fs');
    } else {
      w.add(Op.MOUNT, path.join('/sys/fs/cgroup', cg.path), m.destination, '', MS.BIND | MS.REC | base | ro, o.propagation, '', 'bind');
    }
    return;
  }
  // v1 and hybrid: a tmpfs holding one bind per hierarchy of this container's cgroup (the tmpfs
  // itself stays writable, as runc leaves it). With mount_setattr (Linux 5.12) the binds get their
  // flags in two calls for the whole tree (recursively, then writable again on the tmpfs alone),
  // rather than a remount of each.
  const setattr = ctx.mountSetattr ?? hasMountSetattr();
  w.add(Op.MOUNT, 'tmpfs', m.destination, 'tmpfs', base, 0, 'mode=755', 'fs');
  for (const dir of cg.dirs()) {
    const rel = dir.slice('/sys/fs/cgroup/'.length);
    const hierarchy = cg.path === '/' ? rel : rel.slice(0, rel.length - cg.path.replace(/^\/+/, '').length).replace(/\/+$/, '');
    // runc does not show the hybrid host's cgroup2 mount (hugetlb only) inside v1 containers.
    if (!hierarchy || hierarchy.includes('/') || hierarchy === 'unified') continue;
    w.add(Op.MOUNT, dir, `${m.destination}/${hierarchy}`, '', MS.BIND | (setattr ? 0 : base | ro), 0, '', 'bind');
  }
  if (setattr) {
    const attrs = MOUNT_ATTR.NOSUID | MOUNT_ATTR.NODEV | MOUNT_ATTR.NOEXEC;
    w.add(Op.MOUNT, '', m.destination, '', MS.REC, 0, '', 'attr', attrs | (ro ? MOUNT_ATTR.RDONLY : 0), 0);
    if (ro) w.add(Op.MOUNT, '', m.destination, '', 0, 0, '', 'attr', 0, MOUNT_ATTR.RDONLY);
  }
}

/** The kernel's release ("6.1.0-18-amd64"), as os.release() says it (without loading the os module). */
function kernelRelease(): string {
  try {
    return fs.readFileSync('/proc/sys/kernel/osrelease', 'latin1').trim();
  } catch {
    return (require('os') as typeof import('os')).release();
  }
}

/** Whether the kernel has mount_setattr(2) (Linux 5.12). */
export function hasMountSetattr(release: string = kernelRelease()): boolean {
  const [major, minor] = release.split('.').map((x) => parseInt(x, 10));
  return major > 5 || (major === 5 && minor >= 12);
}

/** OP_HOOK arguments: stage, path, timeout, argc, args..., env... */
function hookArgs(stage: string, h: Hook): (string | number)[] {
  const args = h.args && h.args.length ? h.args : [h.path];
  return [stage, h.path, h.timeout ?? 0, args.length, ...args, ...(h.env ?? [])];
}

/** HOME from the container's /etc/passwd for uid, as runc does when the env has none. */
function homeFor(rootfs: string, uid: number): string {
  try {
    const passwd = fs.readFileSync(path.join(rootfs, 'etc/passwd'), 'utf8');
    for (const line of passwd.split('\n')) {
      const f = line.split(':');
      if (f.length >= 6 && Number(f[2]) === uid) return f[5] || '/';
    }
  } catch {
    /* no passwd: default below */
  }
  return '/';
}

/** RLIMIT records (applied by the helper's parent half with prlimit on the child). */
export function addRlimits(w: PlanWriter, proc: Process): void {
  for (const r of proc.rlimits ?? []) {
    const n = RLIMITS[r.type];
    if (n === undefined) throw new ShoalError('INVALID_CONFIG', `config.json: process.rlimits: unknown type ${r.type}`);
    w.add(Op.RLIMIT, n, uint64(r.soft), uint64(r.hard));
  }
}

/**
 * The records that turn the helper into the process: preserved fds, user and groups,
 * capabilities, no_new_privs, args, env (HOME filled in from the rootfs's passwd as runc does,
 * LISTEN_FDS for socket activation), cwd and umask. Shared by create and exec.
 */
export function addProcess(w: PlanWriter, proc: Process, o: { rootfs: string; passFds: number; listenFds: number }): void {
  w.add(Op.PRESERVE_FDS, o.passFds);
  const user = proc.user ?? { uid: 0, gid: 0 };
  w.add(Op.USER, user.uid ?? 0, user.gid ?? 0, ...(user.additionalGids ?? []));
  if (proc.capabilities) w.add(Op.CAPS, ...capsRecordArgs(proc.capabilities));
  else w.add(Op.CAPS, '0', '0', '0', '0', '0');
  if (proc.noNewPrivileges) w.add(Op.NO_NEW_PRIVS);
  if (!proc.args || proc.args.length === 0) throw new ShoalError('INVALID_CONFIG', 'config.json: process.args: must be a non-empty array');
  w.add(Op.ARGS, ...proc.args);
  const env = [...(proc.env ?? [])];
  if (!env.some((e) => e.startsWith('HOME='))) env.push(`HOME=${homeFor(o.rootfs, user.uid ?? 0)}`);
  if (o.listenFds > 0) env.push(`LISTEN_FDS=${o.listenFds}`, 'LISTEN_PID=1');
  w.add(Op.ENV, ...env);
  w.add(Op.CWD, proc.cwd || '/');
  w.add(Op.UMASK, (user.umask ?? 0o22).toString(8));
  addProcessAttributes(w, proc);
}

/**
 * Compile config.json into the helper's plan. The order of the child-phase records is the order
 * the helper performs them; see native/helper/init.c.
 */
export function buildPlan(spec: Spec, ctx: PlanContext): PlanWriter {
  const w = new PlanWriter();
  const linux = spec.linux ?? {};
  const proc = spec.process;
  if (!proc) throw new ShoalError('INVALID_CONFIG', 'config.json: process: required to create a container');

  // --- parent phase ---
  w.add(Op.MODE, ctx.mode);
  let cloneFlags = 0;
  let userns = false;
  let newCgroupNs = false;
  for (const ns of linux.namespaces ?? []) {
    const flag = NAMESPACE_FLAGS[ns.type];
    if (flag === undefined) throw new ShoalError('INVALID_CONFIG', `config.json: linux.namespaces: unknown type ${ns.type}`);
    if (ns.type === 'user') userns = true;
    if (ns.path) {
      w.add(Op.JOIN_NS, ns.type, ns.path);
    } else if (ns.type === 'cgroup') {
      newCgroupNs = true;
    } else {
      cloneFlags |= flag;
    }
  }
  w.add(Op.CLONE_FLAGS, cloneFlags);
  const v2Procs = ctx.cgroup?.cgroup2ProcsFile();
  for (const f of ctx.cgroup?.procsFiles() ?? []) w.add(Op.CGROUP_PROCS, f, f === v2Procs ? '2' : '1');
  if (ctx.cgroupsLater && ctx.cgroup) w.add(Op.CGROUPS_LATER);
  if (proc.oomScoreAdj !== undefined) w.add(Op.OOM_SCORE_ADJ, proc.oomScoreAdj);
  addRlimits(w, proc);
  if (cloneFlags & NAMESPACE_FLAGS.user) {
    if (linux.uidMappings?.length) w.add(Op.UID_MAP, idMapText(linux.uidMappings));
    if (linux.gidMappings?.length) w.add(Op.GID_MAP, idMapText(linux.gidMappings));
  }
  if (cloneFlags & NAMESPACE_FLAGS.time && linux.timeOffsets) {
    const lines = Object.entries(linux.timeOffsets)
      .map(([clock, o]) => `${clock} ${o.secs ?? 0} ${o.nanosecs ?? 0}\n`)
      .join('');
    w.add(Op.TIME_OFFSETS, lines);
  }
  if (newCgroupNs) w.add(Op.UNSHARE_CGROUPNS);

  // --- child phase ---
  w.add(Op.ROOTFS, ctx.rootfs);
  w.add(Op.ROOTFS_PROPAGATION, rootPropagation(linux.rootfsPropagation));
  if (ctx.consoleSocket && proc.terminal) w.add(Op.CONSOLE_SOCKET, ctx.consoleSocket, proc.consoleSize?.height ?? 0, proc.consoleSize?.width ?? 0);
  if (ctx.execFifo) w.add(Op.EXEC_FIFO, ctx.execFifo);
  else if (ctx.startSync) w.add(Op.START_SYNC);
  if (ctx.reportExit && ctx.mode === 'run') w.add(Op.REPORT_EXIT);
  if (linux.seccomp) encodeSeccomp(w, linux.seccomp);

  let devBind = false;
  let devpts = false;
  let idmaps = 0;
  const mountLabel = linux.mountLabel && selinuxEnabled() ? linux.mountLabel : '';
  if (linux.mountLabel && !mountLabel) trace(`selinux is not enabled: ignoring linux.mountLabel ${linux.mountLabel}`);
  for (const m of spec.mounts ?? []) {
    if (!m.destination) continue;
    const type = m.type ?? '';
    if (type === 'cgroup' || type === 'cgroup2') {
      cgroupMounts(w, m, ctx, newCgroupNs);
      continue;
    }
    const o = parseMountOptions(m.options);
    const bind = o.bind || type === 'bind';
    let source = m.source ?? '';
    if (bind && source && !path.isAbsolute(source)) source = path.resolve(ctx.bundle, source);
    if (bind && path.normalize(m.destination) === '/dev') devBind = true;
    if (type === 'devpts' && path.normalize(m.destination) === '/dev/pts') devpts = true;
    const idmap = idmapFor(w, m, source, o, linux, userns, idmaps);
    if (idmap >= 0) idmaps++;
    if (o.tmpcopyup && (bind || type !== 'tmpfs')) throw new ShoalError('INVALID_CONFIG', `config.json: mounts[${m.destination}]: tmpcopyup needs a tmpfs mount`);
    let data = o.data;
    if (mountLabel && !bind && LABELED_FS.has(type)) data = [data, `context="${mountLabel}"`].filter(Boolean).join(',');
    w.add(
      Op.MOUNT, source, m.destination, bind ? '' : type, o.flags | (bind ? MS.BIND : 0), o.propagation, data, bind ? 'bind' : 'fs',
      o.recAttrSet, o.recAttrClr, idmap, o.tmpcopyup ? 1 : 0,
    );
  }
  if (!devBind) {
    const seen = new Set<string>();
    for (const d of linux.devices ?? []) {
      seen.add(path.normalize(d.path));
      w.add(Op.DEVICE, d.path, d.type, d.major ?? 0, d.minor ?? 0, (d.fileMode ?? 0o666).toString(8), d.uid ?? 0, d.gid ?? 0);
    }
    for (const d of DEFAULT_DEVICES) {
      if (!seen.has(d.path)) w.add(Op.DEVICE, d.path, d.type, d.major, d.minor, '666', 0, 0);
    }
    w.add(Op.SYMLINK, '/proc/self/fd', '/dev/fd');
    w.add(Op.SYMLINK, '/proc/self/fd/0', '/dev/stdin');
    w.add(Op.SYMLINK, '/proc/self/fd/1', '/dev/stdout');
    w.add(Op.SYMLINK, '/proc/self/fd/2', '/dev/stderr');
    if (fs.existsSync('/proc/kcore')) w.add(Op.SYMLINK, '/proc/kcore', '/dev/core');
    if (devpts) w.add(Op.SYMLINK, 'pts/ptmx', '/dev/ptmx');
  }

  const hooks = spec.hooks ?? {};
  // The seccomp listener gets the container state: ask the runtime for it as for hooks.
  if (ctx.hookSync || linux.seccomp?.listenerPath) w.add(Op.HOOK_SYNC);
  for (const h of hooks.createContainer ?? []) w.add(Op.HOOK, ...hookArgs('createContainer', h));
  w.add(Op.PIVOT, ctx.noPivot ? 'chroot' : 'pivot');
  if (proc.terminal && ctx.consoleSocket) w.add(Op.DEV_CONSOLE);
  if (spec.root?.readonly) w.add(Op.READONLY_ROOT);
  if (spec.hostname !== undefined && spec.hostname !== '') w.add(Op.HOSTNAME, spec.hostname);
  if (spec.domainname !== undefined && spec.domainname !== '') w.add(Op.DOMAINNAME, spec.domainname);
  for (const [k, v] of Object.entries(linux.sysctl ?? {})) w.add(Op.SYSCTL, k, v);
  for (const p of linux.readonlyPaths ?? []) w.add(Op.READONLY_PATH, p);
  for (const p of linux.maskedPaths ?? []) w.add(Op.MASK, p);
  if (linux.personality?.domain) {
    const domains: Record<string, number> = { LINUX: 0, LINUX32: 8 };
    const d = domains[linux.personality.domain];
    if (d === undefined) throw new ShoalError('INVALID_CONFIG', `config.json: linux.personality.domain: unknown ${linux.personality.domain}`);
    w.add(Op.PERSONALITY, d);
  }
  for (const h of hooks.startContainer ?? []) w.add(Op.HOOK, ...hookArgs('startContainer', h));

  addProcess(w, proc, { rootfs: ctx.rootfs, passFds: ctx.preserveFds + ctx.listenFds, listenFds: ctx.listenFds });
  return w;
}
