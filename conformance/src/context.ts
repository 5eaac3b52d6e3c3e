/**
 * The per-case toolbox: unique container ids, bundles in a private temp dir, running the probe
 * in a container and parsing its JSON, and cleanup that always runs (delete --force of every
 * container the case made, removal of cgroups it named, deferred callbacks, the temp dir).
 */
import * as fs from 'fs';
import * as path from 'path';
import { Bundle, Config, defaultConfig, writeBundle } from './bundle';
import { HostInfo, removeCgroup } from './host';
import { CmdResult, Runtime, readText, sleep } from './runtime';
import { CaseFailure } from './tap';

/** One conformance case. */
export interface Case {
  /** Unique name, `area: what` (used in TAP output and known-failures lists). */
  name: string;
  /** Extra words matched by --filter (e.g. 'cgroup'). */
  tags?: string[];
  /** Performs the case: return to pass, throw CaseFailure to fail, CaseSkip to skip. */
  run(ctx: CaseContext): Promise<void>;
}

/** The parsed JSON the probe prints (see native/probe/probe.c). */
export type Probe = Record<string, any> & {
  checks: Array<Record<string, any>>;
  mounts: Array<Record<string, any>>;
  namespaces: Record<string, number>;
  status: Record<string, string>;
  dev: Record<string, Record<string, any>>;
};

/** Shared, per-run inputs of every case. */
export interface RunEnv {
  rt: Runtime;
  host: HostInfo;
  /** Base busybox rootfs with /probe. */
  baseRootfs: string;
  /** The probe binary on the host (also usable as the console receiver). */
  probeBin: string;
  /** Parent dir of all case dirs. */
  workDir: string;
  /** Short random tag making container ids unique per run. */
  tag: string;
  /** Keep case dirs after the run. */
  keep: boolean;
}

let caseSeq = 0;

/** Per-case helper; constructed by the runner, cleaned up by it in a finally block. */
export class CaseContext {
  readonly rt: Runtime;
  readonly host: HostInfo;
  /** Private temp dir of this case. */
  readonly dir: string;
  private ids: string[] = [];
  private cgroups: string[] = [];
  private deferred: Array<() => unknown> = [];
  private pids: Array<{ pid: number; start: string }> = [];
  private idSeq = 0;
  private bundleSeq = 0;
  private readonly caseNo: number;

  constructor(readonly env: RunEnv, readonly caseName: string) {
    this.rt = env.rt;
    this.host = env.host;
    this.caseNo = ++caseSeq;
    this.dir = path.join(env.workDir, `case${this.caseNo}`);
    fs.mkdirSync(this.dir, { recursive: true });
    fs.chmodSync(this.dir, 0o755);
  }

  /** A fresh container id `conf-<run>-<case>-<n>`, registered for cleanup. */
  newId(): string {
    const id = `conf-${this.env.tag}-${this.caseNo}-${++this.idSeq}`;
    this.ids.push(id);
    return id;
  }

  /** Registers a cgroup path (as written in cgroupsPath) to rmdir during cleanup. */
  trackCgroup(p: string): void {
    this.cgroups.push(p);
  }

  /** Registers a callback for cleanup (run in reverse order, errors ignored). */
  defer(fn: () => unknown): void {
    this.deferred.push(fn);
  }

  /** Path of a new file/dir name inside the case dir. */
  file(name: string): string {
    return path.join(this.dir, name);
  }

  /**
   * Writes a bundle named `name` from the default config after `mutate` edits it; `mutate` also
   * gets the bundle dir (already created) to place files a config refers to.
   */
  bundle(mutate: (c: Config, dir: string) => void = () => {}, name = `bundle${++this.bundleSeq}`): Bundle {
    const c = defaultConfig();
    const dir = path.join(this.dir, name);
    fs.mkdirSync(dir, { recursive: true });
    mutate(c, dir);
    return writeBundle(dir, this.env.baseRootfs, c);
  }

  /**
   * Runs `/probe ...probeArgs` (unless `mutate` sets other args) with `run`, and returns the
   * parsed probe JSON. Fails the case when the runtime fails or the probe prints nothing.
   */
  async probe(mutate: (c: Config, dir: string) => void = () => {}, probeArgs: string[] = []): Promise<Probe> {
    const { probe } = await this.runProbe(mutate, probeArgs);
    return probe;
  }

  /** Like {@link probe} but also returns the run result and bundle. */
  async runProbe(mutate: (c: Config, dir: string) => void, probeArgs: string[] = []): Promise<{ probe: Probe; result: CmdResult; bundle: Bundle }> {
    const b = this.bundle((c, dir) => {
      c.process!.args = ['/probe', ...probeArgs];
      mutate(c, dir);
    });
    const id = this.newId();
    const result = await this.rt.run(id, b.dir);
    if (result.code !== 0) {
      throw new CaseFailure(`runtime run exited ${result.code}`, { command: result.args.join(' '), stderr: result.stderr.slice(-2000) });
    }
    return { probe: parseProbe(result.stdout, result), result, bundle: b };
  }

