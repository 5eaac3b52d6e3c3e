/*
 * rdma controller: linux.resources.rdma {"mlx5_0": {hcaHandles, hcaObjects}} → one
 * "<device> hca_handle=<n|max> hca_object=<n|max>" write per device to rdma.max (the same file
 * on v1 and v2). An unset count is written as "max".
 */
import type { LinuxResources } from '../../../../../spec/src/config';
import { ShoalError } from '../../errors';
import type { Controller, CgroupWrite } from './common';

function writes(r: LinuxResources): CgroupWrite[] {
  const out: CgroupWrite[] = [];
  for (const [dev, lim] of Object.entries(r.rdma ?? {})) {
    if (!/^[^\s=]+$/.test(dev)) throw new ShoalError('INVALID_CONFIG', `rdma.max: invalid device name "${dev}"`);
    const n = (v: number | undefined) => (typeof v === 'number' ? String(v) : 'max');
    if (lim?.hcaHandles === undefined && lim?.hcaObjects === undefined) continue;
    out.push({ file: 'rdma.max', value: `${dev} hca_handle=${n(lim.hcaHandles)} hca_object=${n(lim.hcaObjects)}` });
  }
  return out;
}

/** The rdma controller (per device HCA handle/object limits). */
export const rdmaController: Controller = {
  name: 'rdma',
  v2Name: 'rdma',
  isSet: (r) => writes(r).length > 0,
  v1Writes: writes,
  v2Writes: writes,
};
