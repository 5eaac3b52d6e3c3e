import { constants } from 'os';
import { loadCgroup } from './cgroup/manager';
import { ShoalError } from './errors';
import { signalProcess } from './proc';
import { StateStore } from './state';
import { computeStatus, can } from './status';

/** "9", "KILL", "SIGKILL" -> 9. Throws INVALID_ARGUMENT for anything else. */
export function parseSignal(sig: string | undefined): number {
  if (sig === undefined || sig === '') return constants.signals.SIGTERM;
  if (/^\d+$/.test(sig)) {
    const n = Number(sig);
    if (n > 0 && n <= 64) return n;
  } else {
    const name = sig.toUpperCase().startsWith('SIG') ? sig.toUpperCase() : `SIG${sig.toUpperCase()}`;
    const n = (constants.signals as Record<string, number>)[name];
    if (n) return n;
    const rt = /^SIGRTM(IN|AX)([+-]\d+)?$/.exec(name);
    if (rt) return (rt[1] === 'IN' ? 34 : 64) + Number(rt[2] ?? 0);
  }
  throw new ShoalError('INVALID_ARGUMENT', `invalid signal: ${sig}`);
}

/**
 * `kill [--all] ID SIGNAL`: signal the init (verified by its start time), or with all every
 * process in the container's cgroup. A stopped container is an error, except with --all.
 */
export async function killContainer(store: StateStore, id: string, signal: number, all: boolean): Promise<void> {
  const s = store.load(id);
  const status = computeStatus(s, store.fifo(id));
  if (!can.kill(status)) {
    if (all) return;
    throw new ShoalError('INVALID_STATE', 'container not running');
  }
  if (all && s.cgroup) {
    // Every process of the cgroup (cgroup.kill for SIGKILL where the kernel has it).
    await loadCgroup(s.cgroup).killAll(signal);
    return;
  }
  if (!signalProcess(s.pid, s.startTime, signal)) throw new ShoalError('INVALID_STATE', 'container not running');
}
