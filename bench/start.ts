/**
 * Start-up benchmark for shoal (issue 2): `run` of /bin/true, and create + start + delete, for
 * shoal, runc and crun in the same run, with a bare `node -e 0` start as the baseline. Not a test:
 * `npm test` never runs it. Target: shoal takes at most 15 ms more than a bare `node -e 0`.
 *
 *   npx tsc -p bench && node build/bench/start.js [--iterations N] [--warmup N]
 *       [--runtimes shoal,shoal-bin,runc,crun] [--out FILE | --no-json] [--profile]
 *
 * Must run as root. Every command is timed the same way (spawnSync from a node process, wall
 * clock around the spawn; see lib/exec.ts). crun runs in a worker inside a private mount namespace
 * without /sys/fs/cgroup/unified (lib/nsworker.ts), set up once and not part of any timing.
 * Runtimes and baselines are shuffled within each iteration to spread noise.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { capture, timeCommand, Timed } from './lib/exec';
import { makeBundle } from './lib/bundle';
import { NsWorker } from './lib/nsworker';
import { ms, summarize, Summary } from './lib/stats';

const TARGET_MS = 15;

/**
 * Variables removed from the environment of every timed command unless --keep-env: they change
 * node's start-up for reasons that have nothing to do with shoal (this sandbox sets
 * NODE_EXTRA_CA_CERTS, which makes node parse a CA bundle at start: about +55 ms per process).
 */
const STRIPPED_ENV = ['NODE_EXTRA_CA_CERTS', 'NODE_OPTIONS', 'NODE_DEBUG', 'NODE_V8_COVERAGE', 'SHOAL_TRACE'];

function benchEnv(keep: boolean): NodeJS.ProcessEnv {
  const env = { ...process.env };
  if (!keep) for (const k of STRIPPED_ENV) delete env[k];
  return env;
}

interface Options {
  iterations: number;
  warmup: number;
  runtimes: string[];
  out: string | null;
  profile: boolean;
  keepEnv: boolean;
  maxFailures: number;
  runc: string;
  crun: string;
}

const USAGE = `usage: node build/bench/start.js [options]
  --iterations N     measured iterations (default 30)
  --warmup N         unmeasured iterations first (default 2)
  --runtimes LIST    comma-separated subset of shoal,shoal-bin,runc,crun (default all)
  --out FILE         JSON results path (default bench/results/<date>.json)
  --no-json          do not write JSON
  --profile          run shoal once with SHOAL_TRACE=1 (run, then create/start/delete), print
                     what it writes to stderr, and exit without benchmarking
  --keep-env         keep NODE_EXTRA_CA_CERTS, NODE_OPTIONS, ... in the environment of timed
                     commands (stripped by default; see README)
  --max-failures N   stop measuring a runtime after N failures in a row (default 3); single
                     failures drop that sample and are listed in the report
  --runc PATH        runc binary (default /usr/sbin/runc)
  --crun PATH        crun binary (default /usr/bin/crun)
`;

function parseOptions(argv: string[]): Options {
  const o: Options = {
    iterations: 30,
    warmup: 2,
    runtimes: ['shoal', 'shoal-bin', 'runc', 'crun'],
    out: '',
    profile: false,
    keepEnv: false,
    maxFailures: 3,
    runc: '/usr/sbin/runc',
    crun: '/usr/bin/crun',
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const [flag, inline] = a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    const count = (): number => {
      const v = value();
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0) throw new Error(`${flag}: not a count: ${v}`);
      return n;
    };
    switch (flag) {
      case '--iterations': case '-n': o.iterations = Math.max(1, count()); break;
      case '--warmup': o.warmup = count(); break;
      case '--runtimes': o.runtimes = value().split(',').map((s) => s.trim()).filter(Boolean); break;
      case '--out': o.out = value(); break;
      case '--no-json': o.out = null; break;
      case '--profile': o.profile = true; break;
      case '--keep-env': o.keepEnv = true; break;
      case '--max-failures': o.maxFailures = Math.max(1, count()); break;
      case '--runc': o.runc = value(); break;
      case '--crun': o.crun = value(); break;
      case '--help': case '-h': process.stdout.write(USAGE); process.exit(0);
      default: throw new Error(`unknown option ${a}\n${USAGE}`);
    }
  }
  for (const r of o.runtimes) if (!['shoal', 'shoal-bin', 'runc', 'crun'].includes(r)) throw new Error(`unknown runtime ${r}`);
  return o;
}

