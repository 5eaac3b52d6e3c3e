/**
 * containerd benchmark for shoal (issue 6): shoal's shim (`io.containerd.shoal.v2`,
 * build/Release/containerd-shim-shoal-v2) against containerd-shim-runc-v2 with runc, in the same
 * containerd, one containerd namespace per runtime. Not a test: `npm test` never runs it.
 *
 *  1. latency: `ctr run --rm IMG ID /bin/true`, median, for
 *       runc          --runtime io.containerd.runc.v2
 *       shoal         --runtime io.containerd.shoal.v2, namespace otherwise empty: the plain
 *                     `ctr run --rm` loop. The namespace's shim daemon lingers when idle
 *                     (SHOAL_SHIM_LINGER, default 10 s), so the next run finds it up and the
 *                     launcher answers `start` in C without starting node
 *       shoal-cold    the same with a group annotation unique to each run: every run starts a
 *                     shim daemon (node), which ends at the run's Shutdown (a group that is not
 *                     the namespace never lingers)
 *       shoal-warm    `shoal` in a namespace holding one idle container, so the shim stays up
 *       runc-shoalbin --runtime io.containerd.runc.v2 --runc-binary build/shoal.js (runc's shim
 *                     driving shoal's runc-compatible CLI)
 *     interleaved: every iteration runs each variant once, in a fresh random order.
 *     Target: shoal ≤ 0.7 × runc.
 *  2. storm: 50 containers (`ctr run -d IMG ID sleep 100000`, --parallel clients at a time, all
 *     by default, started by a bash in the sandbox: CtrShell) per runtime in a fresh namespace;
 *     wall time from the first request to the last exit (target
 *     ≤ 0.5 × runc), then the PSS of the processes listening on the shim sockets of that
 *     namespace (target ≤ 0.3 × runc), then every task and container is killed and deleted.
 *
 *   npx tsc -p bench && node build/bench/containerd.js [--iterations N] [--storm N] [--parallel N]
 *
 * Must run as root. containerd runs in a private mount namespace (test/lib/daemons.ts) with
 * build/Release first on its PATH; everything is removed at the end, also after a failure or on
 * SIGINT/SIGTERM.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Containerd, cannotRun, startContainerd } from '../test/lib/daemons';
import { ociImageTar } from '../test/lib/image';
import {
  CommonOptions, CtrNamespace, CtrShell, checkVariants, commonFlag, listValue, loadavg, memoryOf, onSignals, parseArgs, record, repoRoot, runPool, sandboxProcesses, Samples, shimListeners, machineCpu, processCpu,
  shimNamespace, ShimMemory, shuffle, sleep, stripEnv, summaries, table, versions, writeJson, cmdline,
} from './lib/daemon';
import { ms, summarize } from './lib/stats';

const TARGET_LATENCY = 0.7;
const TARGET_STORM_WALL = 0.5;
const TARGET_STORM_PSS = 0.3;
const RUNC_RUNTIME = 'io.containerd.runc.v2';
const SHOAL_RUNTIME = 'io.containerd.shoal.v2';
const VARIANTS = ['runc', 'shoal', 'shoal-cold', 'shoal-warm', 'runc-shoalbin'];
const STORM_RUNTIMES = ['runc', 'shoal'];

interface Options extends CommonOptions {
  phases: string[];
  storm: number;
  parallel: number;
  rounds: number;
  settle: number;
  runOnDisk: boolean;
  /** A directory with another containerd, ctr and containerd-shim-runc-v2 (default: Debian 12's). */
  containerd: string;
}

