/*
 * The cgroup layer of shoal: createCgroup() / loadCgroup() give a CgroupHandle (types.ts) on
 * pure v2, hybrid and pure v1 hosts. See manager.ts for the entry points, path.ts for the
 * cgroupsPath rules and controllers/ for the per-controller file names and conversions.
 */
export { createCgroup, loadCgroup, type CreateCgroupOptions, type CgroupJSON } from './manager';
export { detectCgroups, cgroupMode, resetCgroupDetection, type CgroupLayout, type Hierarchy } from './detect';
export { resolveCgroupsPath, cleanCgroupPath } from './path';
export type { CgroupHandle, CgroupMode } from './types';
