/*
 * `events`: runc-compatible container events. Each event is one JSON line:
 *   {"type":"stats","id":ID,"data":{cpu, memory, pids, blkio, hugetlb, intel_rdt, network_interfaces}}
 *   {"type":"oom","id":ID}
 * With `stats: true` one stats event is produced; otherwise stats are streamed every interval and
 * OOM kills are reported as they happen, until the container stops.
 * OOM detection: v2 watches memory.events (inotify through fs.watch) for a rising oom_kill count;
 * v1 registers an eventfd on memory.oom_control through cgroup.event_control (woken on Node's
 * event loop by the addon's watchFdReadable). Both also poll the counter (v1 memory.oom_control
 * oom_kill / v2 memory.events oom_kill) every tick, so an OOM is never missed.
 */
import * as fs from 'fs';
import * as path from 'path';
import { loadCgroup } from './cgroup/manager';
import type { CgroupHandle } from './cgroup/types';
import { ShoalError } from './errors';
import { writeCgroupFile } from './cgroup/fsutil';
import { collectMetrics, parseFlatKeyed, type Metrics, type V1BlkIOEntry } from './stats';
import type { StateStore } from './state';
import { computeStatus } from './status';
import { native } from '../native';

/** One event line of `shoal events`. */
export interface ContainerEvent {
  type: 'stats' | 'oom';
  id: string;
  data?: RuncStats;
}

/** runc's events Stats (libcontainer types.Stats JSON). */
export interface RuncStats {
  cpu: { usage: { total: number; percpu?: number[]; kernel: number; user: number }; throttling: { periods: number; throttledPeriods: number; throttledTime: number } };
  memory: { cache: number; usage: RuncMemoryEntry; swap: RuncMemoryEntry; kernel: RuncMemoryEntry; kernelTCP: RuncMemoryEntry; raw: Record<string, number> };
  pids: { current: number; limit: number };
  blkio: Record<string, Array<{ major: number; minor: number; op: string; value: number }>>;
  hugetlb: Record<string, { usage: number; max: number; failcnt: number }>;
  intel_rdt: Record<string, never>;
  network_interfaces: null;
}

/** runc's MemoryEntry. */
export interface RuncMemoryEntry { limit: number; usage: number; max: number; failcnt: number }

const BLKIO_NAMES: Record<string, string> = {
  io_service_bytes_recursive: 'ioServiceBytesRecursive', io_serviced_recursive: 'ioServicedRecursive',
  io_queued_recursive: 'ioQueueRecursive', io_service_time_recursive: 'ioServiceTimeRecursive',
  io_wait_time_recursive: 'ioWaitTimeRecursive', io_merged_recursive: 'ioMergedRecursive',
  io_time_recursive: 'ioTimeRecursive', sectors_recursive: 'sectorsRecursive',
};

/** Convert containerd-shaped metrics (stats.ts) to runc's events data, as runc does per version. */
export function toRuncStats(m: Metrics): RuncStats {
  if (m.version === 1) {
    const v = m.metrics;
    const raw: Record<string, number> = {};
    for (const [k, val] of Object.entries(v.memory)) if (typeof val === 'number') raw[k] = val;
    const blkio: RuncStats['blkio'] = {};
    for (const [k, list] of Object.entries(v.blkio)) {
      if (list.length) blkio[BLKIO_NAMES[k] ?? k] = list.map((e: V1BlkIOEntry) => ({ major: e.major, minor: e.minor, op: e.op, value: e.value }));
    }
    return {
      cpu: {
        usage: { total: v.cpu.usage.total, percpu: v.cpu.usage.per_cpu, kernel: v.cpu.usage.kernel, user: v.cpu.usage.user },
        throttling: { periods: v.cpu.throttling.periods, throttledPeriods: v.cpu.throttling.throttled_periods, throttledTime: v.cpu.throttling.throttled_time },
      },
      memory: { cache: v.memory.cache ?? 0, usage: v.memory.usage, swap: v.memory.swap, kernel: v.memory.kernel, kernelTCP: v.memory.kernel_tcp, raw },
      pids: v.pids,
      blkio,
      hugetlb: Object.fromEntries(v.hugetlb.map((h) => [h.pagesize, { usage: h.usage, max: h.max, failcnt: h.failcnt }])),
      intel_rdt: {},
      network_interfaces: null,
    };
  }
  const v = m.metrics;
  const mem = v.memory;
  const raw = { ...mem };
  for (const k of ['usage', 'usage_limit', 'swap_usage', 'swap_limit', 'max_usage', 'swap_max_usage']) delete raw[k];
  const io = v.io.usage;
  const ioList = (r: 'rbytes' | 'rios', w: 'wbytes' | 'wios') =>
    io.flatMap((e) => [{ major: e.major, minor: e.minor, op: 'Read', value: e[r] }, { major: e.major, minor: e.minor, op: 'Write', value: e[w] }]);
  const blkio: RuncStats['blkio'] = io.length ? { ioServiceBytesRecursive: ioList('rbytes', 'wbytes'), ioServicedRecursive: ioList('rios', 'wios') } : {};
  return {
    cpu: {
      usage: { total: v.cpu.usage_usec * 1000, kernel: v.cpu.system_usec * 1000, user: v.cpu.user_usec * 1000 },
      throttling: { periods: v.cpu.nr_periods, throttledPeriods: v.cpu.nr_throttled, throttledTime: v.cpu.throttled_usec * 1000 },
    },
    memory: {
      cache: mem.file ?? 0,
      usage: { limit: mem.usage_limit, usage: mem.usage, max: mem.max_usage, failcnt: v.memory_events.max },
      // runc reports v2 swap as memory+swap, like v1's memsw.
      swap: { limit: mem.swap_limit, usage: mem.swap_usage + mem.usage, max: mem.swap_max_usage, failcnt: 0 },
      kernel: { limit: 0, usage: (mem.kernel_stack ?? 0) + (mem.slab ?? 0), max: 0, failcnt: 0 },
      kernelTCP: { limit: 0, usage: mem.sock ?? 0, max: 0, failcnt: 0 },
      raw,
    },
    pids: v.pids,
    blkio,
    hugetlb: Object.fromEntries(v.hugetlb.map((h) => [h.pagesize, { usage: h.current, max: h.max, failcnt: 0 }])),
    intel_rdt: {},
    network_interfaces: null,
  };
}