const USAGE = `usage: node build/bench/containerd.js [options]
  --phases LIST      latency,storm (default both)
  --iterations N     latency: measured iterations (default 20)
  --warmup N         latency: unmeasured iterations first (default 2)
  --variants LIST    latency: subset of ${VARIANTS.join(',')} (default all)
  --storm N          storm: containers per runtime (default 50)
  --parallel N       storm: concurrent ctr clients (default 50: all at once)
  --rounds N         storm: rounds (runtimes in a fresh random order each; default 5: the median is a round's)
  --settle S         storm: seconds between the last start and the memory reading (default 3)
  --containerd DIR   containerd, ctr and containerd-shim-runc-v2 from DIR (e.g. a release the test
                     harness fetched: /var/cache/shoal-test/containerd-sid/usr/bin for 2.x)
  --run-on-disk      /run and containerd's state in the temp dir, on its disk (default: a tmpfs
                     over /run in the sandbox, with containerd's state in /run/containerd, as on
                     production hosts)
  --out FILE         JSON results (default bench/results/containerd-<date>.json)
  --no-json          do not write JSON
  --keep-env         keep NODE_EXTRA_CA_CERTS, NODE_OPTIONS, ... (stripped by default)
`;

function parseOptions(argv: string[]): Options {
  const o: Options = { phases: ['latency', 'storm'], iterations: 20, warmup: 2, variants: VARIANTS, storm: 50, parallel: 50, rounds: 5, settle: 3, runOnDisk: false, containerd: '', out: '', keepEnv: false };
  parseArgs(argv, (flag, value, count) => {
    switch (flag) {
      case '--phases': o.phases = listValue(value()); break;
      case '--storm': o.storm = Math.max(1, count()); break;
      case '--parallel': o.parallel = Math.max(1, count()); break;
      case '--rounds': o.rounds = Math.max(1, count()); break;
      case '--settle': o.settle = count(); break;
      case '--run-on-disk': o.runOnDisk = true; break;
      case '--containerd': o.containerd = path.resolve(value()); break;
      default: return commonFlag(o, flag, value, count);
    }
    return true;
  }, USAGE);
  checkVariants(o, VARIANTS);
  for (const p of o.phases) if (!['latency', 'storm'].includes(p)) throw new Error(`unknown phase ${p}`);
  return o;
}

/** CPU seconds (user + system) during a storm's starts. */
interface StormCpu {
  /** The whole machine. */
  machine: number;
  containerd: number;
  /** The namespace's shim processes and their reaped children (runc, shoal-init helpers). */
  shims: number;
  /** The `ctr` clients (and this benchmark driving them). */
  ctr: number;
  /** Everything else: the kernel's own threads, the containers' processes, other work. */
  rest: number;
}

interface StormResult {
  round: number;
  runtime: string;
  namespace: string;
  loadavg: string;
  started: number;
  failed: string[];
  wallMs: number;
  runMs: ReturnType<typeof summarize>;
  running: number;
  cpu: StormCpu;
  /** Processes listening on the namespace's shim sockets. */
  shims: ShimMemory;
  /** Every other process of the sandbox's mount namespace serving this namespace (helpers, runtimes). */
  others: ShimMemory;
  teardownMs: number;
  left: string[];
}

class Bench {
  readonly repo = repoRoot();
  readonly release = path.join(this.repo, 'build', 'Release');
  readonly shoalCli = path.join(this.repo, 'build', 'shoal.js');
  readonly tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-bench-cd-'));
  cd: Containerd | null = null;
  image = '';
  namespaces: CtrNamespace[] = [];
  samples: Samples = {};
  storm: StormResult[] = [];
  errors: string[] = [];
  info: Record<string, unknown> = {};
  state = { stopping: false };

  constructor(readonly o: Options, readonly stripped: string[]) {}

  runtimeArgs(variant: string): string[] {
    switch (variant) {
      case 'runc': return ['--runtime', RUNC_RUNTIME];
      case 'shoal': case 'shoal-warm': case 'shoal-cold': return ['--runtime', SHOAL_RUNTIME];
      case 'runc-shoalbin': return ['--runtime', RUNC_RUNTIME, '--runc-binary', this.shoalCli];
      default: throw new Error(variant);
    }
  }

