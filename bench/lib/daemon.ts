/**
 * Shared pieces of the daemon benchmarks (bench/containerd.ts, bench/docker.ts): containerd (and
 * dockerd) from test/lib/daemons.ts in a private mount namespace, one containerd namespace per
 * runtime, `ctr` commands timed like start.ts (spawnSync wall time, output to a file), the shim
 * processes of a namespace and their PSS, and cleanup (containers, namespaces, daemons, cgroups,
 * temp dirs) at the end, after an error or on SIGINT/SIGTERM.
 *
 * The daemons inherit this process's environment, and the shims and runtimes theirs: `stripEnv`
 * removes NODE_EXTRA_CA_CERTS & co. from process.env before anything starts (see README: this
 * sandbox's NODE_EXTRA_CA_CERTS costs every node start about +40-55 ms).
 */
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Containerd, Sandbox } from '../../test/lib/daemons';
import { timeCommand, Timed } from './exec';
import { smapsRollup } from './memory-measure';
import { summarize, Summary } from './stats';

/** Removed from process.env (and so from the daemons, shims and runtimes) unless --keep-env. */
export const STRIPPED_ENV = ['NODE_EXTRA_CA_CERTS', 'NODE_OPTIONS', 'NODE_DEBUG', 'NODE_V8_COVERAGE', 'SHOAL_TRACE'];

/** Deletes STRIPPED_ENV from process.env; returns the names that were set. */
export function stripEnv(): string[] {
  const set = STRIPPED_ENV.filter((k) => process.env[k] !== undefined);
  for (const k of set) delete process.env[k];
  return set;
}

/** The repository root: the nearest parent of this file with shoal's package.json. */
export function repoRoot(): string {
  for (let d = __dirname; d !== path.dirname(d); d = path.dirname(d)) {
    const p = path.join(d, 'package.json');
    if (fs.existsSync(p) && JSON.parse(fs.readFileSync(p, 'utf8')).name === 'shoal') return d;
  }
  throw new Error('shoal repository root not found above ' + __dirname);
}

export const loadavg = (): string => os.loadavg().map((l) => l.toFixed(2)).join(' ');

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Fisher-Yates, in place. */
export function shuffle<T>(a: T[]): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

/** `--flag value` / `--flag=value` parsing shared by both benchmarks. */
export function parseArgs(argv: string[], handle: (flag: string, value: () => string, count: () => number) => boolean, usage: string): void {
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
    if (flag === '--help' || flag === '-h') {
      process.stdout.write(usage);
      process.exit(0);
    }
    if (!handle(flag, value, count)) throw new Error(`unknown option ${a}\n${usage}`);
  }
}

/** The options every daemon benchmark takes (bench/containerd.ts, bench/docker.ts). */
export interface CommonOptions {
  iterations: number;
  warmup: number;
  variants: string[];
  out: string | null;
  keepEnv: boolean;
}

/** A comma-separated list flag value. */
export const listValue = (v: string): string[] => v.split(',').map((s) => s.trim()).filter(Boolean);

/**
 * Handles one of the common flags (--iterations, --warmup, --variants, --out, --no-json,
 * --keep-env) for `parseArgs`; false for any other flag.
 */
export function commonFlag(o: CommonOptions, flag: string, value: () => string, count: () => number): boolean {
  switch (flag) {
    case '--iterations': o.iterations = Math.max(1, count()); break;
    case '--warmup': o.warmup = count(); break;
    case '--variants': o.variants = listValue(value()); break;
    case '--out': o.out = value(); break;
    case '--no-json': o.out = null; break;
    case '--keep-env': o.keepEnv = true; break;
    default: return false;
  }
  return true;
}

/** Throws for a variant not in `known`. */
export function checkVariants(o: CommonOptions, known: string[]): void {
  for (const v of o.variants) if (!known.includes(v)) throw new Error(`unknown variant ${v}`);
}

/** Samples per scenario per label, in ms. */
export type Samples = Record<string, Record<string, number[]>>;

