/*
 * V8 flags of the shim daemon (override: $SHOAL_SHIM_NODE_FLAGS, space-separated). One Node
 * process serves a whole namespace, so its footprint is what matters. Measured with 50 containers
 * (private anonymous memory): no flags 17-25 MB, these 13-14 MB, at the same Create latency
 * (~25 ms median; lite-mode only drops the optimizing compiler, --jitless was no smaller).
 * No imports: `npm run build:ts` writes them to build/shim-daemon.flags for the C launcher,
 * which starts the daemon itself.
 */
export const DAEMON_NODE_FLAGS = ['--max-semi-space-size=1', '--lite-mode', '--single-threaded-gc', '--v8-pool-size=1'];
