import type { LinuxResources } from '../../../spec/src/config';
import { loadCgroup } from './cgroup/manager';
import { ShoalError } from './errors';
import { StateStore } from './state';
import { computeStatus } from './status';

type Obj = Record<string, unknown>;

/** Deep-merge b over a (objects merge, everything else replaces). */
export function mergeResources(a: LinuxResources | undefined, b: LinuxResources): LinuxResources {
  const merge = (x: unknown, y: unknown): unknown => {
    if (y && typeof y === 'object' && !Array.isArray(y) && x && typeof x === 'object' && !Array.isArray(x)) {
      const out: Obj = { ...(x as Obj) };
      for (const [k, v] of Object.entries(y as Obj)) out[k] = merge((x as Obj)[k], v);
      return out;
    }
    return y === undefined ? x : y;
  };
  return merge(a ?? {}, b) as LinuxResources;
}

/**
 * `update`: apply new resources to a live container's cgroup. Atomic from the caller's view: if
 * writing any limit fails, the previous limits are written back before the error is returned,
 * and the stored config only changes on success.
 */
export function updateContainer(store: StateStore, id: string, delta: LinuxResources): void {
  const s = store.load(id);
  const status = computeStatus(s, store.fifo(id));
  if (status === 'stopped') throw new ShoalError('INVALID_STATE', 'container not running');
  if (!s.cgroup) throw new ShoalError('UNSUPPORTED', `container ${id} has no cgroup`);
  const cg = loadCgroup(s.cgroup);
  const previous = s.config.linux?.resources ?? {};
  const next = mergeResources(previous, delta);
  try {
    cg.apply(next);
  } catch (e) {
    try {
      cg.apply(previous);
    } catch {
      /* best effort: the original error is what the caller needs */
    }
    throw e;
  }
  s.config.linux = { ...(s.config.linux ?? {}), resources: next };
  store.save(s);
}