export function record(samples: Samples, scenario: string, label: string, v: number): void {
  ((samples[scenario] ??= {})[label] ??= []).push(v);
}

export function summaries(samples: Samples): Record<string, Record<string, Summary>> {
  const out: Record<string, Record<string, Summary>> = {};
  for (const [sc, byLabel] of Object.entries(samples)) {
    out[sc] = {};
    for (const [l, v] of Object.entries(byLabel)) out[sc][l] = summarize(v);
  }
  return out;
}

/** A markdown table. */
export function table(head: string[], rows: string[][]): string {
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

/**
 * `ctr` against one containerd, in one containerd namespace. The namespace's cgroup parent
 * (`/<ns>`, where ctr puts containers' cgroups) is registered with the sandbox, so `stop` removes
 * what is left there.
 */
export class CtrNamespace {
  readonly log: string;
  constructor(readonly cd: Containerd, readonly ns: string, logDir: string) {
    this.log = path.join(logDir, `ctr-${ns}.log`);
    cd.sandbox.addCgroupParent(`/${ns}`);
  }

  argv(args: string[]): string[] {
    return [...this.cd.sandbox.nsenterArgs(), this.cd.ctrPath, '-a', this.cd.sock, '-n', this.ns, ...args];
  }

  /** Untimed; never throws. */
  run(args: string[], timeoutMs = 120_000) {
    return this.cd.sandbox.run(this.cd.ctrPath, ['-a', this.cd.sock, '-n', this.ns, ...args], { timeoutMs });
  }

  /** Timed like start.ts (spawnSync, output to a log file). */
  time(args: string[], timeoutMs = 60_000): Timed {
    return timeCommand(this.argv(args), this.log, process.env, timeoutMs);
  }

  /** `ctr images import` of an OCI layout tar into this namespace; throws on failure. */
  importImage(tar: string): void {
    const r = this.run(['images', 'import', tar]);
    if (r.code !== 0) throw new Error(`ctr -n ${this.ns} images import: ${r.stderr}`);
  }

  /** Task id -> status (RUNNING, STOPPED, ...). */
  tasks(): Map<string, string> {
    const m = new Map<string, string>();
    for (const line of this.run(['tasks', 'ls']).stdout.split('\n').slice(1)) {
      const [id, , status] = line.trim().split(/\s+/);
      if (id) m.set(id, status);
    }
    return m;
  }

  containers(): string[] {
    return this.run(['containers', 'ls', '-q']).stdout.split(/\s+/).filter(Boolean);
  }

  /**
   * Kills (SIGKILL) and deletes every task and container of the namespace, `parallel` at a time;
   * returns the wall time in ms and what could not be removed.
   */
  async removeAll(parallel = 8): Promise<{ ms: number; left: string[] }> {
    const t0 = process.hrtime.bigint();
    const tasks = this.tasks();
    await runPool([...tasks.keys()].filter((id) => tasks.get(id) !== 'STOPPED'), parallel, (id) => this.spawnCtr(['tasks', 'kill', '-s', 'SIGKILL', id]));
    const deadline = Date.now() + 15_000;
    while ([...this.tasks().values()].some((s) => s !== 'STOPPED') && Date.now() < deadline) await sleep(100);
    await runPool([...this.tasks().keys()], parallel, (id) => this.spawnCtr(['tasks', 'delete', '-f', id]));
    await runPool(this.containers(), parallel, (id) => this.spawnCtr(['containers', 'delete', id]));
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    return { ms, left: [...this.tasks().keys(), ...this.containers()] };
  }

  /** Removes the namespace's images and the namespace itself (after removeAll). */
  removeNamespace(): void {
    const imgs = this.run(['images', 'ls', '-q']).stdout.split(/\s+/).filter(Boolean);
    if (imgs.length) this.run(['images', 'rm', ...imgs]);
    this.cd.sandbox.run(this.cd.ctrPath, ['-a', this.cd.sock, 'namespaces', 'rm', this.ns]);
  }

  /** `ctr ...` asynchronously (for parallel clients); resolves with exit code, wall ms, output tail. */
  spawnCtr(args: string[]): Promise<CtrResult> {
    const argv = this.argv(args);
    return new Promise((resolve) => {
      const t0 = process.hrtime.bigint();
      const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
      let out = '';
      child.stdout!.on('data', (d) => (out = (out + d).slice(-2000)));
      child.stderr!.on('data', (d) => (out = (out + d).slice(-2000)));
      const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
      child.on('error', (e) => (out += e.message));
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, ms: Number(process.hrtime.bigint() - t0) / 1e6, out: out.trim() });
      });
    });
  }
}