  async setup(): Promise<void> {
    if (process.getuid?.() !== 0) throw new Error('run as root');
    const daemons = ['containerd', 'ctr', 'containerd-shim-runc-v2'];
    const missing = this.o.containerd ? daemons.map((b) => path.join(this.o.containerd, b)).find((b) => !fs.existsSync(b)) : undefined;
    const why = missing ? `${missing} not found` : cannotRun([...(this.o.containerd ? [] : daemons), 'runc']);
    if (why) throw new Error(why);
    for (const f of [path.join(this.release, 'containerd-shim-shoal-v2'), this.shoalCli, path.join(this.repo, 'build/shim.js')])
      if (!fs.existsSync(f)) throw new Error(`${f} missing: build shoal first (see bench/README.md)`);
    // shoal's shims get the production default linger (the test library's default is none),
    // unless SHOAL_SHIM_LINGER is set for the bench.
    // (another containerd's own runc shim first on its PATH)
    const bin = this.o.containerd || undefined;
    this.cd = await startContainerd({ namespace: `bc${process.pid}`, extraPath: [...(bin ? [bin] : []), this.release], env: { SHOAL_SHIM_LINGER: process.env.SHOAL_SHIM_LINGER ?? '' }, runTmpfs: !this.o.runOnDisk, bin });
    this.image = ociImageTar().name;
    this.info.versions = versions(this.cd.sandbox, this.cd.containerdPath);
    this.info.run = this.o.runOnDisk ? 'the temp dir, on disk' : 'a tmpfs';
  }

  ns(name: string): CtrNamespace {
    const n = new CtrNamespace(this.cd!, `bc${process.pid}-${name}`, this.tmp);
    this.namespaces.push(n);
    n.importImage(ociImageTar().tar);
    return n;
  }

  async latency(): Promise<void> {
    const nss = new Map<string, CtrNamespace>();
    for (const v of this.o.variants) nss.set(v, this.ns(`l-${v}`));
    if (nss.has('shoal-warm')) {
      const r = nss.get('shoal-warm')!.run(['run', '-d', '--runtime', SHOAL_RUNTIME, this.image, 'resident', 'sleep', '100000']);
      if (r.code !== 0) throw new Error(`resident container for shoal-warm: ${r.stderr}`);
    }
    this.info.loadavgBeforeLatency = loadavg();
    const total = this.o.warmup + this.o.iterations;
    for (let i = 0; i < total && !this.state.stopping; i++) {
      const keep = i >= this.o.warmup;
      for (const v of shuffle([...this.o.variants])) {
        if (this.state.stopping) break;
        const n = nss.get(v)!;
        const id = `l${i}`;
        const group = v === 'shoal-cold' ? ['--annotation', `io.containerd.runc.v2.group=${n.ns}-${id}`] : [];
        const t = n.time(['run', '--rm', ...this.runtimeArgs(v), ...group, this.image, id, '/bin/true']);
        if (t.status === 0) {
          if (keep) record(this.samples, 'ctr run --rm /bin/true', v, t.ns / 1e6);
        } else {
          const msg = `${v} ${id}: exit ${t.status ?? t.signal}: ${t.log.trim().split('\n').slice(-3).join(' | ')}`;
          this.errors.push(msg);
          process.stderr.write(`\nfailed (sample dropped): ${msg}\n`);
          n.run(['tasks', 'delete', '-f', id]);
          n.run(['containers', 'delete', id]);
        }
      }
      process.stderr.write(`\rlatency ${i + 1}/${total}`);
    }
    process.stderr.write('\n');
    this.info.loadavgAfterLatency = loadavg();
    for (const n of nss.values()) {
      await n.removeAll();
      n.removeNamespace();
      this.endLingeringShims(n.ns);
    }
  }

  /** SIGTERM the idle shims of a namespace whose containers are all gone (they would linger). */
  endLingeringShims(ns: string): void {
    for (const l of shimListeners(this.cd!.sandbox)) {
      if (shimNamespace(l.pid) !== ns) continue;
      try {
        process.kill(l.pid, 'SIGTERM');
      } catch {
        // gone
      }
    }
  }

