/*
 * cpuset controller: cpus / mems → cpuset.cpus / cpuset.mems (same names on v1 and v2).
 * On v1 a new cpuset cgroup starts with empty cpus and mems and cannot take tasks until they
 * are filled: V1_CPUSET_INHERIT lists the files v1.ts copies down from the parent.
 */
import type { LinuxResources } from '../../../../../spec/src/config';
import type { Controller, CgroupWrite } from './common';

/** Files a freshly made v1 cpuset cgroup must inherit from its parent before use. */
export const V1_CPUSET_INHERIT = ['cpuset.cpus', 'cpuset.mems'] as const;

function writes(r: LinuxResources): CgroupWrite[] {
  const out: CgroupWrite[] = [];
  if (r.cpu?.cpus) out.push({ file: 'cpuset.cpus', value: r.cpu.cpus });
  if (r.cpu?.mems) out.push({ file: 'cpuset.mems', value: r.cpu.mems });
  return out;
}

/** The cpuset controller (cpuset.cpus, cpuset.mems). */
export const cpusetController: Controller = {
  name: 'cpuset',
  v2Name: 'cpuset',
  isSet: (r) => !!(r.cpu?.cpus || r.cpu?.mems),
  v1Writes: writes,
  v2Writes: writes,
};
