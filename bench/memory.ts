/**
 * Memory benchmark for shoal (issue 7), side by side with runc in one run, reported as ratios:
 *
 *  1. memory: 6 idle node containers (`node -e 'setInterval(()=>{},1000)'`). shoal runs 3 from
 *     each of two separately copied rootfs (different inodes) with org.shoal.share=all (and, as
 *     extra rows, =libs and off) and one copy added to a private layer store; runc runs all 6
 *     from one copy (perfect sharing, its best case) and 3+3 from the two copies (the realistic
 *     case). Total PSS of the container processes after they settle, and the page cache the
 *     copies and the store hold (fincore, after evicting unmapped pages).
 *     Target: shoal share=all ≤ 1.05 × runc 6-from-one-copy.
 *  2. create latency: shoal create + start + delete of the node bundle with sharing on vs off
 *     (medians; target ≤ 1.1×), runc as a reference.
 *  3. start storm: 100 containers `run -d` (2-4 in parallel): shoal from a `shoal gen --store`
 *     bundle of /bin/sleep, runc from a busybox-static rootfs; wall time and total PSS; then delete.
 *
 *   npx tsc -p bench && node build/bench/memory.js [--phases memory,latency,storm] [--rounds N]
 *       [--iterations N] [--storm N] [--parallel N] [--out FILE | --no-json]
 *
 * Must run as root. Everything lives in one temp dir (copies, store, bundles, --root dirs) and is
 * removed at the end, also after a failure or Ctrl-C, once every container is deleted.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { capture } from './lib/exec';
import { findBusybox, makeBundle } from './lib/bundle';
import { summarize, Summary } from './lib/stats';
import { buildCopy, Copy, regularFiles, writeBundle } from './lib/memory-rootfs';
import { cgroupDirs, evict, hostProcesses, mib, PssTotal, residentBytes, sumPss } from './lib/memory-measure';
import { pool, Runtime } from './lib/memory-runtime';

const TARGET_PSS_RATIO = 1.05;
const TARGET_CREATE_RATIO = 1.1;
const NODE_SCRIPT = 'setInterval(()=>{},1000)';
/** Stripped from the runtimes' environment (see README: NODE_EXTRA_CA_CERTS costs ~40-55 ms per node start). */
const STRIPPED_ENV = ['NODE_EXTRA_CA_CERTS', 'NODE_OPTIONS', 'NODE_DEBUG', 'NODE_V8_COVERAGE', 'SHOAL_TRACE'];
const PHASES = ['memory', 'latency', 'storm'];

interface Options {
  phases: string[];
  rounds: number;
  settle: number;
  iterations: number;
  warmup: number;
  storm: number;
  parallel: number;
  out: string | null;
  keepEnv: boolean;
  runc: string;
}

const USAGE = `usage: node build/bench/memory.js [options]
  --phases LIST     comma-separated subset of memory,latency,storm (default all)
  --rounds N        memory: rounds of every scenario, in a fresh random order each (default 3)
  --settle S        seconds to let containers settle before measuring (default 3)
  --iterations N    latency: measured iterations (default 15)
  --warmup N        latency: unmeasured iterations first (default 2)
  --storm N         storm: containers per runtime (default 100)
  --parallel N      storm: concurrent run -d / delete (default 3)
  --out FILE        JSON results path (default bench/results/memory-<date>.json)
  --no-json         do not write JSON
  --keep-env        keep NODE_EXTRA_CA_CERTS, NODE_OPTIONS, ... for the runtimes (stripped by default)
  --runc PATH       runc binary (default /usr/sbin/runc)
`;