/** The repository root: the nearest parent of this file with shoal's package.json. */
function repoRoot(): string {
  for (let d = __dirname; d !== path.dirname(d); d = path.dirname(d)) {
    const p = path.join(d, 'package.json');
    if (fs.existsSync(p) && JSON.parse(fs.readFileSync(p, 'utf8')).name === 'shoal') return d;
  }
  throw new Error('shoal repository root not found above ' + __dirname);
}

/** One runtime under test: how to invoke it and where its state lives. */
interface Runtime {
  key: string;
  label: string;
  /** Command prefix including `--root DIR`. */
  cmd: string[];
  /** Runs in the mount-namespace worker. */
  ns: boolean;
  log: string;
  /** Why it stopped being measured, if it did. */
  failed?: string;
  failures: number;
  consecutiveFailures: number;
}

/** Per scenario, per runtime label: samples in ms. */
type Samples = Record<string, Record<string, number[]>>;

class Bench {
  readonly tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-bench-'));
  readonly bundle = path.join(this.tmp, 'bundle');
  readonly repo = repoRoot();
  /** The package bin: the single-file bundle with its V8 code cache (scripts/bundle.js). */
  readonly main = path.join(this.repo, 'build/shoal.js');
  /** 'direct' when main.js is executable (its shebang is used as npm's bin link would), else 'wrapper'. */
  binMode: 'direct' | 'wrapper' = 'direct';
  runtimes: Runtime[] = [];
  worker: NsWorker | null = null;
  /** Containers that may exist: runtime key -> ids. */
  live = new Map<Runtime, Set<string>>();
  samples: Samples = {};
  readonly env: NodeJS.ProcessEnv;
  /** Stripped variables that were set (reported; one extra baseline shows their cost). */
  readonly stripped: string[];
  errors: string[] = [];
  /** Set on SIGINT/SIGTERM: no new command starts; the loop ends and cleanup runs after it. */
  stopping = false;
  private cleaned = false;
  private cleaning = false;

  constructor(readonly opts: Options) {
    this.env = benchEnv(opts.keepEnv);
    this.stripped = opts.keepEnv ? [] : STRIPPED_ENV.filter((k) => process.env[k] !== undefined);
  }

  async setup(): Promise<void> {
    if (process.getuid?.() !== 0) throw new Error('run as root');
    if (!fs.existsSync(this.main)) throw new Error(`${this.main} missing: run \`npx tsc -p .\` first`);
    makeBundle(this.bundle, this.opts.runc);
    let bin = this.main;
    if ((fs.statSync(this.main).mode & 0o111) === 0) {
      // `npm run build:ts` chmods main.js; a bare `tsc` does not. Keep the shebang path: a script
      // with the same `#!/usr/bin/env node` line that requires main.js (one extra module load).
      this.binMode = 'wrapper';
      bin = path.join(this.tmp, 'shoal');
      fs.writeFileSync(bin, `#!/usr/bin/env node\nrequire(${JSON.stringify(this.main)});\n`, { mode: 0o755 });
    }
    const mk = (key: string, label: string, cmd: string[], ns = false): Runtime => {
      const root = path.join(this.tmp, `root-${key}`);
      fs.mkdirSync(root);
      return { key, label, cmd: [...cmd, '--root', root], ns, log: path.join(this.tmp, `${key}.log`), failures: 0, consecutiveFailures: 0 };
    };
    const all: Record<string, () => Runtime> = {
      shoal: () => mk('shoal', 'shoal', [process.execPath, this.main]),
      'shoal-bin': () => mk('shoal-bin', this.binMode === 'direct' ? 'shoal (bin)' : 'shoal (bin*)', [bin]),
      runc: () => mk('runc', 'runc', [this.opts.runc]),
      crun: () => mk('crun', 'crun', [this.opts.crun], true),
    };
    for (const key of this.opts.runtimes) {
      if (key === 'runc' || key === 'crun') {
        const bin = key === 'runc' ? this.opts.runc : this.opts.crun;
        if (!fs.existsSync(bin)) {
          this.errors.push(`${key}: ${bin} not found (apt-get install ${key}); skipped`);
          continue;
        }
      }
      this.runtimes.push(all[key]());
    }
    if (this.runtimes.some((r) => r.ns)) {
      this.worker = new NsWorker();
      await this.worker.start();
    }
  }

