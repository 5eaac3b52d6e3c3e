import * as fs from 'fs';
import type { ContainerState } from './state';
import { isAlive } from './proc';
import { loadCgroup } from './cgroup/manager';

/** The OCI statuses, plus "creating" for a create that has not finished (or crashed). */
export type Status = 'creating' | 'created' | 'running' | 'paused' | 'stopped';

/**
 * The status, computed from the live process and never remembered: stopped when the init
 * (pid + start time) is gone, created while exec.fifo exists, paused when its cgroup is frozen.
 */
export function computeStatus(s: ContainerState, fifoPath: string): Status {
  if (!s.pid) return s.phase === 'creating' ? 'creating' : 'stopped';
  if (!isAlive(s.pid, s.startTime)) return 'stopped';
  if (s.phase === 'creating') return 'creating';
  if (fs.existsSync(fifoPath)) return 'created';
  if (s.cgroup && loadCgroup(s.cgroup).isFrozen()) return 'paused';
  return 'running';
}

/** What each operation allows, as the OCI runtime.md lifecycle says. */
export const can = {
  start: (st: Status) => st === 'created',
  kill: (st: Status) => st === 'created' || st === 'running' || st === 'paused',
  delete: (st: Status) => st === 'stopped' || st === 'created',
  pause: (st: Status) => st === 'running' || st === 'created',
  resume: (st: Status) => st === 'paused',
  exec: (st: Status) => st === 'running' || st === 'created',
};