function parseOptions(argv: string[]): Options {
  const o: Options = { phases: PHASES, rounds: 3, settle: 3, iterations: 15, warmup: 2, storm: 100, parallel: 3, out: '', keepEnv: false, runc: '/usr/sbin/runc' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const [flag, inline] = a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    const num = (min: number): number => {
      const v = value();
      const n = Number(v);
      if (!Number.isFinite(n) || n < min) throw new Error(`${flag}: want a number ≥ ${min}: ${v}`);
      return n;
    };
    switch (flag) {
      case '--phases': o.phases = value().split(',').map((s) => s.trim()).filter(Boolean); break;
      case '--rounds': o.rounds = Math.round(num(1)); break;
      case '--settle': o.settle = num(0); break;
      case '--iterations': case '-n': o.iterations = Math.round(num(1)); break;
      case '--warmup': o.warmup = Math.round(num(0)); break;
      case '--storm': o.storm = Math.round(num(1)); break;
      case '--parallel': o.parallel = Math.round(num(1)); break;
      case '--out': o.out = value(); break;
      case '--no-json': o.out = null; break;
      case '--keep-env': o.keepEnv = true; break;
      case '--runc': o.runc = value(); break;
      case '--help': case '-h': process.stdout.write(USAGE); process.exit(0);
      default: throw new Error(`unknown option ${a}\n${USAGE}`);
    }
  }
  for (const p of o.phases) if (!PHASES.includes(p)) throw new Error(`unknown phase ${p}`);
  return o;
}

function repoRoot(): string {
  for (let d = __dirname; d !== path.dirname(d); d = path.dirname(d)) {
    const p = path.join(d, 'package.json');
    if (fs.existsSync(p) && JSON.parse(fs.readFileSync(p, 'utf8')).name === 'shoal') return d;
  }
  throw new Error('shoal repository root not found above ' + __dirname);
}