/** The OOM-kill counter of a cgroup: v2 memory.events oom_kill, v1 memory.oom_control oom_kill. */
export function oomKillCount(cg: CgroupHandle): number {
  const dir = cg.controllerDir('memory');
  if (!dir) return 0;
  const file = cg.mode === 'v2' ? 'memory.events' : 'memory.oom_control';
  try {
    return parseFlatKeyed(fs.readFileSync(path.join(dir, file), 'utf8')).oom_kill ?? 0;
  } catch {
    return 0;
  }
}

/**
 * A catch-up function: each call reports (onKill, once per kill) the OOM kills counted in `cg`
 * since the previous call, the first since now.
 */
export function oomKillTracker(cg: CgroupHandle, onKill: () => void): () => void {
  let seen = oomKillCount(cg);
  return () => {
    const n = oomKillCount(cg);
    for (; seen < n; seen++) onKill();
  };
}

/**
 * Arrange for `wake` to run soon after an OOM in `cg`: fs.watch of memory.events (v2) or an
 * eventfd registered in cgroup.event_control (v1). Best effort (polling covers failures);
 * returns the function that stops watching.
 */
export function watchOom(cg: CgroupHandle, wake: () => void): () => void {
  const dir = cg.controllerDir('memory');
  if (!dir) return () => undefined;
  if (cg.mode === 'v2') {
    try {
      const w = fs.watch(path.join(dir, 'memory.events'), () => wake());
      w.on('error', () => undefined);
      return () => w.close();
    } catch {
      return () => undefined;
    }
  }
  let efd = -1;
  let ctl = -1;
  let watchId = -1;
  let stopped = false;
  const stop = () => {
    stopped = true;
    if (watchId >= 0) native().unwatchFd(watchId);
    for (const fd of [efd, ctl]) if (fd >= 0) fs.closeSync(fd);
    efd = ctl = watchId = -1;
  };
  try {
    const n = native();
    efd = n.eventfd();
    ctl = fs.openSync(path.join(dir, 'memory.oom_control'), 'r');
    writeCgroupFile(path.join(dir, 'cgroup.event_control'), `${efd} ${ctl}`);
    const arm = () => {
      watchId = n.watchFdReadable(efd, () => {
        watchId = -1;
        if (stopped) return;
        try {
          fs.readSync(efd, Buffer.alloc(8), 0, 8, null);
        } catch {
          /* counter already consumed */
        }
        wake();
        arm();
      });
    };
    arm();
  } catch {
    stop();
  }
  return stop;
}

/** Options of streamEvents. */
export interface EventsOptions {
  /** Only one stats event (`--stats`). */
  stats: boolean;
  /** Milliseconds between stats events when streaming (runc's default: 5 s). */
  intervalMs: number;
  /** Receives each event. */
  emit(e: ContainerEvent): void;
  /** How often the container state and OOM counter are polled (default 250 ms). */
  pollMs?: number;
}

/** One stats event for the container now. */
export function statsEvent(cg: CgroupHandle, id: string): ContainerEvent {
  return { type: 'stats', id, data: toRuncStats(collectMetrics(cg)) };
}

/**
 * Produce the container's events; resolves when done (--stats: after one event; otherwise when
 * the container has stopped, after a last OOM check). Throws NOT_FOUND / INVALID_STATE like runc
 * for unknown or stopped containers.
 */
export async function streamEvents(store: StateStore, id: string, opts: EventsOptions): Promise<void> {
  const s = store.load(id);
  if (computeStatus(s, store.fifo(id)) === 'stopped') throw new ShoalError('INVALID_STATE', `container with id ${id} is not running`);
  if (!s.cgroup) throw new ShoalError('UNSUPPORTED', `container ${id} has no cgroup`);
  const cg = loadCgroup(s.cgroup);
  if (opts.stats) {
    opts.emit(statsEvent(cg, id));
    return;
  }
  const checkOom = oomKillTracker(cg, () => opts.emit({ type: 'oom', id }));
  let wakeup: (() => void) | undefined;
  const unwatch = watchOom(cg, () => {
    checkOom();
    wakeup?.();
  });
  const pollMs = opts.pollMs ?? 250;
  let nextStats = Date.now();
  try {
    for (;;) {
      checkOom();
      let status;
      try {
        status = computeStatus(store.load(id), store.fifo(id));
      } catch {
        status = 'stopped';
      }
      if (status === 'stopped') break;
      if (Date.now() >= nextStats) {
        opts.emit(statsEvent(cg, id));
        nextStats = Date.now() + opts.intervalMs;
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(1, Math.min(pollMs, nextStats - Date.now())));
        wakeup = () => {
          clearTimeout(t);
          resolve();
        };
      });
      wakeup = undefined;
    }
    checkOom();
  } finally {
    unwatch();
  }
}
