/*
 * The real container daemons (containerd 1.6 + ctr, dockerd 20.10, podman 4.3) for integration
 * tests, isolated from the host as /work/shared/PROTOCOLS.md section 3 describes.
 *
 * A `Sandbox` is a private mount namespace held open by a `sleep infinity` started through
 * `unshare -m --propagation private`, in which a temp dir is bound over /run (shim sockets live in
 * /run/containerd/s, runc/shoal state in /run/...) and over /etc/docker. Node cannot unshare
 * itself, so every daemon and every client command runs through `nsenter -t <holder> -m`. Daemon
 * roots, state dirs and sockets all live in the temp dir; cgroups (which a mount namespace does
 * not isolate) go under parents unique to this process, so leak checks can tell ours apart.
 *
 *   const cd = await startContainerd();           // cd.ctr(['images', 'ls'])
 *   const dd = await startDockerd(cd);            // dd.docker(['run', '--rm', ...])
 *   const pm = await startPodman();               // pm.podman(['run', '--rm', ...])
 *   ... dd.stop(); cd.stop(); pm.stop();          // throw if anything leaked
 *
 * Leak checks (`Sandbox.snapshot` / `Sandbox.leaksSince`): cgroup directories below this sandbox's
 * cgroup parents, mounts in the sandbox namespace, and processes that are in the sandbox namespace
 * or in those cgroups, other than the daemons themselves.
 */
