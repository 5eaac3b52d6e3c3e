/*
 * Container statistics read from the cgroup files, in the shape of containerd's cgroups Metrics
 * (shim/proto/cgroups/stats/v1/metrics.proto = io.containerd.cgroups.v1.Metrics on v1 and hybrid
 * hosts, shim/proto/cgroups/cgroup2/stats/metrics.proto = io.containerd.cgroups.v2.Metrics on
 * v2): plain objects with the proto's snake_case field names, numbers for uint64 ("max" →
 * 2^64-1 as containerd does; values above 2^53 lose precision). Missing files give zeros, so one
 * absent controller never fails the whole read. `shoal events` converts these to runc's format.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { CgroupHandle } from './cgroup/types';

/** uint64 "max" / unlimited, as containerd reports it. */
export const UINT64_MAX = 18446744073709551615;

/** One cgroup interface file: text or undefined when absent/unreadable. */
function read(dir: string | undefined, file: string): string | undefined {
  if (!dir) return undefined;
  try {
    return fs.readFileSync(path.join(dir, file), 'utf8');
  } catch {
    return undefined;
  }
}

/** A number from cgroup text: "max" → UINT64_MAX, garbage/absent → 0. */
export function num(text: string | undefined): number {
  const t = (text ?? '').trim();
  if (t === 'max') return UINT64_MAX;
  const n = Number(t);
  return Number.isFinite(n) && n >= 0 ? n : 0;
}

/** Parse a flat keyed file ("key value" lines: memory.stat, cpu.stat, memory.events ...). */
export function parseFlatKeyed(text: string | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of (text ?? '').split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined) out[k] = num(v);
  }
  return out;
}

/** Parse a nested keyed file ("8:0 rbytes=1 wbytes=2", "mlx5_0 hca_handle=2 hca_object=max"). */
export function parseNestedKeyed(text: string | undefined): Array<{ key: string; values: Record<string, number> }> {
  const out: Array<{ key: string; values: Record<string, number> }> = [];
  for (const line of (text ?? '').split('\n')) {
    const [key, ...rest] = line.trim().split(/\s+/);
    if (!key) continue;
    const values: Record<string, number> = {};
    for (const kv of rest) {
      const i = kv.indexOf('=');
      if (i > 0) values[kv.slice(0, i)] = num(kv.slice(i + 1));
    }
    out.push({ key, values });
  }
  return out;
}

/** Huge page size names ("2MB") that have files in `dir` (from hugetlb.<size>.* names). */
function hugeSizes(dir: string | undefined): string[] {
  if (!dir) return [];
  try {
    const set = new Set<string>();
    for (const f of fs.readdirSync(dir)) {
      const m = /^hugetlb\.([0-9]+[KMGT]B)\./.exec(f);
      if (m) set.add(m[1]);
    }
    return [...set].sort();
  } catch {
    return [];
  }
}

/** "8:0 Read 123" lines of a v1 blkio file → BlkIOEntry list (the "Total" lines are dropped). */
function blkioEntries(text: string | undefined): V1BlkIOEntry[] {
  const out: V1BlkIOEntry[] = [];
  for (const line of (text ?? '').split('\n')) {
    const f = line.trim().split(/\s+/);
    const m = /^(\d+):(\d+)$/.exec(f[0] ?? '');
    if (!m) continue;
    const [op, value] = f.length >= 3 ? [f[1], f[2]] : ['', f[1]];
    out.push({ op, device: '', major: Number(m[1]), minor: Number(m[2]), value: num(value) });
  }
  return out;
}

/** io.containerd.cgroups.v1.BlkIOEntry. */
export interface V1BlkIOEntry { op: string; device: string; major: number; minor: number; value: number }
/** io.containerd.cgroups.v1.MemoryEntry. */
export interface V1MemoryEntry { limit: number; usage: number; max: number; failcnt: number }
/** io.containerd.cgroups.v1.HugetlbStat. */
export interface V1HugetlbStat { usage: number; max: number; failcnt: number; pagesize: string }

