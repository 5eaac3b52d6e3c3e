/**
 * What the host offers, detected once per run: the cgroup layout (v1, hybrid or unified v2),
 * the runner's own namespaces (to tell "new" from "shared"), its capability bounding set and
 * no_new_privs, and the optional LSMs. Cases use it to pick expectations or to skip with a
 * stated environmental reason.
 */
import * as fs from 'fs';
import * as path from 'path';

/** Detected host facts. */
export interface HostInfo {
  /** 'v2' when /sys/fs/cgroup is cgroup2, 'hybrid' with v1 controllers plus a unified mount, else 'v1'. */
  cgroup: 'v1' | 'hybrid' | 'v2';
  /** v1 controller name -> mount point (e.g. memory -> /sys/fs/cgroup/memory). */
  v1: Record<string, string>;
  /** Mount point of the cgroup2 hierarchy, if any. */
  v2Mount: string | null;
  /** Controllers available in the v2 root (cgroup.controllers), when cgroup is 'v2'. */
  v2Controllers: string[];
  /** Inode numbers of the runner's own /proc/self/ns/* entries. */
  ns: Record<string, number>;
  /** The runner's CapBnd as a bigint. */
  capBnd: bigint;
  /** The runner's NoNewPrivs flag. */
  noNewPrivs: boolean;
  /** AppArmor is enabled in the kernel. */
  apparmor: boolean;
  /** SELinux is enabled (selinuxfs present). */
  selinux: boolean;
  /** The kernel supports time namespaces. */
  timeNs: boolean;
}

/** Reads the runner's namespace inode numbers. */
export function selfNamespaces(pid: number | 'self' = 'self'): Record<string, number> {
  const out: Record<string, number> = {};
  const dir = `/proc/${pid}/ns`;
  for (const n of fs.readdirSync(dir)) {
    try {
      out[n] = fs.statSync(path.join(dir, n)).ino;
    } catch {
      /* not accessible */
    }
  }
  return out;
}

/** Detects the host facts the cases depend on. */
export function detectHost(): HostInfo {
  const v1: Record<string, string> = {};
  let v2Mount: string | null = null;
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    const dash = f.indexOf('-');
    if (dash < 0) continue;
    const fstype = f[dash + 1];
    const mp = f[4];
    if (fstype === 'cgroup2' && !v2Mount) v2Mount = mp;
    if (fstype === 'cgroup') {
      for (const opt of (f[dash + 3] ?? '').split(',')) {
        if (['rw', 'ro', 'relatime', 'noexec', 'nosuid', 'nodev', 'clone_children'].includes(opt)) continue;
        if (opt.startsWith('release_agent')) continue;
        if (!v1[opt]) v1[opt] = mp;
      }
    }
  }
  const cgroup = v2Mount === '/sys/fs/cgroup' ? 'v2' : Object.keys(v1).length ? (v2Mount ? 'hybrid' : 'v1') : 'v2';
  let v2Controllers: string[] = [];
  if (cgroup === 'v2' && v2Mount) {
    try {
      v2Controllers = fs.readFileSync(path.join(v2Mount, 'cgroup.controllers'), 'utf8').trim().split(/\s+/);
    } catch {
      /* none */
    }
  }
  const status = fs.readFileSync('/proc/self/status', 'utf8');
  const field = (k: string) => (status.match(new RegExp(`^${k}:\\s*(\\S+)`, 'm')) ?? [])[1] ?? '0';
  const lsm = (() => {
    try {
      return fs.readFileSync('/sys/kernel/security/lsm', 'utf8');
    } catch {
      return '';
    }
  })();
  const aaEnabled = (() => {
    try {
      return fs.readFileSync('/sys/module/apparmor/parameters/enabled', 'utf8').trim() === 'Y';
    } catch {
      return false;
    }
  })();
  return {
    cgroup,
    v1,
    v2Mount,
    v2Controllers,
    ns: selfNamespaces(),
    capBnd: BigInt('0x' + field('CapBnd')),
    noNewPrivs: field('NoNewPrivs') === '1',
    apparmor: aaEnabled || lsm.includes('apparmor'),
    selinux: fs.existsSync('/sys/fs/selinux/enforce'),
    timeNs: fs.existsSync('/proc/self/ns/time'),
  };
}

