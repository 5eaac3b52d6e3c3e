import type { Context } from './context';
import { parseArgs, requireId } from './args';
import { computeStatus } from '../runtime/status';
import type { ContainerState } from '../runtime/state';
import type { StateStore } from '../runtime/state';
import { stdout } from '../runtime/fdwrite';

/** The JSON `state` prints (runtime.md plus runc's rootfs, created and owner). */
export function stateJson(store: StateStore, s: ContainerState): Record<string, unknown> {
  const status = computeStatus(s, store.fifo(s.id));
  return {
    ociVersion: s.ociVersion,
    id: s.id,
    pid: status === 'stopped' ? 0 : s.pid,
    status,
    bundle: s.bundle,
    rootfs: s.rootfs,
    created: s.created,
    owner: s.owner,
    annotations: s.annotations,
  };
}

/** `shoal state ID`. */
export async function run(ctx: Context, argv: string[]): Promise<number> {
  const p = parseArgs(argv, []);
  const s = ctx.store.load(requireId(p, 'state'));
  stdout(JSON.stringify(stateJson(ctx.store, s), null, 2) + '\n');
  return 0;
}