/** io.containerd.cgroups.v1.Metrics (the parts shoal fills). */
export interface V1Metrics {
  hugetlb: V1HugetlbStat[];
  pids: { current: number; limit: number };
  cpu: {
    usage: { total: number; kernel: number; user: number; per_cpu: number[] };
    throttling: { periods: number; throttled_periods: number; throttled_time: number };
  };
  /** memory.stat fields under their proto names plus the four MemoryEntry objects. */
  memory: Record<string, number> & { usage: V1MemoryEntry; swap: V1MemoryEntry; kernel: V1MemoryEntry; kernel_tcp: V1MemoryEntry };
  blkio: Record<string, V1BlkIOEntry[]>;
  memory_oom_control: { oom_kill_disable: number; under_oom: number; oom_kill: number };
}

/** memory.stat key → MemoryStat field (v1); keys not listed keep their name. */
const V1_MEMSTAT_RENAME: Record<string, string> = {
  pgpgin: 'pg_pg_in', pgpgout: 'pg_pg_out', pgfault: 'pg_fault', pgmajfault: 'pg_maj_fault',
  hierarchical_memsw_limit: 'hierarchical_swap_limit', total_pgpgin: 'total_pg_pg_in',
  total_pgpgout: 'total_pg_pg_out', total_pgfault: 'total_pg_fault', total_pgmajfault: 'total_pg_maj_fault',
};
const V1_MEMSTAT_FIELDS = [
  'cache', 'rss', 'rss_huge', 'mapped_file', 'dirty', 'writeback', 'pg_pg_in', 'pg_pg_out', 'pg_fault',
  'pg_maj_fault', 'inactive_anon', 'active_anon', 'inactive_file', 'active_file', 'unevictable',
  'hierarchical_memory_limit', 'hierarchical_swap_limit',
];

/** Clock ticks per second of cpuacct.stat (USER_HZ, 100 on every Linux ABI shoal runs on). */
const USER_HZ = 100;

