/*
 * net_cls controller (cgroup v1 only): linux.resources.network.classID → net_cls.classid.
 * cgroup v2 has no equivalent; like runc, the setting is ignored there. On v1 hosts without a
 * net_cls hierarchy a classID is an error (v1.ts names the controller).
 */
import type { LinuxResources } from '../../../../../spec/src/config';
import { isNonZero, type Controller, type CgroupWrite } from './common';

function v1Writes(r: LinuxResources): CgroupWrite[] {
  const id = r.network?.classID;
  return isNonZero(id) ? [{ file: 'net_cls.classid', value: String(id >>> 0) }] : [];
}

/** The net_cls controller (classid of the container's packets). */
export const netClsController: Controller = {
  name: 'net_cls',
  v2Name: '',
  isSet: (r) => isNonZero(r.network?.classID),
  v1Writes,
  v2Writes: () => [],
};