class Stopped extends Error {
  constructor() {
    super('stopped');
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const load = () => os.loadavg().map((l) => l.toFixed(2)).join(' ');

function shuffle<T>(a: T[]): T[] {
  for (let k = a.length - 1; k > 0; k--) {
    const j = Math.floor(Math.random() * (k + 1));
    [a[k], a[j]] = [a[j], a[k]];
  }
  return a;
}

/** One memory scenario: which runtime runs which 6 bundles. */
interface Scenario {
  name: string;
  label: string;
  rt: Runtime;
  bundles: string[];
}

interface MemorySample {
  round: number;
  pss: PssTotal;
  /** Resident page cache (bytes) after evicting unmapped pages. */
  pageCache: { copyA: number; copyB: number; store: number; total: number };
  containers: number;
  /** Processes outside the containers whose command line names the runtime's --root (should be none). */
  outside: number;
  loadavg: string;
}

interface StormResult {
  runtime: string;
  bundle: string;
  n: number;
  parallel: number;
  started: number;
  failures: string[];
  wallMs: number;
  perRunMs: Summary;
  pss: PssTotal;
  pssPerContainerKiB: number;
  outside: Array<{ pid: number; cmd: string; pssKiB: number }>;
  memAvailableDropKiB: number;
  deleteWallMs: number;
  deleteFailures: number;
  loadavg: string;
}

function memAvailableKiB(): number {
  const m = /MemAvailable:\s+(\d+) kB/.exec(fs.readFileSync('/proc/meminfo', 'utf8'));
  return m ? Number(m[1]) : NaN;
}

class MemoryBench {
  readonly tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-bench-mem-'));
  readonly repo = repoRoot();
  readonly prefix = `sm${process.pid}`;
  readonly store = path.join(this.tmp, 'store');
  readonly logs = path.join(this.tmp, 'logs');
  readonly env: NodeJS.ProcessEnv;
  readonly stripped: string[];
  shoalBin = '';
  shoal!: Runtime;
  runc!: Runtime;
  copies: Copy[] = [];
  bundles: Record<string, string> = {};
  stopping = false;
  errors: string[] = [];
  info: Record<string, unknown> = {};
  memory: Record<string, MemorySample[]> = {};
  latency: Record<string, Record<string, number[]>> = {};
  storm: StormResult[] = [];
  private cleaned = false;

  constructor(readonly opts: Options) {
    const env = { ...process.env };
    if (!opts.keepEnv) for (const k of STRIPPED_ENV) delete env[k];
    this.env = env;
    this.stripped = opts.keepEnv ? [] : STRIPPED_ENV.filter((k) => process.env[k] !== undefined);
    fs.mkdirSync(this.logs);
  }

  check(): void {
    if (this.stopping) throw new Stopped();
  }

  setup(): void {
    if (process.getuid?.() !== 0) throw new Error('run as root');
    const bundled = path.join(this.repo, 'build/shoal.js');
    const main = path.join(this.repo, 'build/shim/src/cli/main.js');
    this.shoalBin = fs.existsSync(bundled) ? bundled : main;
    if (!fs.existsSync(this.shoalBin)) throw new Error(`${bundled} missing: build shoal first (see bench/README.md)`);
    if (!fs.existsSync(this.opts.runc)) throw new Error(`${this.opts.runc} not found`);
    const busybox = findBusybox();
    if (!busybox) throw new Error('busybox not found (apt-get install busybox-static)');
    this.shoal = new Runtime('shoal', [process.execPath, this.shoalBin], path.join(this.tmp, 'root-shoal'), { ...this.env, SHOAL_LAYER_STORE: this.store }, this.logs);
    this.runc = new Runtime('runc', [this.opts.runc], path.join(this.tmp, 'root-runc'), this.env, this.logs);
    if (!this.opts.phases.some((p) => p === 'memory' || p === 'latency')) return;

    const node = fs.realpathSync(process.execPath);
    let t = Date.now();
    this.copies = ['a', 'b'].map((c) => buildCopy(path.join(this.tmp, `copy-${c}`, 'rootfs'), node, busybox));
    const a = fs.statSync(path.join(this.copies[0].rootfs, node)).ino;
    const b = fs.statSync(path.join(this.copies[1].rootfs, node)).ino;
    if (a === b) throw new Error('the two copies share an inode');
    const bytes = this.copies[0].files.reduce((s, f) => s + fs.statSync(f).size, 0);
    this.info.copies = { program: node, files: this.copies[0].files.map((f) => path.relative(this.copies[0].rootfs, f)), bytesPerCopy: bytes, buildMs: Date.now() - t };
    process.stderr.write(`copies: 2 × ${this.copies[0].files.length} files, ${(bytes / 1048576).toFixed(1)} MiB each\n`);

    // One copy into the private store (the whole rootfs: node, libraries, busybox).
    t = Date.now();
    const add = capture([process.execPath, this.shoalBin, 'layer', '--store', this.store, 'add', this.copies[0].rootfs, '--name', 'bench-node'], this.env);
    if (!add.ok) throw new Error(`shoal layer add: ${add.err}`);
    this.info.layerAdd = { output: add.out, ms: Date.now() - t };
    process.stderr.write(`store: ${add.out}\n`);

    const args = [node, '-e', NODE_SCRIPT];
    this.copies.forEach((c, i) => {
      const name = 'ab'[i];
      this.bundles[`${name}-off`] = writeBundle(path.join(this.tmp, 'bundles', `${name}-off`), this.opts.runc, c.rootfs, args);
      for (const mode of ['all', 'libs'])
        this.bundles[`${name}-${mode}`] = writeBundle(path.join(this.tmp, 'bundles', `${name}-${mode}`), this.opts.runc, c.rootfs, args, { 'org.shoal.share': mode });
    });

    // The first create with sharing hashes the rootfs (digest cache); do it now, timed, so no
    // measurement below includes it. libs first: a create keeps only the cache entries it looked
    // up, and share=all looks up a superset of what share=libs does.
    const prime: Record<string, number> = {};
    for (const k of ['a-libs', 'b-libs', 'a-all', 'b-all']) {
      const id = `${this.prefix}-prime-${k}`;
      const c = this.shoal.time(['create', '-b', this.bundles[k], id]);
      if (c.status !== 0) throw new Error(`shoal create ${k} (priming): ${c.log}`);
      prime[k] = c.ns / 1e6;
      this.shoal.deleteSync(id);
    }
    this.info.firstCreateMs = prime;
    process.stderr.write(`first create with sharing (hashes the copy): ${Object.entries(prime).map(([k, v]) => `${k} ${v.toFixed(0)} ms`).join(', ')}\n`);
  }

  /** Every regular file of both copies and the store. */
  pageFiles(): { a: string[]; b: string[]; store: string[] } {
    return { a: regularFiles(this.copies[0].rootfs), b: regularFiles(this.copies[1].rootfs), store: regularFiles(path.join(this.store, 'objects')) };
  }

  evictAll(): void {
    const f = this.pageFiles();
    evict([...f.a, ...f.b, ...f.store]);
  }

  async memoryPhase(): Promise<void> {
    const six = (x: string, y: string) => [x, x, x, y, y, y].map((k) => this.bundles[k]);
    const scenarios: Scenario[] = [
      { name: 'runc-1copy', label: 'runc, 6 from one copy', rt: this.runc, bundles: six('a-off', 'a-off') },
      { name: 'runc-2copies', label: 'runc, 3+3 from two copies', rt: this.runc, bundles: six('a-off', 'b-off') },
      { name: 'shoal-all', label: 'shoal share=all, 3+3', rt: this.shoal, bundles: six('a-all', 'b-all') },
      { name: 'shoal-libs', label: 'shoal share=libs, 3+3', rt: this.shoal, bundles: six('a-libs', 'b-libs') },
      { name: 'shoal-off', label: 'shoal no sharing, 3+3', rt: this.shoal, bundles: six('a-off', 'b-off') },
    ];
    this.info.scenarios = scenarios.map((s) => ({ name: s.name, label: s.label, bundles: s.bundles.map((b) => path.basename(b)) }));
    for (let round = 0; round < this.opts.rounds; round++) {
      for (const s of shuffle([...scenarios])) {
        this.check();
        process.stderr.write(`memory round ${round + 1}/${this.opts.rounds}: ${s.label} ... `);
        this.evictAll();
        const ids: string[] = [];
        for (let i = 0; i < s.bundles.length; i++) {
          this.check();
          const id = `${this.prefix}-m${round}-${s.name}-${i}`;
          ids.push(id);
          const r = await s.rt.runDetached(s.bundles[i], id);
          if (r.status !== 0) throw new Error(`${s.rt.key} run -d ${id}: exit ${r.status ?? r.signal}: ${r.log.trim()}`);
        }
        await sleep(this.opts.settle * 1000);
        this.check();
        const pids = ids.flatMap((id) => s.rt.pids(id));
        const pss = sumPss(pids);
        const f = this.pageFiles();
        evict([...f.a, ...f.b, ...f.store]);
        const pc = { copyA: residentBytes(f.a), copyB: residentBytes(f.b), store: residentBytes(f.store), total: 0 };
        pc.total = pc.copyA + pc.copyB + pc.store;
        const outside = hostProcesses(s.rt.root, new Set(pids)).length;
        (this.memory[s.name] ??= []).push({ round, pss, pageCache: pc, containers: ids.length, outside, loadavg: load() });
        process.stderr.write(`PSS ${mib(pss.pss)} MiB (${pss.processes} processes), page cache ${(pc.total / 1048576).toFixed(1)} MiB\n`);
        for (const id of ids) s.rt.deleteSync(id);
      }
    }
  }

  async latencyPhase(): Promise<void> {
    // share=libs runs on copy a: the digest cache is per rootfs and a create keeps only the entries
    // it looked up, so a libs create on copy b would drop node's entry and make the next share=all
    // create of copy b hash node (98 MiB) again, which is not the steady state being measured.
    const variants: Array<[string, Runtime, string]> = [
      ['shoal share off', this.shoal, this.bundles['b-off']],
      ['shoal share=all', this.shoal, this.bundles['b-all']],
      ['shoal share=libs', this.shoal, this.bundles['a-libs']],
      ['runc', this.runc, this.bundles['b-off']],
    ];
    const total = this.opts.warmup + this.opts.iterations;
    for (let i = 0; i < total; i++) {
      for (const [label, rt, bundle] of shuffle([...variants])) {
        this.check();
        const id = `${this.prefix}-l${i}-${label.replace(/[^a-z]/g, '')}`;
        const c = rt.time(['create', '-b', bundle, id]);
        const s = c.status === 0 ? rt.time(['start', id]) : c;
        const d = rt.time(['delete', '--force', id]);
        if (d.status === 0) rt.live.delete(id);
        if (c.status !== 0 || s.status !== 0 || d.status !== 0) {
          const bad = [c, s, d].find((x) => x.status !== 0)!;
          this.errors.push(`latency ${label} iteration ${i}: exit ${bad.status ?? bad.signal}: ${bad.log.trim().split('\n').slice(0, 3).join(' | ')}`);
          continue;
        }
        if (i < this.opts.warmup) continue;
        const rec = (k: string, v: number) => ((this.latency[k] ??= {})[label] ??= []).push(v);
        rec('create+start+delete', (c.ns + s.ns + d.ns) / 1e6);
        rec('create', c.ns / 1e6);
        rec('start', s.ns / 1e6);
        rec('delete', d.ns / 1e6);
      }
      process.stderr.write(`latency ${i + 1}/${total}${i < this.opts.warmup ? ' (warm-up)' : ''}\n`);
    }
  }

  async stormOne(rt: Runtime, bundle: string, what: string): Promise<void> {
    const n = this.opts.storm;
    const par = this.opts.parallel;
    this.check();
    process.stderr.write(`storm: ${rt.key}, ${n} × run -d (${par} at a time) ... `);
    const avail0 = memAvailableKiB();
    const ids = Array.from({ length: n }, (_, i) => `${this.prefix}-s-${rt.key}-${i}`);
    const failures: string[] = [];
    const t0 = process.hrtime.bigint();
    const runs = await pool(n, par, async (i) => {
      const r = await rt.runDetached(bundle, ids[i]);
      if (r.status !== 0) failures.push(`${ids[i]}: exit ${r.status ?? r.signal}: ${r.log.trim().split('\n').slice(0, 2).join(' | ')}`);
      return r;
    }, () => this.stopping);
    const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
    this.check();
    await sleep(this.opts.settle * 1000);
    this.check();
    const perContainer = ids.map((id) => rt.pids(id));
    const pids = perContainer.flat();
    const pss = sumPss(pids);
    const outside = hostProcesses(rt.root, new Set(pids));
    const avail1 = memAvailableKiB();
    const loadavg = load();
    process.stderr.write(`${wallMs.toFixed(0)} ms, PSS ${mib(pss.pss)} MiB; deleting ... `);
    const t1 = process.hrtime.bigint();
    const dels = await pool(n, par, (i) => rt.deleteAsync(ids[i]));
    const deleteWallMs = Number(process.hrtime.bigint() - t1) / 1e6;
    process.stderr.write(`${deleteWallMs.toFixed(0)} ms\n`);
    const started = perContainer.filter((p) => p.length > 0).length;
    this.storm.push({
      runtime: rt.key,
      bundle: what,
      n,
      parallel: par,
      started,
      failures,
      wallMs,
      perRunMs: summarize(runs.filter((r) => r && r.status === 0).map((r) => r.ms)),
      pss,
      pssPerContainerKiB: started ? pss.pss / started : NaN,
      outside,
      memAvailableDropKiB: avail0 - avail1,
      deleteWallMs,
      deleteFailures: dels.filter((d) => d.status !== 0).length,
      loadavg,
    });
    for (const f of failures.slice(0, 5)) this.errors.push(`storm ${rt.key}: ${f}`);
    if (failures.length > 5) this.errors.push(`storm ${rt.key}: ${failures.length - 5} more failures`);
  }

  async stormPhase(): Promise<void> {
    // shoal: an image-less bundle of the host's /bin/sleep whose files are store objects.
    const gen = path.join(this.tmp, 'storm-gen');
    let t = Date.now();
    const g = capture([process.execPath, this.shoalBin, 'gen', '--store', this.store, '--out', gen, '--', '/bin/sleep', '1000'], this.env);
    if (!g.ok) throw new Error(`shoal gen: ${g.err}`);
    this.info.gen = { output: g.out, ms: Date.now() - t };
    // runc: a plain busybox-static rootfs running `sleep 1000`.
    t = Date.now();
    const bb = makeBundle(path.join(this.tmp, 'storm-busybox'), this.opts.runc, ['sleep', '1000']);
    this.info.busyboxBundleMs = Date.now() - t;
    await this.stormOne(this.runc, bb, 'busybox-static rootfs, sleep 1000');
    await this.stormOne(this.shoal, gen, 'shoal gen --store -- /bin/sleep 1000');
  }

  /** Deletes every container, removes the temp dir, reports leftover cgroups. Idempotent. */
  cleanup(): void {
    if (this.cleaned) return;
    this.cleaned = true;
    for (const rt of [this.shoal, this.runc]) {
      if (!rt) continue;
      const left = rt.cleanup();
      if (left.length) this.errors.push(`${rt.key}: could not delete ${left.join(', ')} (root ${rt.root} kept)`);
    }
    const undeletable = [this.shoal, this.runc].some((rt) => rt && rt.listed().length);
    if (!undeletable) fs.rmSync(this.tmp, { recursive: true, force: true });
    // Cgroups named after our containers: the runtimes remove them on delete; remove empty leftovers.
    const left = cgroupDirs(this.prefix).sort((x, y) => y.length - x.length);
    for (const d of left) {
      try {
        fs.rmdirSync(d);
      } catch {
        /* busy or not empty */
      }
    }
    const still = left.filter((d) => fs.existsSync(d));
    if (left.length) this.errors.push(`cgroups left by the runtimes: ${left.length}${still.length ? `, ${still.length} could not be removed: ${still.slice(0, 3).join(' ')}` : ' (removed)'}`);
  }
}

function fmtMiB(bytes: number): string {
  return (bytes / 1048576).toFixed(1);
}
function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}
function lpad(s: string, n: number): string {
  return s.length >= n ? s : ' '.repeat(n - s.length) + s;
}
function median(xs: number[]): number {
  return summarize(xs).median;
}

function report(b: MemoryBench, started: Date, loadAtStart: string): void {
  const out: string[] = [];
  const summary: Record<string, unknown> = {};
  const ratios: Record<string, number> = {};

  if (Object.keys(b.memory).length) {
    out.push('', `Memory: 6 idle node containers, median of ${b.opts.rounds} round(s), MiB (PSS summed over the container processes; page cache of the copies and store after evicting unmapped pages)`);
    out.push(`${pad('scenario', 28)} ${lpad('PSS', 7)} ${lpad('anon', 7)} ${lpad('file', 7)} ${lpad('cache A', 8)} ${lpad('cache B', 8)} ${lpad('store', 7)} ${lpad('cache', 7)}  rounds (PSS)`);
    const mem: Record<string, Record<string, number>> = {};
    for (const [name, samples] of Object.entries(b.memory)) {
      const label = (b.info.scenarios as Array<{ name: string; label: string }>).find((s) => s.name === name)!.label;
      const m = {
        pssKiB: median(samples.map((s) => s.pss.pss)),
        pssAnonKiB: median(samples.map((s) => s.pss.pssAnon)),
        pssFileKiB: median(samples.map((s) => s.pss.pssFile)),
        cacheCopyA: median(samples.map((s) => s.pageCache.copyA)),
        cacheCopyB: median(samples.map((s) => s.pageCache.copyB)),
        cacheStore: median(samples.map((s) => s.pageCache.store)),
        cacheTotal: median(samples.map((s) => s.pageCache.total)),
        processes: median(samples.map((s) => s.pss.processes)),
      };
      mem[name] = m;
      out.push(`${pad(label, 28)} ${lpad(mib(m.pssKiB), 7)} ${lpad(mib(m.pssAnonKiB), 7)} ${lpad(mib(m.pssFileKiB), 7)} ${lpad(fmtMiB(m.cacheCopyA), 8)} ${lpad(fmtMiB(m.cacheCopyB), 8)} ${lpad(fmtMiB(m.cacheStore), 7)} ${lpad(fmtMiB(m.cacheTotal), 7)}  ${samples.map((s) => mib(s.pss.pss)).join(' ')}`);
    }
    summary.memory = mem;
    const r = (x: string, y: string) => (mem[x] && mem[y] ? mem[x].pssKiB / mem[y].pssKiB : NaN);
    ratios['pss shoal-all / runc-1copy'] = r('shoal-all', 'runc-1copy');
    ratios['pss shoal-all / runc-2copies'] = r('shoal-all', 'runc-2copies');
    ratios['pss shoal-libs / runc-1copy'] = r('shoal-libs', 'runc-1copy');
    ratios['pss shoal-off / runc-2copies'] = r('shoal-off', 'runc-2copies');
    ratios['pss runc-2copies / runc-1copy'] = r('runc-2copies', 'runc-1copy');
    out.push('', 'PSS ratios:');
    for (const [k, v] of Object.entries(ratios)) if (k.startsWith('pss')) out.push(`  ${pad(k.slice(4), 30)} ${Number.isFinite(v) ? v.toFixed(3) : '-'}`);
    const main = ratios['pss shoal-all / runc-1copy'];
    if (Number.isFinite(main)) out.push(`  target shoal share=all ≤ ${TARGET_PSS_RATIO} × runc 6-from-one-copy: ${main <= TARGET_PSS_RATIO ? 'met' : 'NOT met'}`);
  }

  if (Object.keys(b.latency).length) {
    const labels = ['shoal share off', 'shoal share=all', 'shoal share=libs', 'runc'];
    out.push('', `Create latency, node bundle (copy b; share=libs: copy a), ${b.opts.iterations} iterations after ${b.opts.warmup} warm-up, median ms (min / p90)`);
    out.push(`${pad('', 22)}${labels.map((l) => lpad(l, 24)).join('')}`);
    const lat: Record<string, Record<string, Summary>> = {};
    for (const [scen, per] of Object.entries(b.latency)) {
      lat[scen] = {};
      const cells = labels.map((l) => {
        const s = summarize(per[l] ?? []);
        lat[scen][l] = s;
        return lpad(`${s.median.toFixed(1)} (${s.min.toFixed(0)}/${s.p90.toFixed(0)})`, 24);
      });
      out.push(`${pad(scen, 22)}${cells.join('')}`);
    }
    summary.latency = lat;
    const m = (scen: string, l: string) => lat[scen]?.[l]?.median ?? NaN;
    ratios['create+start+delete share=all / off'] = m('create+start+delete', 'shoal share=all') / m('create+start+delete', 'shoal share off');
    ratios['create+start+delete share=libs / off'] = m('create+start+delete', 'shoal share=libs') / m('create+start+delete', 'shoal share off');
    ratios['create share=all / off'] = m('create', 'shoal share=all') / m('create', 'shoal share off');
    ratios['create share=libs / off'] = m('create', 'shoal share=libs') / m('create', 'shoal share off');
    ratios['create+start+delete shoal off / runc'] = m('create+start+delete', 'shoal share off') / m('create+start+delete', 'runc');
    out.push('', 'Latency ratios (medians):');
    for (const k of Object.keys(ratios).filter((k) => !k.startsWith('pss') && !k.startsWith('storm'))) out.push(`  ${pad(k, 40)} ${ratios[k].toFixed(3)}`);
    const main = ratios['create+start+delete share=all / off'];
    out.push(`  target share=all ≤ ${TARGET_CREATE_RATIO} × off (create+start+delete): ${main <= TARGET_CREATE_RATIO ? 'met' : 'NOT met'}`);
  }

  if (b.storm.length) {
    out.push('', `Start storm: ${b.opts.storm} containers, run -d ${b.opts.parallel} at a time, then delete --force`);
    out.push(`${pad('runtime', 8)} ${pad('bundle', 38)} ${lpad('started', 8)} ${lpad('wall s', 7)} ${lpad('run ms med', 11)} ${lpad('PSS MiB', 8)} ${lpad('KiB/ctr', 8)} ${lpad('outside', 8)} ${lpad('MemAvail↓', 10)} ${lpad('delete s', 9)}`);
    for (const s of b.storm) {
      out.push(`${pad(s.runtime, 8)} ${pad(s.bundle, 38)} ${lpad(`${s.started}/${s.n}`, 8)} ${lpad((s.wallMs / 1000).toFixed(2), 7)} ${lpad(s.perRunMs.median.toFixed(0), 11)} ${lpad(mib(s.pss.pss), 8)} ${lpad(s.pssPerContainerKiB.toFixed(0), 8)} ${lpad(String(s.outside.length), 8)} ${lpad(mib(s.memAvailableDropKiB), 10)} ${lpad((s.deleteWallMs / 1000).toFixed(2), 9)}`);
    }
    const sh = b.storm.find((s) => s.runtime === 'shoal');
    const rc = b.storm.find((s) => s.runtime === 'runc');
    if (sh && rc) {
      ratios['storm wall shoal / runc'] = sh.wallMs / rc.wallMs;
      ratios['storm pss shoal / runc'] = sh.pss.pss / rc.pss.pss;
      ratios['storm delete wall shoal / runc'] = sh.deleteWallMs / rc.deleteWallMs;
      out.push(`  shoal/runc: wall ${ratios['storm wall shoal / runc'].toFixed(2)}x, PSS ${ratios['storm pss shoal / runc'].toFixed(2)}x, delete ${ratios['storm delete wall shoal / runc'].toFixed(2)}x`);
    }
    summary.storm = b.storm;
  }

  out.push('', `load average at start ${loadAtStart}, at end ${load()} (${os.cpus().length} cores)`);
  for (const e of b.errors) out.push(`error: ${e}`);
  process.stdout.write(out.join('\n') + '\n');

  if (b.opts.out === null) return;
  const stamp = started.toISOString().slice(0, 19).replace(/:/g, '-') + 'Z';
  const file = b.opts.out || path.join(b.repo, 'bench', 'results', `memory-${stamp}.json`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const first = (s: string) => s.split('\n')[0] ?? '';
  const json = {
    date: started.toISOString(),
    host: { kernel: os.release(), cpu: os.cpus()[0]?.model ?? '?', cores: os.cpus().length, memTotalKiB: os.totalmem() / 1024, loadavgAtStart: loadAtStart, loadavgAtEnd: load() },
    versions: {
      node: process.version,
      runc: first(capture([b.opts.runc, '--version']).out),
      shoal: first(capture([process.execPath, b.shoalBin, '--version'], b.env).out),
      shoalBin: path.relative(b.repo, b.shoalBin),
      shoalCommit: capture(['git', '-C', b.repo, 'rev-parse', '--short', 'HEAD']).out,
      shoalDirty: capture(['git', '-C', b.repo, 'status', '--porcelain', '--untracked-files=no', 'shim', 'native']).out ? 'yes' : 'no',
    },
    options: b.opts,
    strippedEnv: b.stripped,
    targets: { pssShoalAllOverRunc1Copy: TARGET_PSS_RATIO, createShareOverOff: TARGET_CREATE_RATIO },
    method:
      'memory: containers started one by one with run -d, settle, PSS = sum of smaps_rollup Pss over the pids of `ps --format json` of each container; page cache = fincore of every regular file of both copies and of the store objects after dd iflag=nocache count=0 (drops unmapped pages); all those files evicted before each scenario; scenarios shuffled per round. latency: spawnSync wall time of create, start, delete --force; variants shuffled per iteration. storm: async run -d with a concurrency limit; wall time from first spawn to last exit.',
    info: b.info,
    summary,
    ratios,
    memorySamples: b.memory,
    latencySamplesMs: b.latency,
    errors: b.errors,
  };
  fs.writeFileSync(file, JSON.stringify(json, null, 2) + '\n');
  process.stdout.write(`wrote ${path.relative(process.cwd(), file) || file}\n`);
}

async function main(): Promise<number> {
  const opts = parseOptions(process.argv.slice(2));
  const b = new MemoryBench(opts);
  const onSignal = (sig: NodeJS.Signals) => {
    if (b.stopping) return;
    process.stderr.write(`\n${sig}: stopping, then deleting every container and the temp dir\n`);
    b.stopping = true;
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);
  const started = new Date();
  const loadAtStart = load();
  try {
    process.stderr.write(`shoal memory bench: phases ${opts.phases.join(',')}; load average ${loadAtStart}; temp dir ${b.tmp}\n`);
    b.setup();
    for (const phase of opts.phases) {
      b.check();
      b.info[`loadavgBefore_${phase}`] = load();
      if (phase === 'memory') await b.memoryPhase();
      else if (phase === 'latency') await b.latencyPhase();
      else if (phase === 'storm') await b.stormPhase();
    }
    b.cleanup();
    report(b, started, loadAtStart);
    return b.errors.length ? 1 : 0;
  } catch (e) {
    if (e instanceof Stopped) return 130;
    throw e;
  } finally {
    b.cleanup();
  }
}

main().then(
  (code) => {
    process.exitCode = code;
    setImmediate(() => process.exit(code));
  },
  (e) => {
    process.stderr.write(`bench: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
    process.exitCode = 2;
    setImmediate(() => process.exit(2));
  },
);
