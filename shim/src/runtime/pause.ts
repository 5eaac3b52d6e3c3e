import { loadCgroup } from './cgroup/manager';
import { ShoalError } from './errors';
import { StateStore } from './state';
import { computeStatus, can } from './status';

/**
 * Freeze (pause) or thaw (resume) every process of a container through its cgroup (cgroup.freeze
 * on v2, the freezer on v1), returning once the kernel reports the state reached.
 */
export async function setPaused(store: StateStore, id: string, paused: boolean): Promise<void> {
  const s = store.load(id);
  const status = computeStatus(s, store.fifo(id));
  if (paused && !can.pause(status)) throw new ShoalError('INVALID_STATE', `cannot pause a container that is ${status}`);
  if (!paused && !can.resume(status)) throw new ShoalError('INVALID_STATE', 'container not paused');
  if (!s.cgroup) throw new ShoalError('UNSUPPORTED', `container ${id} has no cgroup to freeze`);
  await loadCgroup(s.cgroup).setFrozen(paused);
}

/** The host pids of every process in the container's cgroup. */
export function containerPids(store: StateStore, id: string): number[] {
  const s = store.load(id);
  const status = computeStatus(s, store.fifo(id));
  if (status === 'stopped') return [];
  return s.cgroup ? loadCgroup(s.cgroup).pids() : s.pid ? [s.pid] : [];
}
