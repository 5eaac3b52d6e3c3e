/*
 * Stats and OOM events of a container, on top of the runtime's cgroup statistics
 * (shim/src/runtime/stats.ts, containerd's Metrics shapes) and OOM watcher
 * (shim/src/runtime/events.ts). Both modules are loaded on first use, so an idle shim does not
 * carry them.
 *
 * Stats answers an Any `io.containerd.cgroups.v1.Metrics` on v1 and hybrid hosts and
 * `io.containerd.cgroups.v2.Metrics` on pure v2 hosts, as containerd-shim-runc-v2 does.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { CgroupHandle } from '../runtime/cgroup/types';
import type { ContainerState } from '../runtime/state';
import type { AnyMsg } from '../ttrpc/proto';

/** Type URLs of the Stats payload (bare full names, as containerd's typeurl writes them). */
export const METRICS_V1 = 'io.containerd.cgroups.v1.Metrics';
export const METRICS_V2 = 'io.containerd.cgroups.v2.Metrics';

const TWO_53 = 2 ** 53;

/**
 * uint64 values the stats carry as JS numbers: those beyond 2^53 ("max" = 2^64-1 above all) go
 * to protobufjs as decimal strings, which it turns into exact 64-bit Longs.
 */
export function exactUint64(v: unknown): unknown {
  if (typeof v === 'number') {
    if (v < TWO_53 || !Number.isFinite(v)) return v;
    return v >= 18446744073709551615 ? '18446744073709551615' : BigInt(Math.round(v)).toString();
  }
  if (Array.isArray(v)) return v.map(exactUint64);
  if (v && typeof v === 'object' && !(v instanceof Uint8Array)) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = exactUint64(x);
    return out;
  }
  return v;
}

/** Opens the container's cgroup from its stored state (null when it has none). */
export function containerCgroup(state: ContainerState): CgroupHandle | null {
  if (!state.cgroup) return null;
  const { loadCgroup } = require('../runtime/cgroup/manager') as typeof import('../runtime/cgroup/manager');
  return loadCgroup(state.cgroup);
}

/** The Stats response payload: the container's cgroup Metrics as an Any. */
export function statsAny(cg: CgroupHandle): AnyMsg {
  const { collectMetrics } = require('../runtime/stats') as typeof import('../runtime/stats');
  const { packMessage } = require('../ttrpc/proto') as typeof import('../ttrpc/proto');
  const m = collectMetrics(cg);
  return packMessage(m.version === 2 ? METRICS_V2 : METRICS_V1, exactUint64(m.metrics) as Record<string, unknown>);
}

/** When a v1 notification is followed up: the kernel notifies before it bumps oom_kill. */
const V1_RECHECK_MS = [0, 50, 500];

/**
 * Watches a container's cgroup for OOM kills and calls `onOom` once per kill: the oom_kill
 * counter (memory.events on v2, memory.oom_control on v1) decides, inotify (v2) or the
 * memory.oom_control eventfd (v1) wake us. On v1 the kernel notifies before it bumps the counter,
 * and may notify twice for one kill, so the counter is re-read shortly after each notification;
 * a v1 kernel without the counter gets one event per notification, as with runc's shim.
 * Returns the function that stops watching.
 */
export function watchContainerOom(cg: CgroupHandle, onOom: () => void, warn: (m: string) => void): () => void {
  const { oomKillTracker, watchOom } = require('../runtime/events') as typeof import('../runtime/events');
  const kills = oomKillTracker(cg, onOom);
  const memDir = cg.controllerDir('memory');
  // Whether this v1 kernel has the counter: asked at the first notification, not per container.
  let counted: boolean | undefined;
  const timers = new Set<NodeJS.Timeout>();
  // v1 also signals the eventfd when the cgroup is removed: that is no OOM.
  const catchUp = () => void (memDir && fs.existsSync(memDir) && kills());
  try {
    const stop = watchOom(cg, () => {
      if (cg.mode === 'v2') return catchUp();
      counted ??= !!memDir && hasOomKillCounter(memDir);
      if (!counted) return void (memDir && fs.existsSync(memDir) && onOom());
      for (const ms of V1_RECHECK_MS) {
        const t = setTimeout(() => (timers.delete(t), catchUp()), ms);
        timers.add(t);
      }
    });
    return () => {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      stop();
    };
  } catch (e) {
    warn(`oom watch: ${(e as Error).message}`);
    return () => undefined;
  }
}

/** Whether a v1 memory.oom_control has the oom_kill counter (Linux 4.13+). */
function hasOomKillCounter(memDir: string): boolean {
  try {
    return /^oom_kill /m.test(fs.readFileSync(path.join(memDir, 'memory.oom_control'), 'utf8'));
  } catch {
    return false;
  }
}