  /** Times one invocation of a runtime (args after the --root prefix). */
  time(rt: Runtime, args: string[], env?: NodeJS.ProcessEnv): Promise<Timed> {
    if (this.stopping && !this.cleaning) return Promise.resolve({ ns: 0, status: null, signal: 'stopping', log: '' });
    const argv = [...rt.cmd, ...args];
    const e = env ?? this.env;
    return rt.ns ? this.worker!.time(argv, rt.log, e) : Promise.resolve(timeCommand(argv, rt.log, e));
  }

  private track(rt: Runtime, id: string, on: boolean): void {
    if (!this.live.has(rt)) this.live.set(rt, new Set());
    if (on) this.live.get(rt)!.add(id);
    else this.live.get(rt)!.delete(id);
  }

  private record(scenario: string, label: string, v: number, keep: boolean): void {
    if (!keep) return;
    ((this.samples[scenario] ??= {})[label] ??= []).push(v);
  }

  /**
   * A failed invocation: its sample is dropped and the error kept for the report. After
   * --max-failures failures in a row the runtime is no longer measured (the build tree may be
   * mid-rebuild, or the runtime simply broken on this host).
   */
  private async fail(rt: Runtime, what: string, t: Timed, id: string): Promise<void> {
    if (this.stopping) return; // the container, if any, stays in `live` for cleanup
    rt.failures++;
    rt.consecutiveFailures++;
    const msg = `${what}: exit ${t.status ?? t.signal}: ${t.log.trim().split('\n').slice(0, 4).join(' | ')}`;
    this.errors.push(`${rt.label}: ${msg}`);
    process.stderr.write(`\n${rt.label} failed (sample dropped): ${msg}\n`);
    if (rt.consecutiveFailures >= this.opts.maxFailures) {
      rt.failed = msg;
      this.errors.push(`${rt.label}: ${rt.consecutiveFailures} failures in a row, no longer measured`);
    }
    await this.time(rt, ['delete', '--force', id]);
    this.track(rt, id, false);
  }

  private ok(rt: Runtime): void {
    rt.consecutiveFailures = 0;
  }

  /** One iteration: every task once, in a random order. */
  async iteration(i: number, keep: boolean): Promise<void> {
    const tasks: Array<() => Promise<void>> = [];
    const base = (label: string, argv: string[], env = this.env) => async () => {
      const t = timeCommand(argv, path.join(this.tmp, 'baseline.log'), env);
      if (t.status !== 0) throw new Error(`baseline ${label} failed: ${t.log}`);
      this.record('baseline', label, t.ns / 1e6, keep);
    };
    tasks.push(base('spawn /bin/true', ['/bin/true']));
    tasks.push(base('node -e 0', [process.execPath, '-e', '0']));
    tasks.push(base('shoal --version', [process.execPath, this.main, '--version']));
    if (this.stripped.length) tasks.push(base('node -e 0, full env', [process.execPath, '-e', '0'], process.env));
    for (const rt of this.runtimes) {
      tasks.push(async () => {
        if (rt.failed) return;
        const id = `sb${process.pid}-${rt.key}-run-${i}`;
        this.track(rt, id, true);
        const t = await this.time(rt, ['run', '-b', this.bundle, id]);
        if (t.status !== 0) return this.fail(rt, 'run', t, id);
        this.track(rt, id, false);
        this.ok(rt);
        this.record('run', rt.label, t.ns / 1e6, keep);
      });
      tasks.push(async () => {
        if (rt.failed) return;
        const id = `sb${process.pid}-${rt.key}-csd-${i}`;
        this.track(rt, id, true);
        const c = await this.time(rt, ['create', '-b', this.bundle, id]);
        if (c.status !== 0) return this.fail(rt, 'create', c, id);
        const s = await this.time(rt, ['start', id]);
        if (s.status !== 0) return this.fail(rt, 'start', s, id);
        // --force: /bin/true may still be running when start returns; the runtimes then kill it.
        const d = await this.time(rt, ['delete', '--force', id]);
        if (d.status !== 0) return this.fail(rt, 'delete', d, id);
        this.track(rt, id, false);
        this.ok(rt);
        this.record('create+start+delete', rt.label, (c.ns + s.ns + d.ns) / 1e6, keep);
        this.record('create', rt.label, c.ns / 1e6, keep);
        this.record('start', rt.label, s.ns / 1e6, keep);
        this.record('delete', rt.label, d.ns / 1e6, keep);
      });
    }
    for (let k = tasks.length - 1; k > 0; k--) {
      const j = Math.floor(Math.random() * (k + 1));
      [tasks[k], tasks[j]] = [tasks[j], tasks[k]];
    }
    for (const task of tasks) {
      if (this.stopping) return;
      await task();
    }
  }