import { spawn, spawnSync, ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { repoRoot } from '../../shim/src/native';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Absolute path of the bundled shoal CLI (build/shoal.js, executable thanks to its shebang). */
export function shoalExecutable(): string {
  return path.join(repoRoot(), 'build', 'shoal.js');
}

/** Absolute path of the reference runtime (Debian's runc), or undefined when it is not installed. */
export function runcExecutable(): string | undefined {
  for (const p of ['/usr/sbin/runc', '/usr/bin/runc', '/usr/local/sbin/runc', '/usr/local/bin/runc']) {
    if (fs.existsSync(p)) return p;
  }
  return undefined;
}

/** Absolute path of `name` on PATH, or undefined. */
export function which(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    const p = path.join(dir, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Outcome of one client command. */
export interface CmdResult {
  /** Exit code; -1 when killed by a signal (e.g. the timeout) or not spawned. */
  code: number;
  /** Signal that ended it, if any. */
  signal: NodeJS.Signals | null;
  /** Everything it wrote to stdout. */
  stdout: string;
  /** Everything it wrote to stderr (plus a note when it could not be spawned). */
  stderr: string;
}

/** Options of a client command. */
export interface CmdOptions {
  /** Bytes written to stdin (default: none, stdin is /dev/null). */
  input?: string | Buffer;
  /** Kill it after this many milliseconds (default 120 s). */
  timeoutMs?: number;
  /** Extra environment on top of the sandbox's. */
  env?: NodeJS.ProcessEnv;
}

/** Processes, mounts and cgroups that a test may leave behind; see `Sandbox.leaksSince`. */
export interface Snapshot {
  /** Cgroup directories (absolute) strictly below the sandbox's cgroup parents. */
  cgroups: Set<string>;
  /** `mountpoint fstype source` of each mount of the sandbox namespace, with repeats. */
  mounts: string[];
  /** Pids of non-daemon processes in the sandbox namespace or cgroups. */
  pids: Set<number>;
}

/** Description of one live process, for leak reports. */
function describePid(pid: number): string {
  try {
    return `${pid} ${fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1').replace(/\0/g, ' ').trim()}`;
  } catch {
    return `${pid} (gone)`;
  }
}

/** Mount points of the cgroup hierarchies on the host (v1 controllers and cgroup2). */
function cgroupHierarchies(): string[] {
  return fs
    .readFileSync('/proc/self/mounts', 'utf8')
    .trim()
    .split('\n')
    .map((l) => l.split(' '))
    .filter((f) => f[2] === 'cgroup' || f[2] === 'cgroup2')
    .map((f) => f[1]);
}

/** Every directory strictly below `dir` (recursively), deepest last. */
function subdirs(dir: string, out: string[] = []): string[] {
  let ents: fs.Dirent[];
  try {
    ents = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of ents) {
    if (!e.isDirectory()) continue;
    const p = path.join(dir, e.name);
    out.push(p);
    subdirs(p, out);
  }
  return out;
}

/** Pids of live, non-zombie processes. */
function livePids(): number[] {
  const pids: number[] = [];
  for (const n of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(n)) continue;
    try {
      const st = fs.readFileSync(`/proc/${n}/stat`, 'latin1');
      if (st[st.lastIndexOf(')') + 2] === 'Z') continue;
      pids.push(Number(n));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

const liveSandboxes = new Set<Sandbox>();
process.on('exit', () => {
  // Last resort when a test file dies without calling stop(): kill what we started.
  for (const s of liveSandboxes) s.killAllSync();
});

/** Options of `createSandbox`. */
export interface SandboxOptions {
  /** Prefix of the temp dir name under /tmp (keep it short: socket paths must stay < 108 bytes). */
  prefix?: string;
  /**
   * A tmpfs over /run instead of the temp dir's run/, as /run is on production hosts (benchmarks:
   * state files, fifos and sockets then cost what they cost there). Its files are seen only inside
   * the namespace, and go with it.
   */
  runTmpfs?: boolean;
}

/**
 * A private mount namespace with a temp dir bound over /run and /etc/docker; see the file comment.
 * Create with `createSandbox`, end with `stop`.
 */
export class Sandbox {
  /** The temp dir holding daemon roots, state, sockets and logs. */
  readonly dir: string;
  /** Pid of the process holding the namespace open (`sleep infinity`). */
  readonly holderPid: number;
  /** Cgroup parents (relative to each hierarchy root, e.g. `/shoal-docker-123`) owned by this sandbox. */
  readonly cgroupParents: string[] = [];
  /**
   * Cgroups below the parents that a daemon keeps by design (e.g. podman's `/libpod_parent/conmon`):
   * not reported by `leaksSince`, still removed by `stop`.
   */
  readonly expectedCgroups: string[] = [];
  /**
   * Mount points a daemon may keep by design (e.g. the private bind mount containers/storage makes
   * of its overlay home): not reported by `leaksSince`; they go away with the namespace.
   */
  readonly expectedMounts: string[] = [];
  /** Daemons started in the sandbox, stopped (last first) by `stop`. */
  private daemons: Array<{ name: string; child: ChildProcess }> = [];
  private holder: ChildProcess;
  private stopped = false;
  /** Mounts of the namespace right after the binds, before any daemon ran. */
  private initialMounts: string[];

  /** Use `createSandbox`. */
  constructor(dir: string, holder: ChildProcess) {
    this.dir = dir;
    this.holder = holder;
    this.holderPid = holder.pid!;
    this.initialMounts = this.mounts();
  }

  /** The sandbox's mount namespace identity (`mnt:[inode]`). */
  get mountNs(): string {
    return fs.readlinkSync(`/proc/${this.holderPid}/ns/mnt`);
  }

  /** Pids of the holder and the daemons (never reported as leaks). */
  daemonPids(): Set<number> {
    return new Set([this.holderPid, ...this.daemons.map((d) => d.child.pid!).filter(Boolean)]);
  }

  /** Argv prefix that runs a command inside the sandbox's mount namespace. */
  nsenterArgs(): string[] {
    return ['nsenter', '-t', String(this.holderPid), '-m', '--'];
  }

  /** Runs `cmd args` synchronously inside the sandbox; never throws. */
  run(cmd: string, args: string[], opts: CmdOptions = {}): CmdResult {
    const [nsenter, ...pre] = this.nsenterArgs();
    const r = spawnSync(nsenter, [...pre, cmd, ...args], {
      input: opts.input,
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...opts.env },
      encoding: 'utf8',
      timeout: opts.timeoutMs ?? 120_000,
      killSignal: 'SIGKILL',
      maxBuffer: 64 * 1024 * 1024,
    });
    return {
      code: r.error || r.status === null ? -1 : r.status,
      signal: r.signal,
      stdout: r.stdout ?? '',
      stderr: (r.stderr ?? '') + (r.error ? `\n[sandbox] ${cmd}: ${r.error.message}` : ''),
    };
  }

  /**
   * Starts a long-running daemon `cmd args` inside the sandbox, its stdout and stderr appended to
   * `<dir>/<name>.log`. It is stopped by `stop` (SIGTERM, then SIGKILL after 10 s).
   */
  spawnDaemon(name: string, cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
    const log = fs.openSync(path.join(this.dir, `${name}.log`), 'a');
    const [nsenter, ...pre] = this.nsenterArgs();
    // nsenter -m without --fork execs the daemon: child.pid is the daemon's pid.
    const child = spawn(nsenter, [...pre, cmd, ...args], {
      stdio: ['ignore', log, log],
      env: { ...process.env, ...env },
    });
    fs.closeSync(log);
    child.on('error', () => undefined);
    this.daemons.push({ name, child });
    return child;
  }

  /** The tail of a daemon's log, for error messages. */
  logTail(name: string, bytes = 3000): string {
    try {
      const s = fs.readFileSync(path.join(this.dir, `${name}.log`), 'utf8');
      return s.slice(-bytes);
    } catch {
      return '(no log)';
    }
  }

  /** Registers a cgroup parent (e.g. `/shoal-docker-123`) whose children count as this sandbox's. */
  addCgroupParent(parent: string): void {
    this.cgroupParents.push(parent.startsWith('/') ? parent : `/${parent}`);
  }

  /** Mounts of the sandbox namespace as `mountpoint fstype source` lines. */
  mounts(): string[] {
    let text = '';
    try {
      text = fs.readFileSync(`/proc/${this.holderPid}/mountinfo`, 'utf8');
    } catch {
      return [];
    }
    return text
      .trim()
      .split('\n')
      .map((l) => {
        const f = l.split(' ');
        const sep = f.indexOf('-');
        return `${f[4]} ${f[sep + 1]} ${f[sep + 2]}`;
      });
  }

  /** Cgroup directories strictly below this sandbox's cgroup parents, in every hierarchy. */
  cgroupDirs(): string[] {
    const out: string[] = [];
    for (const h of cgroupHierarchies()) {
      for (const parent of this.cgroupParents) subdirs(path.join(h, parent), out);
    }
    return out;
  }

  /**
   * Live processes that belong to the sandbox, daemons excepted: those in its mount namespace
   * (shims, conmon, runtimes) and those whose cgroup is below one of its cgroup parents
   * (container processes, which have their own mount namespaces).
   */
  processes(): number[] {
    const ns = this.mountNs;
    const skip = this.daemonPids();
    const out: number[] = [];
    for (const pid of livePids()) {
      if (skip.has(pid) || pid === process.pid) continue;
      try {
        if (fs.readlinkSync(`/proc/${pid}/ns/mnt`) === ns) {
          out.push(pid);
          continue;
        }
        const cg = fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8');
        if (cg.split('\n').some((l) => this.cgroupParents.some((p) => l.slice(l.indexOf(':', l.indexOf(':') + 1) + 1).startsWith(`${p}/`)))) {
          out.push(pid);
        }
      } catch {
        // exited meanwhile
      }
    }
    return out;
  }

  /** Current processes, mounts and cgroups of the sandbox; compare later with `leaksSince`. */
  snapshot(): Snapshot {
    return { cgroups: new Set(this.cgroupDirs()), mounts: this.mounts(), pids: new Set(this.processes()) };
  }

  /**
   * What appeared since `before` and is still there: new cgroup dirs, new mounts, new processes.
   * Returns human-readable lines (empty when nothing leaked). Waits up to `graceMs` for things
   * that daemons tear down asynchronously (shims exiting, cgroups being removed).
   */
  async leaksSince(before: Snapshot, graceMs = 5000): Promise<string[]> {
    const deadline = Date.now() + graceMs;
    for (;;) {
      const leaks: string[] = [];
      for (const d of this.cgroupDirs()) {
        if (before.cgroups.has(d) || this.expectedCgroups.some((e) => d.endsWith(e))) continue;
        leaks.push(`cgroup ${d}`);
      }
      const counts = new Map<string, number>();
      for (const m of before.mounts) counts.set(m, (counts.get(m) ?? 0) + 1);
      for (const m of this.mounts()) {
        const n = counts.get(m) ?? 0;
        if (n > 0) counts.set(m, n - 1);
        else if (!this.expectedMounts.includes(m.split(' ')[0])) leaks.push(`mount ${m}`);
      }
      for (const pid of this.processes()) if (!before.pids.has(pid)) leaks.push(`process ${describePid(pid)}`);
      if (leaks.length === 0 || Date.now() > deadline) return leaks;
      await sleep(200);
    }
  }

  /**
   * SIGKILLs every sandbox process and daemon, then the holder, removes the cgroups and the temp
   * dir, without reporting anything (synchronous; for the exit hook of a crashed test file).
   */
  killAllSync(): void {
    for (const pid of this.processes()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    for (const d of this.daemons) {
      try {
        d.child.kill('SIGKILL');
      } catch {
        // gone
      }
    }
    try {
      this.holder.kill('SIGKILL');
    } catch {
      // gone
    }
    // Best effort: the killed processes leave their cgroups within a moment.
    const deadline = Date.now() + 3000;
    for (;;) {
      const dirs = this.cgroupDirs().sort((a, b) => b.length - a.length);
      for (const h of cgroupHierarchies()) for (const p of this.cgroupParents) dirs.push(path.join(h, p));
      let busy = false;
      for (const d of dirs) {
        try {
          fs.rmdirSync(d);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'EBUSY') busy = true;
        }
      }
      if (!busy || Date.now() > deadline) break;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  /** Stops one daemon started with `spawnDaemon`: SIGTERM, then SIGKILL after `graceMs`. */
  async stopDaemon(child: ChildProcess, graceMs = 10_000): Promise<void> {
    this.daemons = this.daemons.filter((d) => d.child !== child);
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(t);
  }

  /**
   * Stops every daemon (last started first), then reports and cleans what is left: processes in
   * the namespace or cgroups (killed), cgroup dirs below the parents (removed, parents too), and
   * mounts other than the namespace's initial ones (gone with the namespace). Kills the holder,
   * removes the temp dir, and throws listing every leftover, if any.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const d of [...this.daemons].reverse()) await this.stopDaemon(d.child);
    // Once the daemons are gone, anything but the initial mounts and no process may remain.
    const initial: Snapshot = { cgroups: new Set(), mounts: this.initialMounts, pids: new Set() };
    const leftovers = await this.leaksSince(initial, 3000);
    for (const pid of this.processes()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await sleep(100);
    const holderExit = new Promise<void>((r) => (this.holder.exitCode !== null ? r() : this.holder.once('exit', () => r())));
    this.holder.kill('SIGKILL');
    await holderExit;
    liveSandboxes.delete(this);
    // Remove our cgroups, deepest first, then the parents themselves.
    const dirs = this.cgroupDirs().sort((a, b) => b.length - a.length);
    for (const d of dirs) {
      // Processes killed just above may take a moment to leave their cgroup (EBUSY meanwhile).
      for (let attempt = 0; ; attempt++) {
        try {
          fs.rmdirSync(d);
          break;
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code === 'ENOENT') break;
          if (code === 'EBUSY' && attempt < 30) {
            await sleep(100);
            continue;
          }
          leftovers.push(`cgroup ${d} cannot be removed: ${(e as Error).message}`);
          break;
        }
      }
    }
    for (const h of cgroupHierarchies()) {
      for (const p of this.cgroupParents) {
        try {
          fs.rmdirSync(path.join(h, p));
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOENT') leftovers.push(`cgroup ${path.join(h, p)}: ${(e as Error).message}`);
        }
      }
    }
    // The namespace died with its last process, so nothing is mounted under dir any more.
    fs.rmSync(this.dir, { recursive: true, force: true });
    if (leftovers.length) throw new Error(`sandbox ${this.dir} leaked:\n  ${[...new Set(leftovers)].join('\n  ')}`);
  }
}

/**
 * Creates a sandbox: a temp dir under /tmp with `run/` bound over /run and `etc-docker/` over
 * /etc/docker in a new private mount namespace. Throws when unshare/nsenter are unusable.
 */
export async function createSandbox(opts: SandboxOptions = {}): Promise<Sandbox> {
  const dir = fs.mkdtempSync(path.join('/tmp', opts.prefix ?? 'shoal-d-'));
  fs.chmodSync(dir, 0o755);
  for (const d of ['run', 'etc-docker', 'fifo']) fs.mkdirSync(path.join(dir, d), { recursive: true });
  const run = opts.runTmpfs ? 'mount -t tmpfs -o mode=0755 shoal-run /run; ' : 'mount --bind "$1/run" /run; ';
  const script =
    'set -e; ' + run +
    '[ -d /etc/docker ] || mkdir -p /etc/docker; mount --bind "$1/etc-docker" /etc/docker; ' +
    'echo ready; exec sleep infinity';
  // unshare without --fork execs sh (then sleep): the child's pid holds the namespace.
  const holder = spawn('unshare', ['-m', '--propagation', 'private', '--', 'sh', '-c', script, 'sh', dir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  holder.stdout!.on('data', (d) => (out += d));
  holder.stderr!.on('data', (d) => (err += d));
  const ready = await new Promise<boolean>((resolve) => {
    const t = setTimeout(() => resolve(false), 10_000);
    holder.on('error', (e) => {
      err += e.message;
      clearTimeout(t);
      resolve(false);
    });
    holder.on('exit', () => {
      clearTimeout(t);
      resolve(false);
    });
    holder.stdout!.on('data', () => {
      if (out.includes('ready')) {
        clearTimeout(t);
        resolve(true);
      }
    });
  });
  if (!ready) {
    holder.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`cannot create a private mount namespace: ${err.trim() || 'unshare did not become ready'}`);
  }
  holder.stdout!.destroy();
  holder.stderr!.destroy();
  const s = new Sandbox(dir, holder);
  liveSandboxes.add(s);
  return s;
}

/** Polls `fn` every 100 ms until it returns true; throws `what` after `timeoutMs`. */
async function waitUntil(what: () => string, fn: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(what());
    await sleep(100);
  }
}

/** Why a daemon cannot run on this machine (missing binaries, not root), or undefined when it can. */
export function cannotRun(binaries: string[]): string | undefined {
  if (process.getuid && process.getuid() !== 0) return 'not root';
  for (const b of ['unshare', 'nsenter', ...binaries]) {
    if (!which(b)) return `${b} not found on PATH (apt-get install containerd docker.io podman)`;
  }
  return undefined;
}

/** A running containerd; see `startContainerd`. */
export interface Containerd {
  /** The sandbox it runs in (shared with dockerd when one is started on it). */
  sandbox: Sandbox;
  /** Its gRPC socket (absolute path). */
  sock: string;
  /** The containerd namespace `ctr` uses (unique per process); containers' cgroups are `/<namespace>/<id>`. */
  namespace: string;
  /** Directory to pass as `ctr run --fifo-dir`. */
  fifoDir: string;
  /** Pid of containerd. */
  pid: number;
  /** The `containerd` it runs (for a restart): `containerd` on PATH, or `ContainerdOptions.bin`'s. */
  containerdPath: string;
  /** The `ctr` to run (in the sandbox): `ctr` on PATH, or the one beside `ContainerdOptions.bin`'s containerd. */
  ctrPath: string;
  /** Runs `ctr -a <sock> -n <namespace> ...args` in the sandbox. */
  ctr(args: string[], opts?: CmdOptions): CmdResult;
  /** Processes, mounts and cgroups now, for `sandbox.leaksSince`. */
  snapshot(): Snapshot;
  /** Stops dockerd (if any) and containerd, cleans up, throws if anything leaked. */
  stop(): Promise<void>;
}

/** Options of `startContainerd`. */
export interface ContainerdOptions {
  /** containerd namespace for ctr (default `shoal-<pid>`). */
  namespace?: string;
  /**
   * Directories put first on containerd's PATH, where it looks for `containerd-shim-<name>-v2`
   * binaries (e.g. build/Release for `ctr run --runtime io.containerd.shoal.v2`).
   */
  extraPath?: string[];
  /**
   * More environment for containerd (its shims inherit it). shoal's namespace shims get
   * SHOAL_SHIM_LINGER=0 unless given here: they end at Shutdown, so no test leaves a lingering
   * shim behind.
   */
  env?: NodeJS.ProcessEnv;
  /**
   * containerd's state (bundles, fifos) in /run/containerd on a tmpfs over /run, as on a production
   * host, instead of in the temp dir (see SandboxOptions.runTmpfs).
   */
  runTmpfs?: boolean;
  /** A directory holding the `containerd` and `ctr` to run (default: those on PATH, Debian's). */
  bin?: string;
}

/**
 * Starts containerd in a new sandbox with root, state, gRPC and ttrpc sockets in the temp dir, the
 * CRI plugin disabled, and waits until `ctr version` answers. Throws (with the log tail) when it
 * does not come up within 30 s. The cgroup parent `/<namespace>` is registered for leak checks.
 */
export async function startContainerd(opts: ContainerdOptions = {}): Promise<Containerd> {
  const sandbox = await createSandbox({ prefix: 'shoal-cd-', runTmpfs: opts.runTmpfs });
  try {
    const d = sandbox.dir;
    const sock = path.join(d, 'containerd.sock');
    const namespace = opts.namespace ?? `shoal-${process.pid}`;
    sandbox.addCgroupParent(`/${namespace}`);
    const config = [
      'version = 2',
      `root = "${d}/containerd/root"`,
      `state = "${opts.runTmpfs ? '/run/containerd' : `${d}/containerd/state`}"`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper"]',
      '[grpc]',
      `  address = "${sock}"`,
      '[ttrpc]',
      `  address = "${sock}.ttrpc"`,
      '[debug]',
      `  address = "${d}/containerd-debug.sock"`,
      '  level = "info"',
      '[metrics]',
      '  address = ""',
      '',
    ].join('\n');
    fs.writeFileSync(path.join(d, 'containerd.toml'), config);
    const env = {
      SHOAL_SHIM_LINGER: '0',
      ...(opts.extraPath?.length ? { PATH: [...opts.extraPath, process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'].join(':') } : {}),
      ...opts.env,
    };
    const containerdPath = opts.bin ? path.join(opts.bin, 'containerd') : 'containerd';
    const child = sandbox.spawnDaemon('containerd', containerdPath, ['--config', path.join(d, 'containerd.toml')], env);
    const ctrPath = opts.bin ? path.join(opts.bin, 'ctr') : 'ctr';
    const ctr = (args: string[], o?: CmdOptions) => sandbox.run(ctrPath, ['-a', sock, '-n', namespace, ...args], o);
    await waitUntil(
      () => `containerd did not start:\n${sandbox.logTail('containerd')}`,
      () => {
        if (child.exitCode !== null) throw new Error(`containerd exited ${child.exitCode}:\n${sandbox.logTail('containerd')}`);
        return fs.existsSync(sock) && ctr(['version'], { timeoutMs: 5000 }).code === 0;
      },
      30_000,
    );
    return {
      sandbox,
      sock,
      namespace,
      fifoDir: path.join(d, 'fifo'),
      pid: child.pid!,
      containerdPath,
      ctrPath,
      ctr,
      snapshot: () => sandbox.snapshot(),
      stop: () => sandbox.stop(),
    };
  } catch (e) {
    await sandbox.stop().catch(() => undefined);
    throw e;
  }
}

/** A running dockerd; see `startDockerd`. */
export interface Dockerd {
  /** The sandbox it shares with its containerd. */
  sandbox: Sandbox;
  /** The API socket (absolute path). */
  sock: string;
  /** Cgroup parent of its containers (`--cgroup-parent`): cgroups are `<parent>/<container id>`. */
  cgroupParent: string;
  /** Pid of dockerd. */
  pid: number;
  /** Runs `docker -H unix://<sock> ...args` in the sandbox. */
  docker(args: string[], opts?: CmdOptions): CmdResult;
  /** Argv that runs the docker client in the sandbox (for tmux and other wrappers). */
  dockerArgv(args: string[]): string[];
  /** Processes, mounts and cgroups now, for `sandbox.leaksSince`. */
  snapshot(): Snapshot;
  /** Stops dockerd only (containerd keeps running); throws if it leaves containers' processes. */
  stop(): Promise<void>;
}

/** Options of `startDockerd`. */
export interface DockerdOptions {
  /**
   * Extra runtimes, name -> absolute path (`--add-runtime`). Default: `shoal` = build/shoal.js
   * and `runc-ref` = Debian's runc. The built-in default runtime `runc` stays the default.
   */
  runtimes?: Record<string, string>;
  /** Cgroup parent of the containers (default `/shoal-docker-<pid>`, not docker's `/docker`). */
  cgroupParent?: string;
}

/**
 * Starts dockerd 20.10 on `containerd` (same sandbox) with data-root, exec-root, pidfile and API
 * socket in the temp dir, no networking changes on the host (no iptables, no bridge), overlay2,
 * and the runtimes of `opts`. Waits until `docker info` answers (60 s).
 */
export async function startDockerd(containerd: Containerd, opts: DockerdOptions = {}): Promise<Dockerd> {
  const sandbox = containerd.sandbox;
  const d = sandbox.dir;
  const sock = path.join(d, 'docker.sock');
  const cgroupParent = opts.cgroupParent ?? `/shoal-docker-${process.pid}`;
  sandbox.addCgroupParent(cgroupParent);
  const runtimes: Record<string, string> = opts.runtimes ?? {
    shoal: shoalExecutable(),
    ...(runcExecutable() ? { 'runc-ref': runcExecutable()! } : {}),
  };
  fs.writeFileSync(path.join(d, 'daemon.json'), '{}\n');
  const cliConfig = path.join(d, 'docker-cli');
  fs.mkdirSync(cliConfig, { recursive: true });
  const args = [
    '--config-file', path.join(d, 'daemon.json'),
    '--containerd', containerd.sock,
    '--data-root', path.join(d, 'docker-data'),
    '--exec-root', path.join(d, 'docker-exec'),
    '--pidfile', path.join(d, 'docker.pid'),
    '-H', `unix://${sock}`,
    '--iptables=false',
    '--ip6tables=false',
    '--ip-forward=false',
    '--ip-masq=false',
    '--bridge=none',
    '--storage-driver', 'overlay2',
    '--cgroup-parent', cgroupParent,
    '--exec-opt', 'native.cgroupdriver=cgroupfs',
    ...Object.entries(runtimes).flatMap(([n, p]) => ['--add-runtime', `${n}=${p}`]),
  ];
  const child = sandbox.spawnDaemon('dockerd', 'dockerd', args);
  const env = { DOCKER_CONFIG: cliConfig };
  const dockerArgv = (a: string[]) => ['docker', '-H', `unix://${sock}`, ...a];
  const docker = (a: string[], o: CmdOptions = {}) => {
    const [cmd, ...rest] = dockerArgv(a);
    return sandbox.run(cmd, rest, { ...o, env: { ...env, ...o.env } });
  };
  try {
    await waitUntil(
      () => `dockerd did not start:\n${sandbox.logTail('dockerd')}`,
      () => {
        if (child.exitCode !== null) throw new Error(`dockerd exited ${child.exitCode}:\n${sandbox.logTail('dockerd')}`);
        return fs.existsSync(sock) && docker(['info', '--format', '{{.ServerVersion}}'], { timeoutMs: 5000 }).code === 0;
      },
      60_000,
    );
  } catch (e) {
    await sandbox.stopDaemon(child);
    throw e;
  }
  return {
    sandbox,
    sock,
    cgroupParent,
    pid: child.pid!,
    docker,
    dockerArgv: (a) => [...sandbox.nsenterArgs(), 'env', `DOCKER_CONFIG=${cliConfig}`, ...dockerArgv(a)],
    snapshot: () => sandbox.snapshot(),
    stop: async () => {
      const left = docker(['ps', '-aq']).stdout.trim();
      if (left) docker(['rm', '-f', ...left.split(/\s+/)]);
      await sandbox.stopDaemon(child);
      if (left) throw new Error(`dockerd stopped with containers left: ${left.replace(/\s+/g, ' ')}`);
    },
  };
}

/** podman in its own sandbox; see `startPodman`. */
export interface Podman {
  /** The sandbox podman and conmon run in. */
  sandbox: Sandbox;
  /** Runtime passed as `--runtime` by default. */
  runtime: string;
  /** Cgroup parent given to `run`/`create`: containers' cgroups are `<parent>/libpod-<id>`. */
  cgroupParent: string;
  /** Runs `podman <isolating global flags> --runtime <runtime> ...args` in the sandbox. */
  podman(args: string[], opts?: CmdOptions & { runtime?: string }): CmdResult;
  /** Processes, mounts and cgroups now, for `sandbox.leaksSince`. */
  snapshot(): Snapshot;
  /** Removes every container, cleans up, throws if anything leaked. */
  stop(): Promise<void>;
}

/**
 * Prepares rootful podman 4.3 in a new sandbox: storage root, runroot, tmpdir, volumes and
 * network config in the temp dir, `--cgroup-manager cgroupfs`, `--events-backend file`, overlay
 * storage, and a containers.conf/storage.conf/registries.conf of its own (so the host's files are
 * not read). `run` and `create` get `--cgroup-parent /shoal-podman-<pid>-<dir>` (registered for leak
 * checks; conmon's cgroup lands in `<parent>/conmon`).
 * Default runtime: `runtime` (default: build/shoal.js). There is no daemon to wait for.
 */
export async function startPodman(runtime = shoalExecutable()): Promise<Podman> {
  const sandbox = await createSandbox({ prefix: 'shoal-pm-' });
  const d = sandbox.dir;
  // Containers go under a parent of their own (`run`/`create` get --cgroup-parent), not podman's
  // shared /libpod_parent, so concurrent test processes never see each other's cgroups.
  const cgroupParent = `/shoal-podman-${process.pid}-${path.basename(d)}`;
  sandbox.addCgroupParent(cgroupParent);
  // conmon's own cgroup (cgroupfs manager): podman creates it and never removes it.
  sandbox.expectedCgroups.push(`${cgroupParent}/conmon`);
  // containers/storage bind-mounts its overlay home privately and may keep it (e.g. after a failed
  // create, seen with runc too).
  sandbox.expectedMounts.push(`${d}/podman/root/overlay`);
  for (const sub of ['root', 'runroot', 'tmp', 'volumes', 'networks', 'conf']) fs.mkdirSync(path.join(d, 'podman', sub), { recursive: true });
  const conf = path.join(d, 'podman', 'conf');
  fs.writeFileSync(
    path.join(conf, 'containers.conf'),
    ['[containers]', 'netns = "none"',
      // Rootful podman raises RLIMIT_NOFILE to 1048576, above this host's hard limit (runc fails
      // with EPERM too): stay at values any host allows.
      'default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]', '[engine]', 'cgroup_manager = "cgroupfs"', 'events_logger = "file"',
      `tmp_dir = "${d}/podman/tmp"`, `volume_path = "${d}/podman/volumes"`, `static_dir = "${d}/podman/root/libpod"`,
      '[network]', `network_config_dir = "${d}/podman/networks"`, ''].join('\n'),
  );
  fs.writeFileSync(
    path.join(conf, 'storage.conf'),
    ['[storage]', 'driver = "overlay"', `runroot = "${d}/podman/runroot"`, `graphroot = "${d}/podman/root"`, ''].join('\n'),
  );
  fs.writeFileSync(path.join(conf, 'registries.conf'), 'unqualified-search-registries = []\n');
  fs.writeFileSync(path.join(conf, 'policy.json'), JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
  const env = {
    CONTAINERS_CONF: path.join(conf, 'containers.conf'),
    CONTAINERS_STORAGE_CONF: path.join(conf, 'storage.conf'),
    CONTAINERS_REGISTRIES_CONF: path.join(conf, 'registries.conf'),
  };
  const podman = (args: string[], o: CmdOptions & { runtime?: string } = {}) =>
    sandbox.run(
      'podman',
      [
        '--root', `${d}/podman/root`,
        '--runroot', `${d}/podman/runroot`,
        '--tmpdir', `${d}/podman/tmp`,
        '--storage-driver', 'overlay',
        '--cgroup-manager', 'cgroupfs',
        '--events-backend', 'file',
        '--network-config-dir', `${d}/podman/networks`,
        '--runtime', o.runtime ?? runtime,
        ...(args[0] === 'run' || args[0] === 'create' ? [args[0], '--cgroup-parent', cgroupParent, ...args.slice(1)] : args),
      ],
      { ...o, env: { ...env, ...o.env } },
    );
  const v = podman(['version', '--format', '{{.Client.Version}}'], { timeoutMs: 30_000 });
  if (v.code !== 0) {
    await sandbox.stop().catch(() => undefined);
    throw new Error(`podman does not work here: ${v.stderr.trim()}`);
  }
  return {
    sandbox,
    runtime,
    cgroupParent,
    podman,
    snapshot: () => sandbox.snapshot(),
    stop: async () => {
      const left = podman(['ps', '-aq']).stdout.trim();
      if (left) podman(['rm', '-f', '-t', '0', ...left.split(/\s+/)]);
      await sandbox.stop();
      if (left) throw new Error(`podman stopped with containers left: ${left.replace(/\s+/g, ' ')}`);
    },
  };
}

/** Prints uvu-style skip lines for a test that cannot run, and returns true (so tests can `return skip(...)`). */
export function skip(reason: string): true {
  console.log(`  # skip: ${reason}`);
  return true;
}

/** Quotes `argv` for `sh -c` (single quotes, embedded quotes escaped). */
export function shellQuote(argv: string[]): string {
  return argv.map((a) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/**
 * Runs `argv` (a full command line, e.g. from `Dockerd.dockerArgv`) with a pseudo-terminal as its
 * stdin/stdout/stderr, through util-linux `script`, and returns its exit code and output (the pty
 * output, CRLF line ends turned into LF, NUL bytes dropped). For `docker exec -t`, `ctr t exec -t` and the like.
 */
export function runInPty(argv: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): CmdResult {
  const r = spawnSync('script', ['-qefc', shellQuote(argv), '/dev/null'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    encoding: 'utf8',
    env: { ...process.env, ...opts.env },
    timeout: opts.timeoutMs ?? 60_000,
    killSignal: 'SIGKILL',
  });
  return {
    code: r.error || r.status === null ? -1 : r.status,
    signal: r.signal,
    // `script` passes a NUL on to the session (seen with runc too): the container's terminal
    // echoes it as "^@" (or it arrives raw), anywhere in the output. Those go first, then line
    // ends are normalized.
    stdout: (r.stdout ?? '').replace(/\0|\^@/g, '').replace(/\r\n/g, '\n'),
    stderr: (r.stderr ?? '') + (r.error ? `\n[runInPty] ${r.error.message}` : ''),
  };
}

/**
 * An interactive terminal session in a private tmux server (its own socket, 120x30), for tests
 * that type into `docker run -it` and read the screen. End it with `kill`.
 *
 * The command runs under `sh`, which records its exit status in a file: tmux itself sometimes
 * leaves its dead child unreaped under load (pane never marked dead), so the pane state is not
 * used to detect the exit.
 */
export class TmuxSession {
  /** The tmux server socket. */
  readonly socket: string;
  /** Session name. */
  readonly name = 'shoal';
  /** File the wrapper shell writes the command's exit status to. */
  private statusFile: string;

  /** Starts `argv` in a new detached session. */
  constructor(argv: string[], socketDir: string) {
    const base = path.join(socketDir, `tmux-${process.pid}-${Date.now()}`);
    this.socket = `${base}.sock`;
    this.statusFile = `${base}.status`;
    const wrapped = ['sh', '-c', `"$@"; echo $? > ${shellQuote([this.statusFile])}.tmp && mv ${shellQuote([this.statusFile])}.tmp ${shellQuote([this.statusFile])}; sleep 3600`, 'sh', ...argv];
    const r = this.tmux(['new-session', '-d', '-x', '120', '-y', '30', '-s', this.name, shellQuote(wrapped)]);
    if (r.status !== 0) throw new Error(`tmux new-session failed: ${r.stderr}`);
  }

  private tmux(args: string[]) {
    return spawnSync('tmux', ['-S', this.socket, ...args], { encoding: 'utf8', timeout: 10_000 });
  }

  /** The visible screen plus scrollback, as text. */
  capture(): string {
    return this.tmux(['capture-pane', '-p', '-J', '-S', '-200', '-t', this.name]).stdout ?? '';
  }

  /** Types `text` literally (no Enter). */
  type(text: string): void {
    this.tmux(['send-keys', '-t', this.name, '-l', text]);
  }

  /** Sends tmux key names (e.g. `Enter`, `C-c`, `C-d`). */
  keys(...names: string[]): void {
    this.tmux(['send-keys', '-t', this.name, ...names]);
  }

  /** Whether the command has exited. */
  exited(): boolean {
    return fs.existsSync(this.statusFile);
  }

  /** The exit status of the command once it exited (128+N when killed by signal N), else undefined. */
  exitStatus(): number | undefined {
    try {
      return Number(fs.readFileSync(this.statusFile, 'utf8').trim());
    } catch {
      return undefined;
    }
  }

  /** Waits until the screen matches `re`; throws with the screen after `timeoutMs`. */
  async waitFor(re: RegExp, timeoutMs = 20_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const screen = this.capture();
      if (re.test(screen)) return screen;
      if (Date.now() > deadline) throw new Error(`terminal never showed ${re}; screen:\n${screen}`);
      await sleep(100);
    }
  }

  /** Kills the tmux server (and with it the command) and removes its files. */
  kill(): void {
    this.tmux(['kill-server']);
    for (const f of [this.socket, this.statusFile]) fs.rmSync(f, { force: true });
  }
}
