const FORWARDED = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH', 'SIGCONT'] as const;

/** Signal forwarding of a foreground process, to stop once it has exited. */
export interface Forwarding {
  /** Stop forwarding this shoal process's signals. */
  stop(): void;
}

/** Forward the signals a foreground `run` or `exec` receives to the container process (pid). */
export function forwardSignals(pid: number): Forwarding {
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
  return { stop: () => handlers.forEach(([sig, h]) => process.off(sig, h)) };
}
