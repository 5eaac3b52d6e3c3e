/**
 * The config.json written by `shoal spec`: the same content `runc spec` produces (runc 1.2+),
 * with ociVersion "1.2.0" and hostname "shoal".
 */
import type { Mount, Spec } from './config';

/** The runtime-spec version shoal writes into generated configs. */
export const OCI_VERSION = '1.2.0';

/** Options for defaultSpec. */
export interface DefaultSpecOptions {
  /** Produce the `runc spec --rootless` variant (user namespace mapping the current ids). */
  rootless?: boolean;
  /** Include a cgroup namespace (runc does only on cgroup v2 hosts). Defaults to true. */
  cgroupNamespace?: boolean;
  /** Host uid mapped to root in the rootless variant. Defaults to process.geteuid(). */
  uid?: number;
  /** Host gid mapped to root in the rootless variant. Defaults to process.getegid(). */
  gid?: number;
}

const DEFAULT_CAPS = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];

/** Paths runc masks (bind-mounts /dev/null or an empty tmpfs over). */
export const DEFAULT_MASKED_PATHS: readonly string[] = [
  '/proc/acpi',
  '/proc/asound',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/sys/firmware',
  '/proc/scsi',
  '/sys/devices/virtual/tpm',
];

/** Paths runc remounts read-only. */
export const DEFAULT_READONLY_PATHS: readonly string[] = [
  '/proc/bus',
  '/proc/fs',
  '/proc/irq',
  '/proc/sys',
  '/proc/sysrq-trigger',
];

function defaultMounts(): Mount[] {
  return [
    { destination: '/proc', type: 'proc', source: 'proc' },
    {
      destination: '/dev',
      type: 'tmpfs',
      source: 'tmpfs',
      options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'],
    },
    {
      destination: '/dev/pts',
      type: 'devpts',
      source: 'devpts',
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
    },
    {
      destination: '/dev/shm',
      type: 'tmpfs',
      source: 'shm',
      options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'],
    },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    {
      destination: '/sys/fs/cgroup',
      type: 'cgroup',
      source: 'cgroup',
      options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'],
    },
  ];
}

/**
 * A fresh default config (a new object each call; callers may mutate it).
 *
 * Rootful: namespaces pid, network, ipc, uts, mount (+ cgroup), a deny-all device cgroup rule.
 * Rootless (as runc's ToRootless): the network namespace is dropped and a user namespace is
 * added that maps the current euid/egid to root; /sys becomes a read-only rbind of the host's
 * /sys (sysfs cannot be mounted without a network namespace owned by the user namespace);
 * uid=/gid= mount options are removed; `linux.resources` is dropped. The cgroup namespace is
 * kept, as runc keeps it.
 */
export function defaultSpec(opts: DefaultSpecOptions = {}): Spec {
  const spec: Spec = {
    ociVersion: OCI_VERSION,
    process: {
      terminal: true,
      user: { uid: 0, gid: 0 },
      args: ['sh'],
      env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'TERM=xterm'],
      cwd: '/',
      capabilities: {
        bounding: [...DEFAULT_CAPS],
        effective: [...DEFAULT_CAPS],
        permitted: [...DEFAULT_CAPS],
      },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: 'rootfs', readonly: true },
    hostname: 'shoal',
    mounts: defaultMounts(),
    linux: {
      resources: { devices: [{ allow: false, access: 'rwm' }] },
      namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }],
      maskedPaths: [...DEFAULT_MASKED_PATHS],
      readonlyPaths: [...DEFAULT_READONLY_PATHS],
    },
  };
  const linux = spec.linux!;
  if (opts.cgroupNamespace !== false) linux.namespaces!.push({ type: 'cgroup' });
  if (opts.rootless) toRootless(spec, opts.uid ?? process.geteuid?.() ?? 0, opts.gid ?? process.getegid?.() ?? 0);
  return spec;
}

/** Apply runc's rootless conversion to a default spec in place. */
function toRootless(spec: Spec, uid: number, gid: number): void {
  const { resources: _dropped, namespaces = [], ...rest } = spec.linux!;
  // Same key order as runc's output: mappings first.
  spec.linux = {
    uidMappings: [{ containerID: 0, hostID: uid, size: 1 }],
    gidMappings: [{ containerID: 0, hostID: gid, size: 1 }],
    namespaces: [...namespaces.filter((ns) => ns.type !== 'network' && ns.type !== 'user'), { type: 'user' }],
    ...rest,
  };
  spec.mounts = (spec.mounts ?? []).map((m) => {
    if (m.destination.replace(/\/+$/, '') === '/sys') {
      return { destination: '/sys', type: 'none', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'] };
    }
    if (!m.options) return m;
    return { ...m, options: m.options.filter((o) => !o.startsWith('uid=') && !o.startsWith('gid=')) };
  });
}
