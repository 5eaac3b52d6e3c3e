/**
 * linux.cgroupsPath and linux.resources. Limits are read back on the host through the
 * container pid's /proc/<pid>/cgroup after `create` (the cgroup must be set up before start),
 * for cgroup v1 (incl. hybrid hosts) and the unified v2 hierarchy; one case also reads them
 * from inside through a cgroup mount.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Case, CaseContext, checkOf } from '../context';
import { Config } from '../bundle';
import { blkioWeightSupported, cgroupFileOf, cgroupPathOf } from '../host';
import { check, checkEqual, skip } from '../tap';

/** A container created (not started) in its own cgroupsPath with the given resources. */
async function limited(ctx: CaseContext, resources: Record<string, any>, extra: (c: Config) => void = () => {}) {
  const cgPath = `/${ctx.newId()}-cg`;
  ctx.trackCgroup(cgPath);
  const s = await ctx.createSleeper((c) => {
    c.linux!.cgroupsPath = cgPath;
    c.linux!.resources = resources;
    extra(c);
  });
  return { ...s, cgPath };
}

/** Reads a cgroup file of `pid`; on v2 uses `v2file`, on v1 the `v1ctrl` hierarchy's `v1file`. */
function readCg(ctx: CaseContext, pid: number, v1ctrl: string, v1file: string, v2file: string): string {
  const v2 = ctx.host.cgroup === 'v2';
  const f = cgroupFileOf(ctx.host, pid, v1ctrl, v2 ? v2file : v1file);
  check(f, `cannot locate the ${v1ctrl} cgroup of pid ${pid}`);
  if (!fs.existsSync(f)) skip(`host cgroup has no ${path.basename(f)}`);
  return fs.readFileSync(f, 'utf8').trim();
}

/** v1 cpu.shares -> v2 cpu.weight, both conversions in use (runc/crun linear, newer quadratic). */
function weightsFor(shares: number): number[] {
  const linear = 1 + Math.floor(((shares - 2) * 9999) / 262142);
  const l = Math.log2(shares);
  const quad = Math.ceil(Math.pow(10, (l * l + 125 * l) / 612.0 - 7.0 / 34.0));
  return [linear, quad];
}

function firstBlockDevice(): string | null {
  try {
    for (const b of fs.readdirSync('/sys/block')) {
      if (/^(loop|ram|zram|dm-|nbd)/.test(b)) continue;
      return fs.readFileSync(`/sys/block/${b}/dev`, 'utf8').trim();
    }
  } catch {
    /* none */
  }
  return null;
}