  async stormOne(round: number, rt: string): Promise<void> {
    const n = this.ns(`s${round}-${rt}`);
    const ids = Array.from({ length: this.o.storm }, (_, i) => `s${i}`);
    const la = loadavg();
    process.stderr.write(`storm round ${round} ${rt}: ${ids.length} containers, ${this.o.parallel} at a time (load ${la})\n`);
    const cd = this.cd!;
    const clients = new CtrShell(n, this.tmp);
    await clients.run(['version']); // the shell is up (not timed)
    await clients.reaped();
    // The clients' CPU: this process's and the shell's, with the children each has reaped.
    const clientCpu = () => processCpu('self') + processCpu(clients.pid);
    const cpu0 = { machine: machineCpu(), containerd: processCpu(cd.pid), ctr: clientCpu() };
    const t0 = process.hrtime.bigint();
    const res = await runPool(ids, this.o.parallel, (id) =>
      this.state.stopping ? Promise.resolve({ code: -1, ms: 0, out: 'stopping' }) : clients.run(['run', '-d', ...this.runtimeArgs(rt), this.image, id, 'sleep', '100000']));
    const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
    await clients.reaped();
    // CPU seconds the storm took, and who took them (the shims of this namespace started with it;
    // the runtimes and helpers they ran are their reaped children).
    const cpu: StormCpu = {
      machine: machineCpu() - cpu0.machine,
      containerd: processCpu(cd.pid) - cpu0.containerd,
      shims: shimListeners(cd.sandbox).filter((l) => shimNamespace(l.pid) === n.ns).reduce((t, l) => t + processCpu(l.pid), 0),
      ctr: clientCpu() - cpu0.ctr,
      rest: 0,
    };
    cpu.rest = cpu.machine - cpu.containerd - cpu.shims - cpu.ctr;
    await clients.close();
    const failed = res.map((r, i) => (r.code === 0 ? '' : `${ids[i]}: exit ${r.code}: ${r.out.split('\n').slice(-2).join(' | ')}`)).filter(Boolean);
    for (const f of failed) this.errors.push(`storm ${rt}: ${f}`);
    const deadline = Date.now() + 30_000;
    let running = 0;
    for (;;) {
      running = [...n.tasks().values()].filter((s) => s === 'RUNNING').length;
      if (running >= ids.length - failed.length || Date.now() > deadline) break;
      await sleep(200);
    }
    await sleep(this.o.settle * 1000);
    const sandbox = this.cd!.sandbox;
    const listeners = shimListeners(sandbox).filter((l) => shimNamespace(l.pid) === n.ns);
    const listenerPids = new Set(listeners.map((l) => l.pid));
    // Other processes of the daemons' mount namespace started for this namespace (the containers
    // have mount namespaces of their own and are not counted).
    const others = sandboxProcesses(sandbox).filter((p) => !listenerPids.has(p) && cmdline(p).includes(n.ns));
    const shims = memoryOf([...listenerPids]);
    const other = memoryOf(others);
    const unassigned = sandboxProcesses(sandbox).filter((p) => !listenerPids.has(p) && !others.includes(p));
    if (unassigned.length) this.info[`storm${round}-${rt}-unassignedProcesses`] = unassigned.map((p) => `${p} ${cmdline(p).slice(0, 160)}`);
    const rm = await n.removeAll(this.o.parallel);
    for (const l of rm.left) this.errors.push(`storm ${rt}: could not remove ${l}`);
    n.removeNamespace();
    this.endLingeringShims(n.ns); // rounds stay independent
    this.storm.push({
      round, runtime: rt, namespace: n.ns, loadavg: la, started: res.filter((r) => r.code === 0).length, failed, wallMs,
      runMs: summarize(res.filter((r) => r.code === 0).map((r) => r.ms)), running, cpu, shims, others: other, teardownMs: rm.ms, left: rm.left,
    });
    process.stderr.write(`  started ${ids.length - failed.length} in ${(wallMs / 1000).toFixed(2)} s, ${listeners.length} shim(s), PSS ${(shims.pss / 1024).toFixed(1)} MiB; teardown ${(rm.ms / 1000).toFixed(2)} s\n`);
  }

  async stormPhase(): Promise<void> {
    this.info.loadavgBeforeStorm = loadavg();
    for (let r = 1; r <= this.o.rounds && !this.state.stopping; r++) {
      for (const rt of shuffle([...STORM_RUNTIMES])) {
        if (this.state.stopping) break;
        await this.stormOne(r, rt);
      }
    }
    this.info.loadavgAfterStorm = loadavg();
  }