/** Read io.containerd.cgroups.v1.Metrics of a v1 or hybrid cgroup. */
export function collectV1Metrics(cg: CgroupHandle): V1Metrics {
  const mem = cg.controllerDir('memory');
  const acct = cg.controllerDir('cpuacct');
  const cpu = cg.controllerDir('cpu');
  const blk = cg.controllerDir('blkio');
  const huge = cg.controllerDir('hugetlb');
  const entry = (prefix: string): V1MemoryEntry => ({
    limit: num(read(mem, `${prefix}.limit_in_bytes`)),
    usage: num(read(mem, `${prefix}.usage_in_bytes`)),
    max: num(read(mem, `${prefix}.max_usage_in_bytes`)),
    failcnt: num(read(mem, `${prefix}.failcnt`)),
  });
  const stat = parseFlatKeyed(read(mem, 'memory.stat'));
  const memory = { usage: entry('memory'), swap: entry('memory.memsw'), kernel: entry('memory.kmem'), kernel_tcp: entry('memory.kmem.tcp') } as V1Metrics['memory'];
  for (const f of V1_MEMSTAT_FIELDS) memory[f] = 0;
  for (const [k, v] of Object.entries(stat)) {
    const name = V1_MEMSTAT_RENAME[k] ?? k;
    if (V1_MEMSTAT_FIELDS.includes(name) || (name.startsWith('total_') && V1_MEMSTAT_FIELDS.includes(name.slice(6)))) memory[name] = v;
  }
  const ticks = parseFlatKeyed(read(acct, 'cpuacct.stat'));
  const cpuStat = parseFlatKeyed(read(cpu, 'cpu.stat'));
  const oom = parseFlatKeyed(read(mem, 'memory.oom_control'));
  const blkio: Record<string, V1BlkIOEntry[]> = {};
  for (const name of ['io_service_bytes', 'io_serviced', 'io_queued', 'io_service_time', 'io_wait_time', 'io_merged', 'time', 'sectors']) {
    const key = name === 'time' ? 'io_time_recursive' : `${name}_recursive`;
    let list = blkioEntries(read(blk, `blkio.${name}_recursive`));
    if (list.length === 0) list = blkioEntries(read(blk, `blkio.bfq.${name}_recursive`));
    if (list.length === 0 && (name === 'io_service_bytes' || name === 'io_serviced')) list = blkioEntries(read(blk, `blkio.throttle.${name}_recursive`));
    blkio[key] = list;
  }
  return {
    hugetlb: hugeSizes(huge).map((size) => {
      if (read(huge, `hugetlb.${size}.usage_in_bytes`) !== undefined) {
        return { pagesize: size, usage: num(read(huge, `hugetlb.${size}.usage_in_bytes`)), max: num(read(huge, `hugetlb.${size}.max_usage_in_bytes`)), failcnt: num(read(huge, `hugetlb.${size}.failcnt`)) };
      }
      // Hybrid host: hugetlb lives in the unified hierarchy (current/max/events files).
      return { pagesize: size, usage: num(read(huge, `hugetlb.${size}.current`)), max: 0, failcnt: parseFlatKeyed(read(huge, `hugetlb.${size}.events`)).max ?? 0 };
    }),
    pids: { current: num(read(cg.controllerDir('pids'), 'pids.current')), limit: pidsLimit(read(cg.controllerDir('pids'), 'pids.max')) },
    cpu: {
      usage: {
        total: num(read(acct, 'cpuacct.usage')),
        kernel: ((ticks.system ?? 0) * 1e9) / USER_HZ,
        user: ((ticks.user ?? 0) * 1e9) / USER_HZ,
        per_cpu: (read(acct, 'cpuacct.usage_percpu') ?? '').trim().split(/\s+/).filter(Boolean).map(num),
      },
      throttling: { periods: cpuStat.nr_periods ?? 0, throttled_periods: cpuStat.nr_throttled ?? 0, throttled_time: cpuStat.throttled_time ?? 0 },
    },
    memory,
    blkio,
    memory_oom_control: { oom_kill_disable: oom.oom_kill_disable ?? 0, under_oom: oom.under_oom ?? 0, oom_kill: oom.oom_kill ?? 0 },
  };
}

/** pids.max → limit: "max" is reported as 0 (no limit), as containerd does. */
function pidsLimit(text: string | undefined): number {
  return (text ?? '').trim() === 'max' ? 0 : num(text);
}

/** io.containerd.cgroups.v2.Metrics (the parts shoal fills). */
export interface V2Metrics {
  pids: { current: number; limit: number };
  cpu: Record<'usage_usec' | 'user_usec' | 'system_usec' | 'nr_periods' | 'nr_throttled' | 'throttled_usec' | 'nr_bursts' | 'burst_usec', number>;
  /** memory.stat fields under their proto names, plus usage/usage_limit/swap_usage/swap_limit/max_usage/swap_max_usage. */
  memory: Record<string, number>;
  memory_events: { low: number; high: number; max: number; oom: number; oom_kill: number };
  io: { usage: Array<{ major: number; minor: number; rbytes: number; wbytes: number; rios: number; wios: number }> };
  hugetlb: Array<{ current: number; max: number; pagesize: string }>;
  rdma: { current: RdmaEntry[]; limit: RdmaEntry[] };
}

/** io.containerd.cgroups.v2.RdmaEntry. */
export interface RdmaEntry { device: string; hca_handles: number; hca_objects: number }

const V2_MEMSTAT_FIELDS = [
  'anon', 'file', 'kernel_stack', 'slab', 'sock', 'shmem', 'file_mapped', 'file_dirty', 'file_writeback',
  'anon_thp', 'inactive_anon', 'active_anon', 'inactive_file', 'active_file', 'unevictable',
  'slab_reclaimable', 'slab_unreclaimable', 'pgfault', 'pgmajfault', 'workingset_refault',
  'workingset_activate', 'workingset_nodereclaim', 'pgrefill', 'pgscan', 'pgsteal', 'pgactivate',
  'pgdeactivate', 'pglazyfree', 'pglazyfreed', 'thp_fault_alloc', 'thp_collapse_alloc',
];

