import type { HelperProcess } from '../runtime/helper';

const FORWARDED = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH', 'SIGCONT'] as const;

/** A foreground process: its exit status, and the signal forwarding to stop afterwards. */
export interface Forwarding {
  /** The helper's exit status: the process's code, or 128+signal when it was killed. */
  exited: Promise<number>;
  /** Stop forwarding this shoal process's signals. */
  stop(): void;
}

/**
 * Forward the signals a foreground `run` or `exec` receives to the container process (pid), and
 * follow the helper, which stays the process's parent in that mode and exits with its status.
 */
export function forwardSignals(helper: HelperProcess, pid: number): Forwarding {
  const exited = helper.exited;
  const handlers = FORWARDED.map((sig) => {
    const h = () => {
      try {
        process.kill(pid, sig);
      } catch {
        /* already gone */
      }
    };
    process.on(sig, h);
    return [sig, h] as const;
  });
  return { exited, stop: () => handlers.forEach(([sig, h]) => process.off(sig, h)) };
}