  async cleanup(): Promise<void> {
    if (!this.cd) return fs.rmSync(this.tmp, { recursive: true, force: true });
    for (const n of this.namespaces) {
      try {
        const rm = await n.removeAll();
        for (const l of rm.left) this.errors.push(`cleanup: ${n.ns}: could not remove ${l}`);
      } catch (e) {
        this.errors.push(`cleanup ${n.ns}: ${(e as Error).message}`);
      }
    }
    for (const n of this.namespaces) this.endLingeringShims(n.ns);
    await sleep(300);
    try {
      await this.cd.stop();
    } catch (e) {
      this.errors.push(`cleanup: ${(e as Error).message}`);
    }
    this.cd = null;
    fs.rmSync(this.tmp, { recursive: true, force: true });
  }

  report(): unknown {
    const sum = summaries(this.samples);
    const lat = sum['ctr run --rm /bin/true'] ?? {};
    const lines: string[] = [];
    const runc = lat.runc?.median;
    if (Object.keys(lat).length) {
      lines.push(`\n## ctr run --rm IMG ID /bin/true (ms; ${this.o.iterations} iterations after ${this.o.warmup} warm-up, interleaved)\n`);
      const runcMin = lat.runc?.min;
      lines.push(table(['variant', 'n', 'min', 'median', 'p90', 'max', 'median / runc', 'min / runc'],
        this.o.variants.filter((v) => lat[v]).map((v) => [v, String(lat[v].n), ms(lat[v].min), `**${ms(lat[v].median)}**`, ms(lat[v].p90), ms(lat[v].max),
          runc ? `${(lat[v].median / runc).toFixed(2)}x` : '-', runcMin ? `${(lat[v].min / runcMin).toFixed(2)}x` : '-'])));
      if (runc && lat.shoal) {
        const r = lat.shoal.median / runc;
        lines.push(`\nshoal (the ctr run --rm loop) / runc: ${r.toFixed(2)}x — target ≤ ${TARGET_LATENCY}: ${r <= TARGET_LATENCY ? 'met' : 'NOT met'}`);
      }
      for (const [v, what] of [['shoal-cold', 'a shim started for each run'], ['shoal-warm', 'a resident container holds the shim']]) {
        if (runc && lat[v]) lines.push(`${v} (${what}) / runc: ${(lat[v].median / runc).toFixed(2)}x`);
      }
    }
    const perRt: Record<string, { wallMs: number; pssKiB: number; shims: number; teardownMs: number; othersPssKiB: number }> = {};
    if (this.storm.length) {
      lines.push(`\n## storm: ${this.o.storm} × ctr run -d … sleep 100000, ${this.o.parallel} clients at a time\n`);
      lines.push(table(['round', 'runtime', 'started', 'wall s', 'CPU s: all / containerd / shims / ctr / rest', 'ctr run -d median ms', 'shim procs', 'shim PSS MiB', 'PSS/container KiB', 'other procs (PSS MiB)', 'teardown s', 'load'],
        this.storm.map((s) => [String(s.round), s.runtime, `${s.started}/${this.o.storm}`, (s.wallMs / 1000).toFixed(2),
          [s.cpu.machine, s.cpu.containerd, s.cpu.shims, s.cpu.ctr, s.cpu.rest].map((c) => c.toFixed(2)).join(' / '), ms(s.runMs.median), String(s.shims.processes),
          (s.shims.pss / 1024).toFixed(1), s.started ? (s.shims.pss / s.started).toFixed(0) : '-', `${s.others.processes} (${(s.others.pss / 1024).toFixed(1)})`, (s.teardownMs / 1000).toFixed(2), s.loadavg.split(' ')[0]])));
      for (const rt of STORM_RUNTIMES) {
        const rs = this.storm.filter((s) => s.runtime === rt);
        if (!rs.length) continue;
        const med = (f: (s: StormResult) => number) => summarize(rs.map(f)).median;
        perRt[rt] = { wallMs: med((s) => s.wallMs), pssKiB: med((s) => s.shims.pss), shims: med((s) => s.shims.processes), teardownMs: med((s) => s.teardownMs), othersPssKiB: med((s) => s.others.pss) };
      }
      if (perRt.runc && perRt.shoal) {
        const w = perRt.shoal.wallMs / perRt.runc.wallMs;
        const p = perRt.shoal.pssKiB / perRt.runc.pssKiB;
        // The same storm from two more angles: each round against the runc round of its number
        // (the machine's speed drifts between rounds), and the machine's CPU.
        const paired = this.storm.filter((s) => s.runtime === 'shoal').map((s) => {
          const r = this.storm.find((x) => x.runtime === 'runc' && x.round === s.round);
          return r ? s.wallMs / r.wallMs : NaN;
        }).filter((x) => Number.isFinite(x));
        const cpuMed = (rt: string) => summarize(this.storm.filter((s) => s.runtime === rt).map((s) => s.cpu.machine)).median;
        if (paired.length) lines.push(`\nper round, shoal / runc wall: ${paired.map((x) => x.toFixed(2)).join(', ')} (median ${summarize(paired).median.toFixed(2)}); machine CPU, medians: ${(cpuMed('shoal') / cpuMed('runc')).toFixed(2)}x`);
        lines.push(`shoal / runc: wall ${w.toFixed(2)}x (target ≤ ${TARGET_STORM_WALL}: ${w <= TARGET_STORM_WALL ? 'met' : 'NOT met'}), shim PSS ${p.toFixed(3)}x (target ≤ ${TARGET_STORM_PSS}: ${p <= TARGET_STORM_PSS ? 'met' : 'NOT met'}), teardown ${(perRt.shoal.teardownMs / perRt.runc.teardownMs).toFixed(2)}x`);
      }
      for (const s of this.storm) {
        const each = s.shims.each.map((e) => e.pssKiB);
        lines.push(`${s.runtime} round ${s.round}: shim PSS per process KiB: min ${Math.min(...each)} median ${summarize(each).median} max ${Math.max(...each)}; ${s.shims.each[0]?.cmd ?? ''}`);
        if (s.others.processes) lines.push(`  other processes: ${s.others.each.map((e) => `${e.pssKiB} KiB ${e.cmd.slice(0, 80)}`).join('; ')}`);
      }
    }
    lines.push(`\nload average: ${JSON.stringify({ before: this.info.loadavgBeforeLatency ?? this.info.loadavgBeforeStorm, afterLatency: this.info.loadavgAfterLatency, beforeStorm: this.info.loadavgBeforeStorm, end: loadavg() })}`);
    if (this.stripped.length) lines.push(`stripped from the environment: ${this.stripped.join(', ')}`);
    if (this.errors.length) lines.push(`\nerrors (${this.errors.length}):\n  ${this.errors.join('\n  ')}`);
    process.stdout.write(lines.join('\n') + '\n');
    return { latency: sum, storm: this.storm, stormMedians: perRt };
  }
}

