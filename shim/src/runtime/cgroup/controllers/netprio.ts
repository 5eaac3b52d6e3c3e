/*
 * net_prio controller (cgroup v1 only): linux.resources.network.priorities[] → one
 * "<interface> <priority>" write per entry to net_prio.ifpriomap. Ignored on cgroup v2 (as
 * runc); an error on v1 hosts without a net_prio hierarchy.
 */
import type { LinuxResources } from '../../../../../spec/src/config';
import { ShoalError } from '../../errors';
import type { Controller, CgroupWrite } from './common';

function v1Writes(r: LinuxResources): CgroupWrite[] {
  return (r.network?.priorities ?? []).map((p) => {
    if (!/^[^\s/]+$/.test(p.name)) {
      throw new ShoalError('INVALID_CONFIG', `net_prio.ifpriomap: invalid interface name "${p.name}"`);
    }
    return { file: 'net_prio.ifpriomap', value: `${p.name} ${p.priority}` };
  });
}

/** The net_prio controller (per-interface priorities). */
export const netPrioController: Controller = {
  name: 'net_prio',
  v2Name: '',
  isSet: (r) => (r.network?.priorities ?? []).length > 0,
  v1Writes,
  v2Writes: () => [],
};