/** rdma.current / rdma.max text → RdmaEntry list. */
function rdmaEntries(text: string | undefined): RdmaEntry[] {
  return parseNestedKeyed(text).map((e) => ({ device: e.key, hca_handles: e.values.hca_handle ?? 0, hca_objects: e.values.hca_object ?? 0 }));
}

/** Read io.containerd.cgroups.v2.Metrics of a cgroup in the unified hierarchy. */
export function collectV2Metrics(cg: CgroupHandle): V2Metrics {
  const dir = cg.controllerDir('') ?? cg.dirs()[0];
  const stat = parseFlatKeyed(read(dir, 'memory.stat'));
  const memory: Record<string, number> = {};
  for (const f of V2_MEMSTAT_FIELDS) memory[f] = stat[f] ?? 0;
  // Kernels >= 5.9 split the workingset counters into _anon and _file.
  for (const f of ['workingset_refault', 'workingset_activate']) {
    if (stat[f] === undefined) memory[f] = (stat[`${f}_anon`] ?? 0) + (stat[`${f}_file`] ?? 0);
  }
  memory.usage = num(read(dir, 'memory.current'));
  memory.usage_limit = num(read(dir, 'memory.max'));
  memory.swap_usage = num(read(dir, 'memory.swap.current'));
  memory.swap_limit = num(read(dir, 'memory.swap.max'));
  memory.max_usage = num(read(dir, 'memory.peak'));
  memory.swap_max_usage = num(read(dir, 'memory.swap.peak'));
  const c = parseFlatKeyed(read(dir, 'cpu.stat'));
  const ev = parseFlatKeyed(read(dir, 'memory.events'));
  return {
    pids: { current: num(read(dir, 'pids.current')), limit: pidsLimit(read(dir, 'pids.max')) },
    cpu: {
      usage_usec: c.usage_usec ?? 0, user_usec: c.user_usec ?? 0, system_usec: c.system_usec ?? 0,
      nr_periods: c.nr_periods ?? 0, nr_throttled: c.nr_throttled ?? 0, throttled_usec: c.throttled_usec ?? 0,
      nr_bursts: c.nr_bursts ?? 0, burst_usec: c.burst_usec ?? 0,
    },
    memory,
    memory_events: { low: ev.low ?? 0, high: ev.high ?? 0, max: ev.max ?? 0, oom: ev.oom ?? 0, oom_kill: ev.oom_kill ?? 0 },
    io: {
      usage: parseNestedKeyed(read(dir, 'io.stat')).map((e) => {
        const [major, minor] = e.key.split(':').map(Number);
        const v = e.values;
        return { major, minor, rbytes: v.rbytes ?? 0, wbytes: v.wbytes ?? 0, rios: v.rios ?? 0, wios: v.wios ?? 0 };
      }),
    },
    hugetlb: hugeSizes(dir).map((size) => ({ pagesize: size, current: num(read(dir, `hugetlb.${size}.current`)), max: num(read(dir, `hugetlb.${size}.max`)) })),
    rdma: { current: rdmaEntries(read(dir, 'rdma.current')), limit: rdmaEntries(read(dir, 'rdma.max')) },
  };
}

/** Metrics of either kind: v2 on pure v2 hosts, v1 otherwise. */
export type Metrics = { version: 1; metrics: V1Metrics } | { version: 2; metrics: V2Metrics };

/** Read the container's metrics in the form matching the host (containerd's shim Stats payload). */
export function collectMetrics(cg: CgroupHandle): Metrics {
  return cg.mode === 'v2' ? { version: 2, metrics: collectV2Metrics(cg) } : { version: 1, metrics: collectV1Metrics(cg) };
}
