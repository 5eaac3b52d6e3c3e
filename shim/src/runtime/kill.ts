import { loadCgroup } from './cgroup/manager';
import { ShoalError } from './errors';
import { signalProcess } from './proc';
import { StateStore } from './state';
import { computeStatus, can } from './status';

/**
 * Linux's signal numbers (x86, arm, and the other architectures with the generic numbering), as
 * os.constants.signals gives them here (tested): loading the os module would be a fifth of a
 * millisecond of every `kill`.
 */
export const SIGNALS: Readonly<Record<string, number>> = {
  SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGILL: 4, SIGTRAP: 5, SIGABRT: 6, SIGIOT: 6, SIGBUS: 7,
  SIGFPE: 8, SIGKILL: 9, SIGUSR1: 10, SIGSEGV: 11, SIGUSR2: 12, SIGPIPE: 13, SIGALRM: 14,
  SIGTERM: 15, SIGSTKFLT: 16, SIGCHLD: 17, SIGCONT: 18, SIGSTOP: 19, SIGTSTP: 20, SIGTTIN: 21,
  SIGTTOU: 22, SIGURG: 23, SIGXCPU: 24, SIGXFSZ: 25, SIGVTALRM: 26, SIGPROF: 27, SIGWINCH: 28,
  SIGIO: 29, SIGPOLL: 29, SIGPWR: 30, SIGSYS: 31,
};

/** "9", "KILL", "SIGKILL" -> 9. Throws INVALID_ARGUMENT for anything else. */
export function parseSignal(sig: string | undefined): number {
  if (sig === undefined || sig === '') return SIGNALS.SIGTERM;
  if (/^\d+$/.test(sig)) {
    const n = Number(sig);
    if (n > 0 && n <= 64) return n;
  } else {
    const name = sig.toUpperCase().startsWith('SIG') ? sig.toUpperCase() : `SIG${sig.toUpperCase()}`;
    const n = Object.prototype.hasOwnProperty.call(SIGNALS, name) ? SIGNALS[name] : undefined;
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
