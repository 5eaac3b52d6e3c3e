/**
 * OCI bundles for conformance cases: a minimal typing of config.json (the suite is
 * runtime-agnostic and does not depend on the project's spec/ types), the default config every
 * case starts from, and writing a bundle directory (rootfs clone + config.json).
 */
import * as fs from 'fs';
import * as path from 'path';
import { cloneRootfs } from './rootfs';

/** One entry of config.json `mounts`. */
export interface Mount {
  destination: string;
  type?: string;
  source?: string;
  options?: string[];
}

/** A hook entry (config.json `hooks.*[]`). */
export interface Hook {
  path: string;
  args?: string[];
  env?: string[];
  timeout?: number;
}

/** config.json `process`. */
export interface Process {
  terminal?: boolean;
  consoleSize?: { height: number; width: number };
  user: { uid: number; gid: number; umask?: number; additionalGids?: number[] };
  args: string[];
  env?: string[];
  cwd: string;
  capabilities?: Partial<Record<'bounding' | 'effective' | 'inheritable' | 'permitted' | 'ambient', string[]>>;
  rlimits?: Array<{ type: string; hard: number; soft: number }>;
  noNewPrivileges?: boolean;
  oomScoreAdj?: number;
  apparmorProfile?: string;
  selinuxLabel?: string;
  scheduler?: Record<string, unknown>;
  ioPriority?: { class: string; priority: number };
  [k: string]: unknown;
}

/** config.json `linux`, loosely typed: cases set exactly what they test. */
export interface Linux {
  namespaces?: Array<{ type: string; path?: string }>;
  uidMappings?: Array<{ containerID: number; hostID: number; size: number }>;
  gidMappings?: Array<{ containerID: number; hostID: number; size: number }>;
  devices?: Array<{ path: string; type: string; major?: number; minor?: number; fileMode?: number; uid?: number; gid?: number }>;
  cgroupsPath?: string;
  resources?: Record<string, any>;
  sysctl?: Record<string, string>;
  seccomp?: Record<string, any>;
  rootfsPropagation?: string;
  maskedPaths?: string[];
  readonlyPaths?: string[];
  mountLabel?: string;
  [k: string]: unknown;
}

/** The subset of config.json the suite writes. */
export interface Config {
  ociVersion: string;
  process?: Process;
  root: { path: string; readonly?: boolean };
  hostname?: string;
  domainname?: string;
  mounts?: Mount[];
  hooks?: Partial<Record<'prestart' | 'createRuntime' | 'createContainer' | 'startContainer' | 'poststart' | 'poststop', Hook[]>>;
  annotations?: Record<string, string>;
  linux?: Linux;
  [k: string]: unknown;
}

/** The default capability set of `runc spec` (also docker's minimal set for tests). */
export const DEFAULT_CAPS = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];

/** The standard filesystems of runtime-spec config-linux.md "Default Filesystems", plus /sys. */
export function defaultMounts(): Mount[] {
  return [
    { destination: '/proc', type: 'proc', source: 'proc' },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
  ];
}

/**
 * The config every case starts from: a root container in new pid, network, ipc, uts and mount
 * namespaces running `/probe`, with the default mounts, no masked/readonly paths (cases add
 * them), and no cgroup settings.
 */
export function defaultConfig(): Config {
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: ['/probe'],
      env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'TERM=xterm'],
      cwd: '/',
      capabilities: {
        bounding: [...DEFAULT_CAPS], effective: [...DEFAULT_CAPS], permitted: [...DEFAULT_CAPS],
        inheritable: [...DEFAULT_CAPS], ambient: [...DEFAULT_CAPS],
      },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: 'rootfs', readonly: false },
    hostname: 'conformance',
    mounts: defaultMounts(),
    linux: {
      namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }],
    },
  };
}

/** A bundle on disk. */
export interface Bundle {
  /** Absolute bundle directory. */
  dir: string;
  /** Absolute rootfs directory (dir/rootfs). */
  rootfs: string;
  /** The config that was written to dir/config.json. */
  config: Config;
}

/**
 * Writes a bundle at `dir`: clones `baseRootfs` into dir/rootfs and writes `config` as
 * config.json. `dir` is made world-traversable (0755) so user-namespaced containers can reach
 * their rootfs.
 */
export function writeBundle(dir: string, baseRootfs: string, config: Config): Bundle {
  fs.mkdirSync(dir, { recursive: true });
  fs.chmodSync(dir, 0o755);
  const rootfs = path.join(dir, config.root.path);
  if (!fs.existsSync(rootfs)) cloneRootfs(baseRootfs, rootfs);
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 2));
  return { dir, rootfs, config };
}

/** Re-writes config.json of an existing bundle (e.g. after filling in a namespace path). */
export function rewriteConfig(b: Bundle): void {
  fs.writeFileSync(path.join(b.dir, 'config.json'), JSON.stringify(b.config, null, 2));
}
