/*
 * Which cgroup layout this host has: pure v2, hybrid (v1 controllers + a cgroup2 mount, usually
 * at /sys/fs/cgroup/unified) or pure v1, and where each hierarchy is mounted. Everything comes
 * from one read of /proc/self/mountinfo, cached for the life of the process.
 */
import * as fs from 'fs';
import * as path from 'path';
import { ShoalError } from '../errors';
import type { CgroupMode } from './types';

/** One mounted cgroup hierarchy. */
export interface Hierarchy {
  /**
   * Identity of the hierarchy, matching the second field of /proc/<pid>/cgroup with its items
   * sorted: "cpu", "cpu,cpuacct", "name=systemd"; "" for the cgroup2 (unified) hierarchy.
   */
  key: string;
  /** 1 for a cgroup v1 hierarchy, 2 for the unified one. */
  version: 1 | 2;
  /** Absolute mount point, e.g. "/sys/fs/cgroup/memory". */
  mountpoint: string;
  /** v1 controllers bound to it ([] for named hierarchies and for v2; see v2Controllers()). */
  controllers: string[];
}

/** The host's cgroup layout. */
export interface CgroupLayout {
  mode: CgroupMode;
  /** Every hierarchy a container joins: the v1 ones in mount order, then the unified one. */
  hierarchies: Hierarchy[];
  /** The cgroup2 hierarchy, if mounted (always in 'v2' mode; in 'hybrid' mode it has few or no controllers). */
  unified?: Hierarchy;
  /** v1 controller name → hierarchy (empty in 'v2' mode). */
  byController: Map<string, Hierarchy>;
}

/** v1 controller names the kernel can bind to a hierarchy (the rest of the superoptions are flags). */
const V1_CONTROLLERS = new Set([
  'cpu', 'cpuacct', 'cpuset', 'memory', 'devices', 'freezer', 'net_cls', 'net_prio', 'blkio',
  'perf_event', 'hugetlb', 'pids', 'rdma', 'misc', 'debug',
]);

/** Undo mountinfo's octal escapes ("\040" for a space). */
export function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Sort the comma-separated items of a /proc/<pid>/cgroup controller field. */
export function normalizeKey(field: string): string {
  return field === '' ? '' : field.split(',').filter(Boolean).sort().join(',');
}

/**
 * Build the layout from the text of /proc/self/mountinfo (pure; exported for tests).
 * Duplicate mounts of one hierarchy keep the first whose root is "/", preferring /sys/fs/cgroup.
 */
export function parseMountinfo(text: string): CgroupLayout {
  const v1 = new Map<string, { h: Hierarchy; score: number }>();
  let unified: { h: Hierarchy; score: number } | undefined;
  for (const line of text.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const pre = line.slice(0, sep).split(' ');
    const post = line.slice(sep + 3).split(' ');
    const fstype = post[0];
    if (fstype !== 'cgroup' && fstype !== 'cgroup2') continue;
    const root = unescapeMountinfo(pre[3] ?? '');
    const mountpoint = unescapeMountinfo(pre[4] ?? '');
    // Prefer mounts of the hierarchy root, then the conventional location.
    const score = (root === '/' ? 2 : 0) + (mountpoint.startsWith('/sys/fs/cgroup') ? 1 : 0);
    if (fstype === 'cgroup2') {
      if (!unified || score > unified.score) {
        unified = { h: { key: '', version: 2, mountpoint, controllers: [] }, score };
      }
      continue;
    }
    const items = (post[2] ?? '').split(',').filter((o) => V1_CONTROLLERS.has(o) || o.startsWith('name='));
    if (items.length === 0) continue;
    const key = normalizeKey(items.join(','));
    const prev = v1.get(key);
    if (!prev || score > prev.score) {
      v1.set(key, { h: { key, version: 1, mountpoint, controllers: items.filter((o) => !o.startsWith('name=')) }, score });
    }
  }
  const hierarchies = [...v1.values()].map((e) => e.h);
  const byController = new Map<string, Hierarchy>();
  for (const h of hierarchies) for (const c of h.controllers) byController.set(c, h);
  if (hierarchies.length === 0 && !unified) {
    throw new ShoalError('UNSUPPORTED', 'no cgroup filesystem is mounted');
  }
  let mode: CgroupMode;
  if (hierarchies.length === 0) mode = 'v2';
  else mode = unified ? 'hybrid' : 'v1';
  if (unified) hierarchies.push(unified.h);
  return { mode, hierarchies, unified: unified?.h, byController };
}

let cachedLayout: CgroupLayout | undefined;
let cachedV2Controllers: Set<string> | undefined;
let cachedOwn: Map<string, string> | undefined;

/** The host's cgroup layout (reads /proc/self/mountinfo once per process). */
export function detectCgroups(): CgroupLayout {
  if (!cachedLayout) cachedLayout = parseMountinfo(fs.readFileSync('/proc/self/mountinfo', 'utf8'));
  return cachedLayout;
}

/** The cgroup mode of this host: 'v2', 'hybrid' or 'v1'. */
export function cgroupMode(): CgroupMode {
  return detectCgroups().mode;
}

/** Controllers available at the root of the unified hierarchy (its cgroup.controllers), cached. */
export function v2Controllers(layout: CgroupLayout = detectCgroups()): Set<string> {
  if (!cachedV2Controllers) {
    let text = '';
    if (layout.unified) {
      try {
        text = fs.readFileSync(path.join(layout.unified.mountpoint, 'cgroup.controllers'), 'utf8');
      } catch {
        text = '';
      }
    }
    cachedV2Controllers = new Set(text.split(/\s+/).filter(Boolean));
  }
  return cachedV2Controllers;
}

/**
 * Parse /proc/<pid>/cgroup ("ID:controllers:path" lines) into normalized key → path;
 * the v2 entry ("0::/x") has key "".
 */
export function parseProcCgroup(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const a = line.indexOf(':');
    const b = line.indexOf(':', a + 1);
    if (a < 0 || b < 0) continue;
    out.set(normalizeKey(line.slice(a + 1, b)), line.slice(b + 1));
  }
  return out;
}

/** This process's own cgroup in every hierarchy (/proc/self/cgroup), cached. */
export function ownCgroups(): Map<string, string> {
  if (!cachedOwn) cachedOwn = parseProcCgroup(fs.readFileSync('/proc/self/cgroup', 'utf8'));
  return cachedOwn;
}

/** Forget every cached detection result (tests, or after the runtime moved itself). */
export function resetCgroupDetection(): void {
  cachedLayout = undefined;
  cachedV2Controllers = undefined;
  cachedOwn = undefined;
}