/**
 * Whether this kernel can weight block I/O (blockIO.weight): a probe cgroup made in the blkio
 * hierarchy (v1) or the unified one (v2, with io enabled) shows blkio.weight / blkio.bfq.weight
 * or io.bfq.weight / io.weight. Kernels without BFQ (or CFQ) lack them; so does a v2 root that
 * does not delegate io. Undefined when it cannot be told (no hierarchy, mkdir refused).
 */
export function blkioWeightSupported(host: HostInfo): boolean | undefined {
  const v2 = host.cgroup === 'v2';
  const root = v2 ? host.v2Mount : host.v1.blkio;
  if (!root) return undefined;
  if (v2) {
    try {
      if (!fs.readFileSync(path.join(root, 'cgroup.subtree_control'), 'utf8').split(/\s+/).includes('io')) return undefined;
    } catch {
      return undefined;
    }
  }
  const probe = path.join(root, `conformance-blkio-probe-${process.pid}`);
  try {
    fs.mkdirSync(probe);
  } catch {
    return undefined;
  }
  try {
    const files = v2 ? ['io.bfq.weight', 'io.weight'] : ['blkio.weight', 'blkio.bfq.weight'];
    return files.some((f) => fs.existsSync(path.join(probe, f)));
  } finally {
    fs.rmdirSync(probe);
  }
}

/**
 * Path on the host of a cgroup interface file of process `pid` for a resource. `v1ctrl` names
 * the v1 controller hierarchy to use; on v2 the unified hierarchy is used. Returns null when the
 * process or hierarchy cannot be found.
 */
export function cgroupFileOf(host: HostInfo, pid: number, v1ctrl: string, file: string): string | null {
  let lines: string[];
  try {
    lines = fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n');
  } catch {
    return null;
  }
  for (const l of lines) {
    const [, ctrls, p] = l.match(/^\d+:([^:]*):(.*)$/) ?? [];
    if (ctrls === undefined) continue;
    if (host.cgroup === 'v2') {
      if (ctrls === '' && host.v2Mount) return path.join(host.v2Mount, p, file);
    } else if (ctrls.split(',').includes(v1ctrl) && host.v1[v1ctrl]) {
      return path.join(host.v1[v1ctrl], p, file);
    }
  }
  return null;
}

/** Cgroup path of `pid` in the v1 hierarchy `ctrl` (or the unified one on v2), or null. */
export function cgroupPathOf(host: HostInfo, pid: number, ctrl: string): string | null {
  try {
    for (const l of fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n')) {
      const [, ctrls, p] = l.match(/^\d+:([^:]*):(.*)$/) ?? [];
      if (ctrls === undefined) continue;
      if (host.cgroup === 'v2' ? ctrls === '' : ctrls.split(',').includes(ctrl)) return p;
    }
  } catch {
    /* gone */
  }
  return null;
}

/** Removes an (empty) cgroup directory under every hierarchy, ignoring errors; used by cleanup. */
export function removeCgroup(host: HostInfo, cgPath: string): void {
  if (!cgPath.startsWith('/')) return;
  const roots = host.cgroup === 'v2' ? [host.v2Mount!] : [...new Set(Object.values(host.v1)), ...(host.v2Mount ? [host.v2Mount] : [])];
  for (const r of roots) {
    // Children first: rmdir only succeeds on empty cgroups; the deepest remain if still busy.
    const parts = cgPath.split('/').filter(Boolean);
    for (let i = parts.length; i > 0; i--) {
      const q = path.join(r, ...parts.slice(0, i));
      if (!q.includes('conf-')) break;
      try {
        fs.rmdirSync(q);
      } catch {
        break;
      }
    }
  }
}