  /** Deletes leftover containers, stops the worker, removes the temp dir. Idempotent. */
  async cleanup(): Promise<void> {
    if (this.cleaned) return;
    this.cleaned = true;
    this.cleaning = true;
    for (const [rt, ids] of this.live) {
      for (const id of ids) await this.time(rt, ['delete', '--force', id]).catch(() => undefined);
    }
    this.worker?.stop();
    fs.rmSync(this.tmp, { recursive: true, force: true });
  }
}

function versions(o: Options): Record<string, string> {
  const first = (s: string) => s.split('\n')[0] ?? '';
  return {
    node: process.version,
    runc: first(capture([o.runc, '--version']).out),
    crun: first(capture([o.crun, '--version']).out),
    shoal: first(capture([process.execPath, path.join(repoRoot(), 'build/shoal.js'), '--version']).out),
    shoalCommit: capture(['git', '-C', repoRoot(), 'rev-parse', '--short', 'HEAD']).out,
    shoalDirty: capture(['git', '-C', repoRoot(), 'status', '--porcelain', '--untracked-files=no', 'shim', 'native']).out ? 'yes' : 'no',
  };
}

function hostInfo(): Record<string, string | number> {
  return {
    kernel: os.release(),
    cpu: os.cpus()[0]?.model ?? '?',
    cores: os.cpus().length,
    loadavg: os.loadavg().map((l) => l.toFixed(2)).join(' '),
  };
}

/** Row order within a scenario. */
const ROW_ORDER = ['spawn /bin/true', 'node -e 0', 'node -e 0, full env', 'shoal --version', 'shoal', 'shoal (bin)', 'shoal (bin*)', 'runc', 'crun'];

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}
function lpad(s: string, n: number): string {
  return s.length >= n ? s : ' '.repeat(n - s.length) + s;
}

interface Comparison {
  scenario: string;
  runtime: string;
  medianMs: number;
  vsRunc: number;
  vsCrun: number;
  /** Median minus the `node -e 0` median, times the number of shoal invocations, in ms. */
  overNodeMs: number;
  invocations: number;
  /** overNodeMs per invocation. */
  overNodePerInvocationMs: number;
  /** Same from the minimums (less sensitive to a busy machine). */
  overNodeMinPerInvocationMs: number;
  meetsTarget: boolean;
}

