/*
 * cpu controller.
 *   OCI field        v1 file                 v2 file
 *   shares           cpu.shares              cpu.weight = 1 + ((shares - 2) * 9999) / 262142
 *   period, quota    cpu.cfs_period_us,      cpu.max = "<quota|max> [period]"
 *                    cpu.cfs_quota_us (-1)
 *   burst            cpu.cfs_burst_us        cpu.max.burst
 *   realtimePeriod   cpu.rt_period_us        (unsupported on v2)
 *   realtimeRuntime  cpu.rt_runtime_us       (unsupported on v2)
 *   idle             cpu.idle                cpu.idle
 * (cpus and mems belong to the cpuset controller.) 0 means "not set" for shares, quota and
 * period; a negative quota means unlimited.
 */
import type { LinuxResources } from '../../../../../spec/src/config';
import { ShoalError } from '../../errors';
import { isNonZero, type Controller, type CgroupWrite } from './common';

/** Smallest and largest v1 cpu.shares the kernel accepts. */
export const SHARES_MIN = 2;
/** Largest v1 cpu.shares. */
export const SHARES_MAX = 262144;

/**
 * cpu.weight (1..10000) for v1 cpu.shares (2..262144), the linear map runc uses:
 * 1 + ((shares - 2) * 9999) / 262142 with integer division; out-of-range shares are clamped.
 */
export function cpuSharesToWeight(shares: number): number {
  const s = Math.min(Math.max(Math.floor(shares), SHARES_MIN), SHARES_MAX);
  return 1 + Math.floor(((s - 2) * 9999) / 262142);
}

/**
 * cpu.max text for an OCI quota and period (µs), or undefined when neither is set:
 * "50000 100000", "max 100000" (negative quota), "50000" (period kept by the kernel), and
 * "max <period>" when only the period is given (as runc does).
 */
export function cpuMaxValue(quota: number | undefined, period: number | undefined): string | undefined {
  if (!isNonZero(quota) && !isNonZero(period)) return undefined;
  const q = isNonZero(quota) && quota > 0 ? String(quota) : 'max';
  return isNonZero(period) ? `${q} ${period}` : q;
}

function v1Writes(r: LinuxResources): CgroupWrite[] {
  const c = r.cpu;
  if (!c) return [];
  const out: CgroupWrite[] = [];
  if (isNonZero(c.shares)) out.push({ file: 'cpu.shares', value: String(c.shares) });
  // Period first; if the kernel rejects it against the old quota, it is retried after the quota.
  if (isNonZero(c.period)) out.push({ file: 'cpu.cfs_period_us', value: String(c.period), retryAfter: isNonZero(c.quota) });
  if (isNonZero(c.quota)) out.push({ file: 'cpu.cfs_quota_us', value: c.quota < 0 ? '-1' : String(c.quota) });
  if (typeof c.burst === 'number') out.push({ file: 'cpu.cfs_burst_us', value: String(c.burst) });
  if (isNonZero(c.realtimePeriod)) out.push({ file: 'cpu.rt_period_us', value: String(c.realtimePeriod) });
  if (isNonZero(c.realtimeRuntime)) out.push({ file: 'cpu.rt_runtime_us', value: String(c.realtimeRuntime) });
  if (typeof c.idle === 'number') out.push({ file: 'cpu.idle', value: String(c.idle) });
  return out;
}

function v2Writes(r: LinuxResources): CgroupWrite[] {
  const c = r.cpu;
  if (!c) return [];
  if (isNonZero(c.realtimePeriod) || isNonZero(c.realtimeRuntime)) {
    throw new ShoalError('CGROUP', 'cpu.rt_runtime_us: realtime CPU limits are not supported on cgroup v2');
  }
  const out: CgroupWrite[] = [];
  if (isNonZero(c.shares)) out.push({ file: 'cpu.weight', value: String(cpuSharesToWeight(c.shares)) });
  const max = cpuMaxValue(c.quota, c.period);
  if (max !== undefined) out.push({ file: 'cpu.max', value: max });
  if (typeof c.burst === 'number') out.push({ file: 'cpu.max.burst', value: String(c.burst) });
  if (typeof c.idle === 'number') out.push({ file: 'cpu.idle', value: String(c.idle) });
  return out;
}

/** The cpu controller (weights/shares, CFS quota and period, burst, idle, realtime on v1). */
export const cpuController: Controller = {
  name: 'cpu',
  v2Name: 'cpu',
  isSet: (r) => {
    const c = r.cpu;
    return !!c && (isNonZero(c.shares) || isNonZero(c.quota) || isNonZero(c.period) || typeof c.burst === 'number' ||
      isNonZero(c.realtimePeriod) || isNonZero(c.realtimeRuntime) || typeof c.idle === 'number');
  },
  v1Writes,
  v2Writes,
};
