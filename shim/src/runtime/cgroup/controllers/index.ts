/*
 * The resource controllers shoal manages. Each controller module turns the OCI
 * linux.resources section into an ordered list of file writes, once for cgroup v1 file names
 * and value conventions and once for cgroup v2; v1.ts / v2.ts perform the writes. The devices
 * controller (devices.ts) is not a file-write list on v2 (an eBPF program) and is applied by
 * v1.ts / v2.ts directly.
 */
import { memoryController } from './memory';
import { cpuController } from './cpu';
import { cpusetController } from './cpuset';
import { pidsController } from './pids';
import { blkioController } from './blkio';
import { hugetlbController } from './hugetlb';
import { netClsController } from './netcls';
import { netPrioController } from './netprio';
import { rdmaController } from './rdma';
import type { Controller } from './common';

export type { CgroupWrite, FileReader, Controller } from './common';
export { isNonZero } from './common';

/** Every resource controller, in the order their settings are applied. */
export const CONTROLLERS: readonly Controller[] = [
  cpusetController,
  cpuController,
  memoryController,
  pidsController,
  blkioController,
  hugetlbController,
  netClsController,
  netPrioController,
  rdmaController,
];

/** v2 controllers shoal enables for container subtrees (when the host offers them). */
export const V2_WANTED: readonly string[] = ['cpu', 'cpuset', 'io', 'memory', 'pids', 'hugetlb'];