function report(b: Bench, started: Date, loadAtStart: string): void {
  const sum: Record<string, Record<string, Summary>> = {};
  for (const [sc, byRt] of Object.entries(b.samples)) {
    sum[sc] = {};
    for (const [rt, xs] of Object.entries(byRt)) sum[sc][rt] = summarize(xs);
  }
  const out: string[] = [];
  const header = `${pad('scenario', 22)}${pad('runtime', 22)}${lpad('n', 4)}${lpad('min', 9)}${lpad('median', 9)}${lpad('p90', 9)}   (ms)`;
  out.push(header, '-'.repeat(header.length));
  const order = ['baseline', 'run', 'create+start+delete', 'create', 'start', 'delete'];
  for (const sc of order) {
    if (!sum[sc]) continue;
    let first = true;
    const rank = (l: string) => {
      const i = ROW_ORDER.indexOf(l);
      return i < 0 ? ROW_ORDER.length : i;
    };
    for (const [rt, s] of Object.entries(sum[sc]).sort((x, y) => rank(x[0]) - rank(y[0]))) {
      const name = first ? (sc === 'run' ? 'run /bin/true' : ['create', 'start', 'delete'].includes(sc) ? `  ${sc}` : sc) : '';
      out.push(`${pad(name, 22)}${pad(rt, 22)}${lpad(String(s.n), 4)}${lpad(ms(s.min), 9)}${lpad(ms(s.median), 9)}${lpad(ms(s.p90), 9)}`);
      first = false;
    }
  }

  const node = sum.baseline?.['node -e 0']?.median ?? NaN;
  const nodeMin = sum.baseline?.['node -e 0']?.min ?? NaN;
  const comparisons: Comparison[] = [];
  const invocations: Record<string, number> = { run: 1, 'create+start+delete': 3, create: 1, start: 1, delete: 1 };
  for (const sc of ['run', 'create+start+delete', 'create', 'start', 'delete']) {
    for (const rt of ['shoal', 'shoal (bin)', 'shoal (bin*)']) {
      if (!sum[sc]?.[rt]) continue;
      const m = sum[sc][rt].median;
      const n = invocations[sc];
      const over = m - n * node;
      comparisons.push({
        scenario: sc,
        runtime: rt,
        medianMs: m,
        vsRunc: m / (sum[sc].runc?.median ?? NaN),
        vsCrun: m / (sum[sc].crun?.median ?? NaN),
        overNodeMs: over,
        invocations: n,
        overNodePerInvocationMs: over / n,
        overNodeMinPerInvocationMs: (sum[sc][rt].min - n * nodeMin) / n,
        meetsTarget: over / n <= TARGET_MS,
      });
    }
  }
  const ratio = (r: number) => (Number.isFinite(r) ? `${r.toFixed(2)}x` : '-');
  const sign = (v: number) => (Number.isFinite(v) ? `${v >= 0 ? '+' : ''}${v.toFixed(1)}` : '-');
  out.push('');
  const h2 = `${pad('scenario', 22)}${pad('runtime', 22)}${lpad('shoal/runc', 11)}${lpad('shoal/crun', 11)}${lpad('- node (ms)', 13)}${lpad('per call', 10)}${lpad('(from min)', 12)}  target <= ${TARGET_MS} ms over node`;
  out.push(h2, '-'.repeat(h2.length));
  for (const c of comparisons) {
    out.push(
      `${pad(c.scenario, 22)}${pad(c.runtime, 22)}${lpad(ratio(c.vsRunc), 11)}${lpad(ratio(c.vsCrun), 11)}${lpad(sign(c.overNodeMs), 13)}${lpad(sign(c.overNodePerInvocationMs), 10)}${lpad(sign(c.overNodeMinPerInvocationMs), 12)}  ${Number.isFinite(c.overNodePerInvocationMs) ? (c.meetsTarget ? 'PASS' : 'FAIL') : '-'}`,
    );
  }
  out.push('');
  out.push(`node -e 0 median ${ms(node)} ms; "- node" = shoal median minus node median, over all shoal processes and per process (create+start+delete: 3); target on the median per call.`);
  if (b.stripped.length)
    out.push(`stripped from the environment of timed commands: ${b.stripped.join(', ')} ("node -e 0, full env" shows what they cost; --keep-env keeps them).`);
  if (b.binMode === 'wrapper' && b.runtimes.some((r) => r.key === 'shoal-bin')) out.push('shoal (bin*): main.js is not executable (plain tsc build), timed through a #!/usr/bin/env node wrapper that requires it.');
  for (const e of b.errors) out.push(`error: ${e}`);
  process.stdout.write(out.join('\n') + '\n');

  if (b.opts.out === null) return;
  const stamp = started.toISOString().slice(0, 19).replace(/:/g, '-') + 'Z';
  const file = b.opts.out || path.join(b.repo, 'bench', 'results', `${stamp}.json`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const json = {
    date: started.toISOString(),
    host: { ...hostInfo(), loadavgAtStart: loadAtStart },
    versions: versions(b.opts),
    options: { iterations: b.opts.iterations, warmup: b.opts.warmup, runtimes: b.opts.runtimes },
    method:
      'wall time of spawnSync from a node process (hrtime), stdio to a file; crun in a private mount namespace without /sys/fs/cgroup/unified (set up once, untimed); tasks shuffled per iteration; delete uses --force',
    binMode: b.binMode,
    strippedEnv: b.stripped,
    targetMsOverNode: TARGET_MS,
    summary: sum,
    comparisons,
    errors: b.errors,
    failures: Object.fromEntries(b.runtimes.map((r) => [r.label, r.failures])),
    samplesMs: b.samples,
  };
  fs.writeFileSync(file, JSON.stringify(json, null, 2) + '\n');
  process.stdout.write(`wrote ${path.relative(process.cwd(), file) || file}\n`);
}

/** --profile: shoal once with SHOAL_TRACE=1; print its stderr per command. */
async function profile(b: Bench): Promise<void> {
  const rt = b.runtimes.find((r) => r.key === 'shoal');
  if (!rt) throw new Error('--profile needs the shoal runtime');
  const env = { ...b.env, SHOAL_TRACE: '1' };
  // One untimed warm-up so the page cache holds node and the build tree.
  await b.time(rt, ['--version']);
  const show = (what: string, t: Timed) => {
    const text = fs.readFileSync(rt.log, 'utf8').trimEnd();
    process.stdout.write(`\n$ SHOAL_TRACE=1 shoal ${what}   (wall ${ms(t.ns / 1e6)} ms, exit ${t.status ?? t.signal})\n`);
    process.stdout.write((text || '(no output: SHOAL_TRACE emitted nothing)') + '\n');
  };
  const nodeT = timeCommand([process.execPath, '-e', '0'], path.join(b.tmp, 'baseline.log'), b.env);
  process.stdout.write(`node -e 0: ${ms(nodeT.ns / 1e6)} ms (one sample)\n`);
  const id = `sb${process.pid}-profile`;
  const steps: Array<[string, string[]]> = [
    [`run -b BUNDLE ${id}-run`, ['run', '-b', b.bundle, `${id}-run`]],
    [`create -b BUNDLE ${id}`, ['create', '-b', b.bundle, id]],
    [`start ${id}`, ['start', id]],
    [`delete --force ${id}`, ['delete', '--force', id]],
  ];
  b.live.set(rt, new Set([`${id}-run`, id]));
  for (const [what, args] of steps) {
    const t = await b.time(rt, args, env);
    show(what, t);
    if (t.status !== 0) break;
  }
}

async function main(): Promise<number> {
  const opts = parseOptions(process.argv.slice(2));
  if (opts.profile) opts.runtimes = ['shoal'];
  const b = new Bench(opts);
  const onSignal = (sig: NodeJS.Signals) => {
    if (b.stopping) return; // already stopping: cleanup runs once the current command returns
    process.stderr.write(`\n${sig}: stopping after the current command, then cleaning up\n`);
    b.stopping = true;
    process.exitCode = 130;
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const started = new Date();
  const loadAtStart = os.loadavg().map((l) => l.toFixed(2)).join(' ');
  try {
    await b.setup();
    if (opts.profile) {
      await profile(b);
      return 0;
    }
    const total = opts.warmup + opts.iterations;
    process.stderr.write(`shoal bench: ${b.runtimes.map((r) => r.label).join(', ')}; ${opts.warmup} warm-up + ${opts.iterations} iterations\n`);
    for (let i = 0; i < total && !b.stopping; i++) {
      await b.iteration(i, i >= opts.warmup);
      if (process.stderr.isTTY) process.stderr.write(`\r${i + 1}/${total}`);
      else if ((i + 1) % 10 === 0 || i + 1 === total) process.stderr.write(`${i + 1}/${total}\n`);
    }
    if (process.stderr.isTTY) process.stderr.write('\n');
    await b.cleanup();
    if (b.stopping) return 130;
    process.stdout.write(`load average at start ${loadAtStart}, at end ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} (${os.cpus().length} cores)\n`);
    report(b, started, loadAtStart);
    return b.runtimes.some((r) => r.failed) ? 1 : 0;
  } finally {
    await b.cleanup();
  }
}

main().then(
  (code) => {
    process.exitCode = code;
    // Exit once cleanup is done even if a stray handle (the worker's pipes) lingers.
    setImmediate(() => process.exit(code));
  },
  (e) => {
    process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 2;
  },
);
