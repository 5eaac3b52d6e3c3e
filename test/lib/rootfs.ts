/*
 * Busybox bundles for integration tests: the conformance suite's busybox rootfs (one template per
 * process, cloned per bundle) and a config.json close to `runc spec`'s default, minus the cgroup
 * mount, which this host's hybrid hierarchy makes runtime-specific.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { Linux, Process, Root, Spec } from '../../spec/src/config';
import { buildBusyboxRootfs, cloneRootfs } from '../../conformance/src/rootfs';

export { buildBusyboxRootfs, cloneRootfs };

let cachedTemplate: string | undefined;

/**
 * The busybox rootfs template of this process, built on first use and removed at exit. Callers
 * must not modify it (its files are hard-linked into every bundle): use `makeBundle`.
 */
export function busyboxTemplate(): string {
  if (cachedTemplate) return cachedTemplate;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-busybox-'));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return (cachedTemplate = buildBusyboxRootfs(path.join(dir, 'rootfs')));
}

/** Fields of config.json to replace; `process`, `linux` and `root` are merged one level deep. */
export type BundleOverrides = Omit<Partial<Spec>, 'process' | 'linux' | 'root'> & {
  process?: Partial<Process>;
  linux?: Partial<Linux>;
  root?: Partial<Root>;
};

/** The default busybox container config, like `runc spec` (no cgroup mount). */
export function defaultSpec(): Spec {
  return {
    ociVersion: '1.2.0',
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: ['sh', '-c', 'echo hello'],
      env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'TERM=xterm'],
      cwd: '/',
      capabilities: {
        bounding: ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'],
        effective: ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'],
        permitted: ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'],
      },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: 'rootfs', readonly: false },
    hostname: 'shoal-test',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      {
        destination: '/dev/pts',
        type: 'devpts',
        source: 'devpts',
        options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
      },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    ],
    linux: {
      namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }],
      maskedPaths: [
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
      ],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
}

/** Options of `makeBundle`. */
export interface BundleOptions {
  /** Directory to create the bundle in (default: a new temp dir). */
  dir?: string;
  /** Last edit of the config after overrides, for changes a merge cannot express (deletions). */
  edit?: (spec: Spec) => void;
}

/**
 * Creates a bundle directory holding config.json (defaultSpec + overrides) and its own clone of the
 * busybox rootfs, and returns its path. The caller removes it (fs.rmSync recursive).
 */
export function makeBundle(overrides: BundleOverrides = {}, opts: BundleOptions = {}): string {
  const template = busyboxTemplate();
  const dir = opts.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-bundle-'));
  fs.mkdirSync(dir, { recursive: true });
  const base = defaultSpec();
  const spec: Spec = {
    ...base,
    ...overrides,
    process: { ...base.process!, ...overrides.process },
    linux: { ...base.linux, ...overrides.linux },
    root: { ...base.root!, ...overrides.root },
  };
  opts.edit?.(spec);
  // A private tree per bundle (files hard-linked): containers may create and delete files in it.
  cloneRootfs(template, path.resolve(dir, spec.root!.path));
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(spec, null, 2));
  return dir;
}
