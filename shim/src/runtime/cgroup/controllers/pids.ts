/*
 * pids controller: linux.resources.pids.limit → pids.max (same file on v1 and v2).
 */
import type { LinuxResources } from '../../../../../spec/src/config';
import type { Controller, CgroupWrite } from './common';

/** pids.max value of an OCI pids limit: a positive count, or "max" for <= 0 (unlimited). */
export function pidsMaxValue(limit: number): string {
  return limit > 0 ? String(Math.floor(limit)) : 'max';
}

function writes(r: LinuxResources): CgroupWrite[] {
  const limit = r.pids?.limit;
  return typeof limit === 'number' ? [{ file: 'pids.max', value: pidsMaxValue(limit) }] : [];
}

/** The pids controller (pids.max). */
export const pidsController: Controller = {
  name: 'pids',
  v2Name: 'pids',
  isSet: (r) => typeof r.pids?.limit === 'number',
  v1Writes: writes,
  v2Writes: writes,
};
