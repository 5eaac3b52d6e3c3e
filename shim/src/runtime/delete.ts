import { loadCgroup } from './cgroup/manager';
import { ShoalError } from './errors';
import { runHooks } from './hooks';
import { signalProcess, waitGone } from './proc';
import { ContainerState, StateStore } from './state';
import { computeStatus, can } from './status';
import { sharingRequested } from '../layers/config';
import { trace } from './trace';

/**
 * Tear a container down: SIGKILL the init if still alive, kill what is left in its cgroup and
 * remove it, run the poststop hooks (warnings only) and remove the state dir. Works on any
 * half-created state, so `delete --force` can clean up after a crash at any point.
 */
export async function destroyContainer(
  store: StateStore,
  s: ContainerState,
  opts: { warn: (m: string) => void; runPoststop: boolean },
): Promise<void> {
  if (s.pid && signalProcess(s.pid, s.startTime, 9)) await waitGone(s.pid, s.startTime, 5000);
  trace('delete: init gone');
  if (s.cgroup) {
    try {
      await loadCgroup(s.cgroup).destroy();
    } catch (e) {
      opts.warn(`remove cgroup ${s.cgroup.path}: ${(e as Error).message}`);
    }
  }
  trace('delete: cgroup removed');
  if (opts.runPoststop) {
    await runHooks('poststop', s.config?.hooks?.poststop, { ociVersion: s.ociVersion, id: s.id, status: 'stopped', bundle: s.bundle, annotations: s.annotations }, { warnOnly: true, warn: opts.warn });
  }
  if (sharingRequested(s.annotations)) {
    try {
      (require('../layers/store') as typeof import('../layers/store')).openLayerStore().releaseUse(s.id, store.dir(s.id));
    } catch (e) {
      opts.warn(`layer store: release ${s.id}: ${(e as Error).message}`);
    }
  }
  store.remove(s.id);
}

/**
 * `delete [--force] ID`: a stopped or created container is removed; a running or paused one only
 * with force. A missing container is an error unless force (then it is a no-op).
 */
export async function deleteContainer(store: StateStore, id: string, force: boolean, warn: (m: string) => void): Promise<void> {
  let s: ContainerState;
  try {
    s = store.load(id);
  } catch (e) {
    if (e instanceof ShoalError && e.code === 'NOT_FOUND') {
      // A directory without state.json is what a crash right after reserve leaves.
      if (store.exists(id) && force) return store.remove(id);
      if (force) return;
    }
    throw e;
  }
  const status = computeStatus(s, store.fifo(id));
  if (!force && !can.delete(status)) throw new ShoalError('INVALID_STATE', `cannot delete container ${id} that is not stopped: ${status}`);
  if (status === 'paused' && s.cgroup) await loadCgroup(s.cgroup).setFrozen(false).catch(() => undefined);
  await destroyContainer(store, s, { warn, runPoststop: status !== 'creating' });
}
