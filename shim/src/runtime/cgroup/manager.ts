/*
 * Entry points of the cgroup layer: createCgroup() for `create`, loadCgroup() for every later
 * command that only has the JSON stored in the container state.
 *
 * Hot path budget of createCgroup on a hybrid host: one read of
 * /proc/self/mountinfo, one mkdir per hierarchy, 2 reads + 2 writes for the cpuset
 * inheritance, one write per configured resource. No process is spawned.
 */
import type { LinuxResources } from '../../../../spec/src/config';
import { ShoalError } from '../errors';
import type { CgroupHandle, CgroupMode } from './types';
import { detectCgroups, ownCgroups, type CgroupLayout } from './detect';
import { cleanCgroupPath, hierarchyPaths, resolveCgroupsPath } from './path';
import { BaseCgroup, type CgroupDir, type CgroupJSON } from './handle';
import { V1Cgroup } from './v1';
import { V2Cgroup } from './v2';
import { configDeviceRules } from './controllers/devices';

export type { CgroupJSON } from './handle';

/** Arguments of createCgroup. */
export interface CreateCgroupOptions {
  /** Container id (names the default cgroup "/<id>"). */
  id: string;
  /** config.json linux.cgroupsPath. */
  cgroupsPath?: string;
  /** config.json linux.resources. */
  resources?: LinuxResources;
  /** The systemd cgroup driver was requested (--systemd-cgroup): rejected with UNSUPPORTED. */
  systemd?: boolean;
  /** Layout override for tests; default detectCgroups(). */
  layout?: CgroupLayout;
  /**
   * config.json linux.devices. When given (even []), the device cgroup is always restricted as
   * runc does: resources.devices, then the default allow list, then these devices.
   */
  devices?: Array<{ type: string; major?: number; minor?: number }>;
}

/** Build the handle object for per-hierarchy paths (no filesystem access). */
function buildHandle(layout: CgroupLayout, paths: Map<string, string>): BaseCgroup {
  const entries: CgroupDir[] = layout.hierarchies.map((h) => {
    const p = paths.get(h.key)!;
    // (p is clean and absolute: a concatenation, which path.join would only re-normalize)
    return { hierarchy: h, path: p, dir: p === '/' ? h.mountpoint : h.mountpoint + p };
  });
  const primary = (layout.unified ? paths.get('') : undefined) ?? entries[0].path;
  if (layout.mode === 'v2') return new V2Cgroup(layout.mode, primary, entries[0]);
  return new V1Cgroup(layout.mode, primary, entries);
}

/**
 * Create the container's cgroup: resolve linux.cgroupsPath, make the directory in every
 * hierarchy (v2: enabling controllers in the ancestors' subtree_control), and apply
 * memory/cpu/cpuset/pids resources. On failure nothing it created is left behind and a
 * ShoalError is thrown: CGROUP ("memory.limit_in_bytes: write 1000: EINVAL (invalid argument)"),
 * UNSUPPORTED (systemd driver) or INVALID_CONFIG / INVALID_ARGUMENT (bad path or id). `planned`
 * is planCgroup's handle for these options, when the caller has it already; `onDirs` is called
 * once every directory exists, before the limits are written.
 */
export function createCgroup(opts: CreateCgroupOptions, planned: CgroupHandle = planCgroup(opts), onDirs?: () => void): CgroupHandle {
  const handle = planned as BaseCgroup;
  handle.create(opts.resources, onDirs);
  return handle;
}

/**
 * Make the cgroup2 directory of a planned cgroup ahead of createCgroup (see BaseCgroup.createFirst):
 * a clone into it can start while createCgroup makes the rest.
 */
export function createCgroupFirst(planned: CgroupHandle): void {
  (planned as BaseCgroup).createFirst();
}

/**
 * The handle createCgroup would make, without touching the filesystem: `create` records its
 * JSON in the container state before any directory exists, so a crash in between leaves nothing
 * that `delete --force` cannot find.
 */
export function planCgroup(opts: CreateCgroupOptions): CgroupHandle {
  const resolved = resolveCgroupsPath(opts.cgroupsPath, opts.id, { systemd: opts.systemd });
  const layout = opts.layout ?? detectCgroups();
  const paths = hierarchyPaths(resolved, layout, ownCgroups);
  for (const p of paths.values()) {
    if (p === '/') throw new ShoalError('INVALID_CONFIG', `linux.cgroupsPath "${opts.cgroupsPath}" names a root cgroup`);
  }
  const handle = buildHandle(layout, paths);
  if (opts.devices) handle.setConfigDevices(configDeviceRules(opts.devices));
  return handle;
}

const MODES: readonly CgroupMode[] = ['v2', 'hybrid', 'v1'];

/** Validate a stored path: absolute, clean, not a root. */
function checkStoredPath(p: unknown, what: string): string {
  if (typeof p !== 'string' || !p.startsWith('/') || p === '/' || cleanCgroupPath(p) !== p) {
    throw new ShoalError('INVALID_ARGUMENT', `stored cgroup state: invalid ${what} ${JSON.stringify(p)}`);
  }
  return p;
}

/**
 * Reopen a cgroup from the JSON of `handle.toJSON()` (object or string), in any later process.
 * The hierarchies are those of this host now; if the host's mode changed since (a reboot into
 * another layout), the handle follows the current layout and its directories simply do not exist.
 */
export function loadCgroup(json: unknown, layout: CgroupLayout = detectCgroups()): CgroupHandle {
  let data = json;
  if (typeof data === 'string') {
    try {
      data = JSON.parse(data);
    } catch {
      throw new ShoalError('INVALID_ARGUMENT', 'stored cgroup state is not valid JSON');
    }
  }
  const j = data as Partial<CgroupJSON> | null;
  if (!j || typeof j !== 'object' || !MODES.includes(j.mode as CgroupMode)) {
    throw new ShoalError('INVALID_ARGUMENT', 'stored cgroup state: missing or invalid "mode"');
  }
  const primary = checkStoredPath(j.path, 'path');
  const extra = j.paths && typeof j.paths === 'object' ? j.paths : {};
  const paths = new Map<string, string>();
  for (const h of layout.hierarchies) {
    paths.set(h.key, h.key in extra ? checkStoredPath(extra[h.key], `path for "${h.key}"`) : primary);
  }
  const handle = buildHandle(layout, paths);
  if (j.devices !== undefined) {
    if (!Array.isArray(j.devices)) throw new ShoalError('INVALID_ARGUMENT', 'stored cgroup state: invalid "devices"');
    handle.setConfigDevices(j.devices);
  }
  return handle;
}