/** Runs `fn` over `items`, at most `parallel` at a time; results in item order. */
/** What a `ctr` client did: exit code (null: killed or never ran), wall ms, output tail. */
export interface CtrResult {
  code: number | null;
  ms: number;
  out: string;
}

/*
 * bash in the sandbox's mount namespace, started once, that starts `ctr` clients on request: each
 * request line is `key<TAB>arg...` and runs `ctr -a SOCK -n NS arg...` in the background, output to
 * DIR/key.out; its answer line is `key<TAB>exit code<TAB>start<TAB>end` ($EPOCHREALTIME, taken
 * around the client). Lines shorter than PIPE_BUF reach the pipe whole.
 */
const CTR_SHELL = `
sock=$1 ns=$2 dir=$3 ctr=$4
while IFS=$'\\t' read -r -a a; do
  { t0=$EPOCHREALTIME; "$ctr" -a "$sock" -n "$ns" "\${a[@]:1}" >"$dir/\${a[0]}.out" 2>&1; rc=$?; printf '%s\\t%s\\t%s\\t%s\\n' "\${a[0]}" "$rc" "$t0" "$EPOCHREALTIME"; } &
done
wait
`;

/**
 * Starts the `ctr` clients of a storm from a shell inside the sandbox. spawnCtr forks this node
 * process (about 100 MB of mappings to copy) and execs nsenter for every client: about 5 ms of
 * CPU per client on this VM, which both runtimes pay alike; two forks of a small bash cost half
 * that. Arguments must not hold tabs or newlines.
 */
export class CtrShell {
  private readonly child: ChildProcess;
  private readonly waiting = new Map<string, (r: CtrResult) => void>();
  private readonly dir: string;
  private seq = 0;
  private buf = '';

