const FORWARDED = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH', 'SIGCONT'] as const;

/** Signal forwarding of a foreground process, to stop once it has exited. */
export interface Forwarding {
  /** Stop forwarding this shoal process's signals. */
  stop(): void;
}

/**
 * Forward the signals a foreground `run` or `exec` receives to the container process (pid).
 * Stopping is a flag (removing eight handlers is a third of a millisecond at every exit): a
 * signal after it removes them and comes back to this process, as if they had never been there.
 */
export function forwardSignals(pid: number): Forwarding {
  let active = true;
  const handlers = FORWARDED.map((sig) => {
    const h = () => {
      if (!active) {
        handlers.forEach(([s, f]) => process.off(s, f));
        process.kill(process.pid, sig);
        return;
      }
      try {
        process.kill(pid, sig);
      } catch {
        /* already gone */
      }
    };
    process.on(sig, h);
    return [sig, h] as const;
  });
  return { stop: () => (active = false) };
}