const cases: Case[] = [
  {
    name: 'cgroups: cgroupsPath places the process',
    async run(ctx) {
      const s = await limited(ctx, {});
      const ctrls = ctx.host.cgroup === 'v2' ? ['unified'] : ['memory', 'pids', 'cpu'];
      for (const ctrl of ctrls) checkEqual(cgroupPathOf(ctx.host, s.pid, ctrl), s.cgPath, `${ctrl} cgroup of the container process`);
    },
  },
  {
    name: 'cgroups: cgroup removed on delete',
    async run(ctx) {
      const s = await limited(ctx, { pids: { limit: 100 } });
      const f = cgroupFileOf(ctx.host, s.pid, 'pids', 'pids.max');
      check(f, 'cannot locate the pids cgroup');
      const r = await ctx.rt.delete(s.id, true);
      check(r.code === 0, `delete --force exited ${r.code}`, { stderr: r.stderr });
      for (let i = 0; i < 20 && fs.existsSync(path.dirname(f)); i++) await new Promise((res) => setTimeout(res, 100));
      check(!fs.existsSync(path.dirname(f)), `cgroup ${path.dirname(f)} left behind after delete`);
    },
  },
  {
    name: 'cgroups: memory limit and reservation',
    async run(ctx) {
      const s = await limited(ctx, { memory: { limit: 64 << 20, reservation: 32 << 20 } });
      checkEqual(readCg(ctx, s.pid, 'memory', 'memory.limit_in_bytes', 'memory.max'), String(64 << 20), 'memory limit');
      checkEqual(readCg(ctx, s.pid, 'memory', 'memory.soft_limit_in_bytes', 'memory.low'), String(32 << 20), 'memory reservation');
    },
  },
  {
    name: 'cgroups: cpu shares',
    async run(ctx) {
      const s = await limited(ctx, { cpu: { shares: 512 } });
      if (ctx.host.cgroup === 'v2') {
        const w = Number(readCg(ctx, s.pid, 'cpu', '', 'cpu.weight'));
        check(weightsFor(512).includes(w), `cpu.weight ${w} is not a conversion of shares 512`, { accepted: weightsFor(512) });
      } else {
        checkEqual(readCg(ctx, s.pid, 'cpu', 'cpu.shares', ''), '512', 'cpu.shares');
      }
    },
  },
  {
    name: 'cgroups: cpu quota and period',
    async run(ctx) {
      const s = await limited(ctx, { cpu: { quota: 50000, period: 100000 } });
      if (ctx.host.cgroup === 'v2') {
        checkEqual(readCg(ctx, s.pid, 'cpu', '', 'cpu.max'), '50000 100000', 'cpu.max');
      } else {
        checkEqual(readCg(ctx, s.pid, 'cpu', 'cpu.cfs_quota_us', ''), '50000', 'cpu.cfs_quota_us');
        checkEqual(readCg(ctx, s.pid, 'cpu', 'cpu.cfs_period_us', ''), '100000', 'cpu.cfs_period_us');
      }
    },
  },
  {
    name: 'cgroups: cpuset cpus and mems',
    async run(ctx) {
      const s = await limited(ctx, { cpu: { cpus: '0', mems: '0' } });
      checkEqual(readCg(ctx, s.pid, 'cpuset', 'cpuset.cpus', 'cpuset.cpus'), '0', 'cpuset.cpus');
      checkEqual(readCg(ctx, s.pid, 'cpuset', 'cpuset.mems', 'cpuset.mems'), '0', 'cpuset.mems');
    },
  },
  {
    name: 'cgroups: pids limit',
    async run(ctx) {
      const s = await limited(ctx, { pids: { limit: 64 } });
      checkEqual(readCg(ctx, s.pid, 'pids', 'pids.max', 'pids.max'), '64', 'pids.max');
    },
  },
  {
    name: 'cgroups: blkio weight',
    async run(ctx) {
      const v2 = ctx.host.cgroup === 'v2';
      if (blkioWeightSupported(ctx.host) === false) skip('this kernel offers no blkio/io weight file (no BFQ or CFQ I/O scheduler)');
      const s = await limited(ctx, { blockIO: { weight: 300 } });
      const f = cgroupFileOf(ctx.host, s.pid, 'blkio', v2 ? 'io.bfq.weight' : 'blkio.weight');
      const alt = cgroupFileOf(ctx.host, s.pid, 'blkio', v2 ? 'io.weight' : 'blkio.bfq.weight');
      const file = [f, alt].find((x) => x && fs.existsSync(x));
      if (!file) skip('host I/O scheduler offers no blkio/io weight file (no BFQ/CFQ)');
      const text = fs.readFileSync(file, 'utf8');
      // v2 io.weight takes a converted value (1 + (w - 10) * 9999 / 990); BFQ takes w as is.
      const converted = 1 + Math.floor(((300 - 10) * 9999) / 990);
      check(new RegExp(`\\b(300${v2 ? `|${converted}` : ''})\\b`).test(text), `${path.basename(file)} does not show weight 300`, { content: text });
    },
  },
  {
    name: 'cgroups: blkio throttle read bps',
    async run(ctx) {
      const dev = firstBlockDevice();
      if (!dev) skip('host has no block device');
      const [major, minor] = dev.split(':').map(Number);
      const s = await limited(ctx, { blockIO: { throttleReadBpsDevice: [{ major, minor, rate: 1048576 }] } });
      if (ctx.host.cgroup === 'v2') {
        const t = readCg(ctx, s.pid, 'blkio', '', 'io.max');
        check(t.includes(`${dev} rbps=1048576`), 'io.max lacks the read limit', { content: t });
      } else {
        const t = readCg(ctx, s.pid, 'blkio', 'blkio.throttle.read_bps_device', '');
        check(t.split('\n').includes(`${dev} 1048576`), 'blkio.throttle.read_bps_device lacks the limit', { content: t });
      }
    },
  },
  {
    name: 'cgroups: memory limit visible inside through a cgroup mount',
    async run(ctx) {
      const cgPath = `/${ctx.newId()}-cg`;
      ctx.trackCgroup(cgPath);
      const file = ctx.host.cgroup === 'v2' ? '/sys/fs/cgroup/memory.max' : '/sys/fs/cgroup/memory/memory.limit_in_bytes';
      const p = await ctx.probe((c) => {
        c.linux!.cgroupsPath = cgPath;
        c.linux!.resources = { memory: { limit: 48 << 20 } };
        c.linux!.namespaces!.push({ type: 'cgroup' });
        c.mounts!.push({ destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] });
      }, ['--read', file]);
      checkEqual((checkOf(p, 'read', file).content ?? '').trim(), String(48 << 20), `${file} inside`);
      check((p.cgroup as string[]).some((l) => /:\/$/.test(l)), 'with a cgroup namespace the process should see itself at /', { cgroup: p.cgroup });
    },
  },
];

/** Cgroup cases (all tagged 'cgroup' for --cgroup-only). */
export const cgroupCases: Case[] = cases.map((c) => ({ ...c, tags: ['cgroup'] }));