  constructor(readonly n: CtrNamespace, tmp = os.tmpdir()) {
    // Output files on tmpfs: a new inode on this VM's ext4 (no journal) costs ~0.7 ms.
    this.dir = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : tmp, 'shoal-ctr-shell-'));
    const [nsenter, ...pre] = n.cd.sandbox.nsenterArgs();
    this.child = spawn(nsenter, [...pre, 'bash', '-c', CTR_SHELL, 'ctr-shell', n.cd.sock, n.ns, this.dir, n.cd.ctrPath], { stdio: ['pipe', 'pipe', 'inherit'], env: process.env });
    this.child.stdout!.setEncoding('utf8');
    this.child.stdout!.on('data', (d: string) => {
      this.buf += d;
      let nl;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const [key, rc, t0, t1] = this.buf.slice(0, nl).split('\t');
        this.buf = this.buf.slice(nl + 1);
        this.settle(key, { code: Number(rc), ms: (Number(t1) - Number(t0)) * 1000, out: this.output(key) });
      }
    });
    const fail = (why: string) => {
      for (const key of [...this.waiting.keys()]) this.settle(key, { code: null, ms: 0, out: why });
    };
    this.child.on('error', (e) => fail(`ctr shell: ${e.message}`));
    this.child.on('exit', (code, sig) => fail(`ctr shell exited (${code ?? sig})`));
  }

  private output(key: string): string {
    try {
      return fs.readFileSync(path.join(this.dir, `${key}.out`), 'utf8').slice(-2000).trim();
    } catch {
      return '';
    }
  }

  private settle(key: string, r: CtrResult): void {
    const done = this.waiting.get(key);
    if (!done) return;
    this.waiting.delete(key);
    done(r);
  }

  /** `ctr -a SOCK -n NS ...args`, started by the shell; resolves when it ends (or after timeoutMs). */
  run(args: string[], timeoutMs = 120_000): Promise<CtrResult> {
    if (args.some((a) => /[\t\n]/.test(a))) throw new Error(`ctr shell: an argument holds a tab or newline: ${JSON.stringify(args)}`);
    const key = `c${this.seq++}`;
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.settle(key, { code: null, ms: timeoutMs, out: `no answer within ${timeoutMs} ms` }), timeoutMs);
      this.waiting.set(key, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
      this.child.stdin!.write(`${[key, ...args].join('\t')}\n`);
    });
  }

  /** The shell's pid (its reaped clients' CPU is in its cutime/cstime). */
  get pid(): number {
    return this.child.pid ?? 0;
  }

  /** Resolves once the shell has reaped every client (or after timeoutMs). */
  async reaped(timeoutMs = 2000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const children = () => {
      try {
        return fs.readFileSync(`/proc/${this.pid}/task/${this.pid}/children`, 'latin1').trim();
      } catch {
        return '';
      }
    };
    while (children() && Date.now() < deadline) await sleep(20);
  }

  /** Ends the shell (after its clients) and removes the output files. */
  async close(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((r) => this.child.once('exit', r));
      this.child.stdin!.end();
      const t = setTimeout(() => this.child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(t);
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

export async function runPool<T, R>(items: T[], parallel: number, fn: (x: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(parallel, items.length)) }, worker));
  return out;
}

/** Inodes of listening unix sockets whose path starts with `prefix` (from /proc/net/unix). */
function listeningSocketInodes(prefix: string): Map<number, string> {
  const m = new Map<number, string>();
  const lines = fs.readFileSync('/proc/net/unix', 'utf8').split('\n').slice(1);
  for (const l of lines) {
    // Num RefCount Protocol Flags Type St Inode Path
    const f = l.trim().split(/\s+/);
    if (f.length < 8) continue;
    const flags = parseInt(f[3], 16);
    if (!(flags & 0x10000)) continue; // __SO_ACCEPTCON: listening
    if (f[7].startsWith(prefix)) m.set(Number(f[6]), f[7]);
  }
  return m;
}

/** Processes of the sandbox's mount namespace (shims, helpers, runtimes), without the daemons. */
export function sandboxProcesses(sandbox: Sandbox): number[] {
  const ns = sandbox.mountNs;
  const skip = sandbox.daemonPids();
  const out: number[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const pid = Number(e);
    if (skip.has(pid) || pid === process.pid) continue;
    try {
      if (fs.readlinkSync(`/proc/${pid}/ns/mnt`) !== ns) continue;
      const st = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
      if (st[st.lastIndexOf(')') + 2] === 'Z') continue;
      out.push(pid);
    } catch {
      // gone
    }
  }
  return out;
}

export function cmdline(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1').replace(/\0/g, ' ').trim();
  } catch {
    return '(gone)';
  }
}

/**
 * The processes of the sandbox that listen on a shim socket (/run/containerd/s/...), found from the
 * socket inodes of /proc/net/unix and the processes' fds, with the socket path of each.
 */
export function shimListeners(sandbox: Sandbox): Array<{ pid: number; sockets: string[] }> {
  const inodes = listeningSocketInodes('/run/containerd/s/');
  const out: Array<{ pid: number; sockets: string[] }> = [];
  for (const pid of sandboxProcesses(sandbox)) {
    const sockets: string[] = [];
    let fds: string[] = [];
    try {
      fds = fs.readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m && inodes.has(Number(m[1]))) sockets.push(inodes.get(Number(m[1]))!);
      } catch {
        // closed meanwhile
      }
    }
    if (sockets.length) out.push({ pid, sockets: [...new Set(sockets)] });
  }
  return out;
}

