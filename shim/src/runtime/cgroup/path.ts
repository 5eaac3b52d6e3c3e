/*
 * linux.cgroupsPath semantics (as runc's cgroupfs driver):
 *  - absolute ("/a/b"): used as-is below the root of every hierarchy;
 *  - relative ("a/b"): below the runtime's own cgroup, looked up per hierarchy in
 *    /proc/self/cgroup (so it may differ between v1 hierarchies); on a pure v2 host below the
 *    *parent* of the runtime's cgroup, whose subtree can have controllers enabled;
 *  - empty/absent: "/<id>", at the root of every hierarchy (as crun; runc's default, the id
 *    relative to its own cgroup, is the same for a runtime started in the root cgroups).
 *  - systemd style "slice:prefix:name": not supported (no systemd driver).
 * Paths are cleaned like runc's CleanPath: "." and ".." are resolved and can never climb above
 * the root.
 */
import * as fs from 'fs';
import * as path from 'path';
import { ShoalError } from '../errors';
import type { CgroupLayout } from './detect';

/**
 * Parent of the default cgroups of shoal before 2026-12-03 ("/shoal/<id>"). Creating and removing
 * it with every container doubled the cgroup mkdirs and rmdirs of `run`; it is kept only so that
 * deleting such a container still removes the parent it leaves empty.
 */
export const LEGACY_PARENT = '/shoal';

/**
 * Clean a cgroup path lexically: collapse "//", drop ".", resolve ".." without ever leaving the
 * root, strip trailing "/". Absolute inputs stay absolute ("/" for the root); relative ones stay
 * relative ("" when nothing is left).
 */
export function cleanCgroupPath(p: string): string {
  const abs = p.startsWith('/');
  const parts: string[] = [];
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') parts.pop();
    else parts.push(seg);
  }
  return abs ? '/' + parts.join('/') : parts.join('/');
}

/** Whether `p` is the systemd driver's "slice:prefix:name" notation. */
export function isSystemdStyle(p: string): boolean {
  return /^[^:/]*:[^:/]*:[^:/]+$/.test(p);
}

/** Options of resolveCgroupsPath. */
export interface ResolveOptions {
  /** The caller asked for the systemd cgroup driver (e.g. --systemd-cgroup). */
  systemd?: boolean;
  /** Whether systemd runs on this host; default: /run/systemd/system exists. */
  systemdRunning?: boolean;
}

/**
 * Turn config.json's linux.cgroupsPath into a cleaned cgroup path: absolute ("/id") or
 * relative ("a/b", to be joined per hierarchy by hierarchyPaths()). Throws UNSUPPORTED for the
 * systemd notation / driver and INVALID_CONFIG for paths naming a root or the runtime's own cgroup.
 */
export function resolveCgroupsPath(cgroupsPath: string | undefined, id: string, opts: ResolveOptions = {}): string {
  const raw = cgroupsPath ?? '';
  if (opts.systemd || isSystemdStyle(raw)) {
    const running = opts.systemdRunning ?? fs.existsSync('/run/systemd/system');
    throw new ShoalError(
      'UNSUPPORTED',
      running
        ? 'systemd cgroup driver is not supported by shoal (use a cgroupfs path such as "/<id>")'
        : 'systemd cgroup driver requested but systemd is not running',
    );
  }
  if (raw === '') {
    if (!id || id.includes('/') || id === '.' || id === '..') {
      throw new ShoalError('INVALID_ARGUMENT', `invalid container id for a cgroup name: "${id}"`);
    }
    return `/${id}`;
  }
  const clean = cleanCgroupPath(raw);
  if (clean === '/' || clean === '') {
    throw new ShoalError(
      'INVALID_CONFIG',
      `linux.cgroupsPath "${raw}" names ${clean === '/' ? 'the root cgroup' : "the runtime's own cgroup"}`,
    );
  }
  return clean;
}

/**
 * The container's cgroup path inside each hierarchy of `layout` (key → absolute path within
 * that hierarchy). `own` is the runtime's own cgroup per hierarchy key (parsed /proc/self/cgroup),
 * needed only for relative paths.
 */
export function hierarchyPaths(resolved: string, layout: CgroupLayout, own: () => Map<string, string>): Map<string, string> {
  const out = new Map<string, string>();
  if (resolved.startsWith('/')) {
    for (const h of layout.hierarchies) out.set(h.key, resolved);
    return out;
  }
  const mine = own();
  for (const h of layout.hierarchies) {
    let base = mine.get(h.key) ?? '/';
    // Pure v2: our own cgroup has processes (us), so its subtree cannot get controllers.
    if (layout.mode === 'v2') base = path.posix.dirname(base);
    out.set(h.key, cleanCgroupPath(path.posix.join('/', base, resolved)));
  }
  return out;
}