async function main(): Promise<number> {
  const o = parseOptions(process.argv.slice(2));
  const stripped = o.keepEnv ? [] : stripEnv();
  const b = new Bench(o, stripped);
  onSignals(b.state, () => b.cd?.sandbox.killAllSync());
  const started = new Date().toISOString();
  const loadAtStart = loadavg();
  let result: unknown = {};
  try {
    await b.setup();
    process.stderr.write(`containerd up (load ${loadAtStart}); ${JSON.stringify(b.info.versions)}\n`);
    if (o.phases.includes('latency')) await b.latency();
    if (o.phases.includes('storm') && !b.state.stopping) await b.stormPhase();
  } catch (e) {
    b.errors.push(`fatal: ${(e as Error).stack ?? e}`);
  } finally {
    await b.cleanup();
  }
  result = b.report();
  const file = writeJson(o.out, 'containerd-', {
    benchmark: 'containerd', started, options: o, strippedEnv: stripped, loadavgAtStart: loadAtStart, loadavgAtEnd: loadavg(), info: b.info,
    targets: { latency: TARGET_LATENCY, stormWall: TARGET_STORM_WALL, stormPss: TARGET_STORM_PSS }, ...(result as object), samples: b.samples, errors: b.errors,
  });
  if (file) process.stdout.write(`\nresults: ${path.relative(process.cwd(), file)}\n`);
  return b.errors.length ? 1 : 0;
}

main().then((c) => process.exit(c), (e) => {
  process.stderr.write(`${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