/** Containerd namespace a shim process serves (its `-namespace` argument), or ''. */
export function shimNamespace(pid: number): string {
  const args = cmdline(pid).split(' ');
  const i = args.indexOf('-namespace');
  return i >= 0 ? args[i + 1] ?? '' : '';
}

export interface ShimMemory {
  /** Processes counted. */
  processes: number;
  /** KiB summed over them. */
  pss: number;
  pssAnon: number;
  pssFile: number;
  rss: number;
  /** Each process: pid, PSS KiB, command line (shortened). */
  each: Array<{ pid: number; pssKiB: number; cmd: string }>;
}

export function memoryOf(pids: number[]): ShimMemory {
  const m: ShimMemory = { processes: 0, pss: 0, pssAnon: 0, pssFile: 0, rss: 0, each: [] };
  for (const pid of new Set(pids)) {
    const r = smapsRollup(pid);
    if (!r) continue;
    m.processes++;
    m.pss += r.Pss ?? 0;
    m.pssAnon += r.Pss_Anon ?? 0;
    m.pssFile += r.Pss_File ?? 0;
    m.rss += r.Rss ?? 0;
    m.each.push({ pid, pssKiB: r.Pss ?? 0, cmd: cmdline(pid).slice(0, 160) });
  }
  return m;
}

/** Clock ticks per second of /proc's CPU times (USER_HZ: 100 on every Linux architecture we run on). */
const USER_HZ = 100;

/**
 * CPU seconds a process used, its own and its reaped children's (user + system, from
 * /proc/PID/stat), or 0 when it is gone.
 */
export function processCpu(pid: number | 'self'): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields 14-17 of stat(5) (utime stime cutime cstime) are 11-14 after "pid (comm) "
    return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / USER_HZ;
  } catch {
    return 0;
  }
}

/** CPU seconds the whole machine has been busy since boot (user, nice, system, irq, softirq). */
export function machineCpu(): number {
  const f = fs.readFileSync('/proc/stat', 'latin1').split('\n', 1)[0].trim().split(/\s+/).slice(1).map(Number);
  return (f[0] + f[1] + f[2] + f[5] + f[6]) / USER_HZ;
}

/**
 * Cleanup on SIGINT/SIGTERM: the first signal sets `stopping` (loops check it and end, then the
 * normal cleanup runs); a second one kills everything synchronously and exits.
 */
export function onSignals(state: { stopping: boolean }, hardKill: () => void): void {
  let count = 0;
  const h = (sig: NodeJS.Signals) => {
    count++;
    state.stopping = true;
    process.stderr.write(`\n${sig}: stopping after the current command, then cleaning up (again to kill everything now)\n`);
    if (count > 1) {
      hardKill();
      process.exit(130);
    }
  };
  process.on('SIGINT', h);
  process.on('SIGTERM', h);
}

/** Writes the JSON results (default bench/results/<prefix><date>.json); returns the path or null. */
export function writeJson(out: string | null, prefix: string, data: unknown): string | null {
  if (out === null) return null;
  const file = out || path.join(repoRoot(), 'bench', 'results', `${prefix}${new Date().toISOString().replace(/:/g, '-').replace(/\.\d+Z$/, 'Z')}.json`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(data, null, 2) + '\n');
  return file;
}

/** Versions of the daemons and runtimes, for the report. */
export function versions(sandbox: Sandbox, containerd = 'containerd'): Record<string, string> {
  const v: Record<string, string> = {};
  const first = (cmd: string, args: string[]) => sandbox.run(cmd, args, { timeoutMs: 10_000 }).stdout.split('\n')[0]?.trim() ?? '';
  v.containerd = first(containerd, ['--version']);
  v.runc = first('runc', ['--version']);
  v.node = process.version;
  v.kernel = os.release();
  v.cpu = `${os.cpus()[0]?.model ?? '?'} x${os.cpus().length}`;
  return v;
}