  /**
   * Creates (but does not start) a container from `mutate`d default config running
   * `sleep 600`; returns its id, pid and bundle. Fails the case if create fails.
   */
  async createSleeper(mutate: (c: Config) => void = () => {}, args = ['sleep', '600']): Promise<{ id: string; pid: number; bundle: Bundle; result: CmdResult }> {
    const b = this.bundle((c) => {
      c.process!.args = args;
      mutate(c);
    });
    const id = this.newId();
    const pidFile = this.file(`${id}.pid`);
    const result = await this.rt.create(id, b.dir, { pidFile });
    if (result.code !== 0) {
      throw new CaseFailure(`runtime create exited ${result.code}`, { command: result.args.join(' '), stderr: result.stderr.slice(-2000) });
    }
    const pid = parseInt(readText(pidFile), 10);
    if (!(pid > 0)) throw new CaseFailure('create wrote no pid to --pid-file', { pidFile: readText(pidFile) });
    this.pids.push({ pid, start: startTime(pid) });
    return { id, pid, bundle: b, result };
  }

  /** Deletes every container of this case, removes its cgroups and (unless --keep) its dir. */
  async cleanup(): Promise<void> {
    for (const fn of this.deferred.reverse()) {
      try {
        await fn();
      } catch {
        /* best effort */
      }
    }
    for (const id of this.ids) {
      const st = await this.rt.state(id);
      if (st) {
        if (st.status === 'running' || st.status === 'created' || st.status === 'paused') await this.rt.kill(id, 'KILL');
        await this.rt.delete(id, true);
        const left = await this.rt.state(id);
        if (left && left.pid && left.pid > 0) {
          try {
            process.kill(left.pid, 'SIGKILL');
          } catch {
            /* gone */
          }
          await sleep(200);
          await this.rt.delete(id, true);
        }
      }
    }
    // Last resort when the runtime under test lost track of a container: kill the processes
    // this case created, identified by pid AND start time so a reused pid is never hit.
    for (const { pid, start } of this.pids) {
      if (start && startTime(pid) === start) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
    for (const cg of this.cgroups) removeCgroup(this.host, cg);
    if (!this.env.keep) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Start time of `pid` (field 22 of /proc/<pid>/stat), or '' when it is gone. */
function startTime(pid: number): string {
  const stat = readText(`/proc/${pid}/stat`);
  return stat ? stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '' : '';
}

/** Extracts the probe's JSON object from a container's stdout (the last line that parses). */
export function parseProbe(stdout: string, result?: CmdResult): Probe {
  const lines = stdout.replace(/\r/g, '').split('\n').filter((l) => l.startsWith('{'));
  for (let i = lines.length - 1; i >= 0; i--) {
    try {
      return JSON.parse(lines[i]) as Probe;
    } catch {
      /* try the previous line */
    }
  }
  throw new CaseFailure('probe printed no JSON', { stdout: stdout.slice(-2000), stderr: result?.stderr.slice(-2000) });
}

/** Finds the probe's result for check `op` on `path`. */
export function checkOf(p: Probe, op: string, file: string): Record<string, any> {
  const c = p.checks.find((x) => x.op === op && x.path === file);
  if (!c) throw new CaseFailure(`probe has no ${op} result for ${file}`);
  return c;
}

/** Finds the (last, i.e. topmost) mount at `dest` in the probe's mount table. */
export function mountAt(p: Probe, dest: string): Record<string, any> | undefined {
  const ms = p.mounts.filter((m) => m.destination === dest);
  return ms[ms.length - 1];
}

/** Bitmask (as bigint) of capability names, e.g. CAP_CHOWN -> 1n << 0n. */
export function capMask(names: string[]): bigint {
  let m = 0n;
  for (const n of names) {
    const i = CAP_NAMES.indexOf(n.toUpperCase().replace(/^CAP_/, ''));
    if (i < 0) throw new Error(`unknown capability ${n}`);
    m |= 1n << BigInt(i);
  }
  return m;
}

/** Capability names by bit number (linux/capability.h). */
export const CAP_NAMES = [
  'CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID',
  'SETPCAP', 'LINUX_IMMUTABLE', 'NET_BIND_SERVICE', 'NET_BROADCAST', 'NET_ADMIN', 'NET_RAW',
  'IPC_LOCK', 'IPC_OWNER', 'SYS_MODULE', 'SYS_RAWIO', 'SYS_CHROOT', 'SYS_PTRACE', 'SYS_PACCT',
  'SYS_ADMIN', 'SYS_BOOT', 'SYS_NICE', 'SYS_RESOURCE', 'SYS_TIME', 'SYS_TTY_CONFIG', 'MKNOD',
  'LEASE', 'AUDIT_WRITE', 'AUDIT_CONTROL', 'SETFCAP', 'MAC_OVERRIDE', 'MAC_ADMIN', 'SYSLOG',
  'WAKE_ALARM', 'BLOCK_SUSPEND', 'AUDIT_READ', 'PERFMON', 'BPF', 'CHECKPOINT_RESTORE',
];
