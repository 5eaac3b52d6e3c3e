/*
 * What v1 and v2 cgroups share: the per-hierarchy directories, procs files, pid listing,
 * resource writes, destroy (kill everything, then rmdir depth-first retrying EBUSY) and the
 * JSON form stored in the container state.
 */
import * as path from 'path';
import type { LinuxResources } from '../../../../spec/src/config';
import { LEGACY_PARENT } from './path';
import { ShoalError } from '../errors';
import type { CgroupHandle, CgroupMode } from './types';
import type { Hierarchy } from './detect';
import { native } from '../../native';
import { Errno } from '../errno';
import type { CgroupWrite } from './controllers/index';
import { normalizeDeviceRule, type DeviceRule } from './controllers/devices';
import { childDirs, mkdirp, parsePids, readIfExists, removeCgroupTree, rmdirQuiet, writeCgroupFile, writeCgroupValues } from './fsutil';

/** How long destroy() keeps killing, and then keeps retrying rmdir on EBUSY. */
export const DESTROY_TIMEOUT_MS = 2000;

/** The stored form of a cgroup handle (the container state keeps it verbatim). */
export interface CgroupJSON {
  mode: CgroupMode;
  /** Path inside every hierarchy, except those listed in `paths`. */
  path: string;
  /** Hierarchy key ("memory", "name=systemd", "" = unified) → path, where it differs from `path`. */
  paths?: Record<string, string>;
  /**
   * Device allow rules of the config's linux.devices (runc allows every device the container
   * creates); present when the creator passed them, and then device rules are always enforced.
   */
  devices?: DeviceRule[];
}

/** The container's directory in one hierarchy. */
export interface CgroupDir {
  hierarchy: Hierarchy;
  /** Path inside the hierarchy, e.g. "/abc". */
  path: string;
  /** Absolute host directory, e.g. "/sys/fs/cgroup/memory/abc". */
  dir: string;
}

/**
 * Run a controller's writes in `dir`: an absent file (ENOENT) is skipped when optional or
 * replaced by its fallback; EINVAL on a retryAfter write is retried after the others.
 */
export function applyWrites(dir: string, writes: CgroupWrite[]): void {
  const deferred: CgroupWrite[] = [];
  const plain = (w: CgroupWrite) => !w.optional && !w.fallback && !w.retryAfter;
  for (let i = 0; i < writes.length; i++) {
    const w = writes[i];
    // A plain write, and the plain ones to the same file after it (the device rules), go through
    // one descriptor.
    if (plain(w)) {
      const values = [w.value];
      while (i + 1 < writes.length && writes[i + 1].file === w.file && plain(writes[i + 1])) values.push(writes[++i].value);
      writeCgroupValues(path.join(dir, w.file), values);
      continue;
    }
    try {
      writeCgroupFile(path.join(dir, w.file), w.value);
    } catch (err) {
      const errno = err instanceof ShoalError ? err.info.errno : undefined;
      if (w.optional && errno === 'ENOENT') continue;
      if (w.fallback && errno === 'ENOENT') {
        try {
          applyWrites(dir, [w.fallback]);
        } catch (e) {
          if (!w.setting || !(e instanceof ShoalError) || e.info.errno !== 'ENOENT') throw e;
          throw new ShoalError('CGROUP', `${w.setting}: this kernel has neither ${w.file} nor ${w.fallback.file}`, { errno: 'ENOENT', path: path.join(dir, w.file) });
        }
        continue;
      }
      if (w.retryAfter && errno === 'EINVAL') deferred.push(w);
      else throw err;
    }
  }
  for (const w of deferred) writeCgroupFile(path.join(dir, w.file), w.value);
}

/** Send SIGKILL to each pid (never to ourselves); vanished processes are fine. */
export function killPids(pids: Iterable<number>): void {
  for (const pid of pids) {
    if (pid === process.pid) continue;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* ESRCH: already gone */
    }
  }
}

/** Common part of the v1/hybrid and v2 handles. */
export abstract class BaseCgroup implements CgroupHandle {
  /**
   * @param mode host mode the handle was built for
   * @param path primary path (the unified one when present, else the first hierarchy's)
   * @param entries one directory per joined hierarchy
   */
  constructor(readonly mode: CgroupMode, readonly path: string, protected readonly entries: CgroupDir[]) {}

  /** linux.devices allow rules (see CgroupJSON.devices); undefined when not given. */
  configDevices: DeviceRule[] | undefined;

  /** The directories createFirst made (the cgroup2 one and parents), once it ran. */
  private early: string[] | null = null;
  /** Directories this handle's create made: nothing in them was set before (no list to read back). */
  protected fresh: ReadonlySet<string> = new Set();

  /** Set configDevices from stored or caller-provided rules (validated). */
  setConfigDevices(rules: DeviceRule[] | undefined): void {
    this.configDevices = rules?.map((r) => normalizeDeviceRule(r));
  }

  /** Whether device rules must be (re)applied for `resources`. */
  protected wantsDevices(resources: LinuxResources): boolean {
    return resources.devices !== undefined || this.configDevices !== undefined;
  }

  cgroup2ProcsFile(): string | undefined {
    const e = this.entries.find((x) => x.hierarchy.version === 2);
    return e && path.join(e.dir, 'cgroup.procs');
  }

  /**
   * Make the cgroup2 directory ahead of the rest (create's init is cloned into it, while
   * `create` makes the others and applies the limits). Refuses, before making anything, a cgroup
   * that exists with processes in it, as create does; after that, whatever create later fails
   * on is the caller's to remove. Without a cgroup2 hierarchy it only checks.
   */
  createFirst(): void {
    this.refuseBusy();
    const e = this.entries.find((x) => x.hierarchy.version === 2);
    this.early = e ? mkdirp(e.dir).created : [];
  }

  /** Reusing an existing cgroup is fine (runc does) unless something already runs in it. */
  private refuseBusy(): void {
    const first = this.entries[0].dir;
    if (parsePids(readIfExists(path.join(first, 'cgroup.procs'))).length > 0) {
      throw new ShoalError('CGROUP', `cgroup ${first} already exists and is not empty`, { path: first });
    }
  }

  /** The cgroup.procs file of each hierarchy: where the init joins (the helper picks how). */
  procsFiles(): string[] {
    return this.entries.map((e) => path.join(e.dir, 'cgroup.procs'));
  }

  /** Absolute directories of this cgroup, one per hierarchy. */
  dirs(): string[] {
    return this.entries.map((e) => e.dir);
  }

  /** Pids in the cgroup or any nested child cgroup, merged over the hierarchies of `pidSources()`. */
  pids(): number[] {
    const seen = new Set<number>();
    const walk = (dir: string): void => {
      for (const p of parsePids(readIfExists(path.join(dir, 'cgroup.procs')))) seen.add(p);
      for (const child of childDirs(dir)) walk(child);
    };
    for (const e of this.pidSources()) walk(e.dir);
    return [...seen].sort((a, b) => a - b);
  }

  /** Hierarchies pids() reads (v2: the unified one; v1: all, as processes may have moved). */
  protected pidSources(): CgroupDir[] {
    return this.entries;
  }

  abstract setFrozen(frozen: boolean): Promise<void>;
  abstract isFrozen(): boolean;
  abstract apply(resources: LinuxResources): void;
  abstract controllerDir(controller: string): string | undefined;

  /** Kill every process of the cgroup (implementation: v1 freeze-kill-thaw, v2 cgroup.kill). */
  protected abstract killEverything(deadline: number): Promise<void>;

  /** The cgroup.kill file to use for SIGKILL, if the host has one for this cgroup. */
  protected abstract killFile(): string | undefined;

  /**
   * Signal every process (kill --all). SIGKILL goes through cgroup.kill when there is one (atomic,
   * covers nested cgroups and processes forked meanwhile); otherwise, or if that write fails, each
   * listed pid is signalled. Vanished processes are fine.
   */
  async killAll(signal: number): Promise<void> {
    const file = signal === 9 ? this.killFile() : undefined;
    if (file) {
      try {
        writeCgroupFile(file, '1');
        return;
      } catch {
        /* kernel < 5.14: fall back to the pid list */
      }
    }
    for (const pid of this.pids()) {
      if (pid === process.pid) continue;
      try {
        process.kill(pid, signal);
      } catch {
        /* exited meanwhile */
      }
    }
  }

  /** Per-version setup of freshly made directories (cpuset inheritance, subtree_control). */
  protected abstract prepare(created: string[], resources: LinuxResources | undefined): void;

  /**
   * Make the directories (then `onDirs`), prepare them and apply `resources`. On any failure,
   * removes the directories it made and rethrows (a ShoalError naming the file and errno).
   */
  create(resources: LinuxResources | undefined, onDirs?: () => void): void {
    const created: string[] = [...(this.early ?? [])];
    try {
      let firstExisted = false;
      this.entries.forEach((e, i) => {
        if (this.early && e.hierarchy.version === 2) return; // made by createFirst
        const r = mkdirp(e.dir);
        created.push(...r.created);
        if (i === 0) firstExisted = r.existedLeaf;
      });
      // (after createFirst, which checked, the init may be in the cgroup already)
      if (firstExisted && !this.early) this.refuseBusy();
      this.fresh = new Set(created);
      onDirs?.();
      this.prepare(created, resources);
      // Device rules are enforced even without linux.resources once the creator passed linux.devices.
      if (resources || this.configDevices) this.apply(resources ?? {});
    } catch (err) {
      rmdirQuiet(created);
      throw err;
    }
  }

  /**
   * SIGKILL everything in the cgroup, then remove its directories (nested children first),
   * retrying EBUSY for up to DESTROY_TIMEOUT_MS. Idempotent: missing directories are fine.
   */
  async destroy(): Promise<void> {
    // Usually the init is gone and nothing is left: one rmdir per hierarchy is the whole job.
    // A cgroup with a process or a child cgroup anywhere below refuses (EBUSY), in every
    // hierarchy the process is in, so the slow path below still finds whatever is left.
    if (!this.removeIfEmpty()) {
      await this.killEverything(Date.now() + DESTROY_TIMEOUT_MS);
      const deadline = Date.now() + DESTROY_TIMEOUT_MS;
      for (const e of this.entries) await removeCgroupTree(e.dir, deadline);
    }
    // The old default parent (/shoal) is ours too: remove it once its last container is gone, so
    // a host without containers shows no trace of shoal. A racing create retries its mkdir.
    // (other containers still there, or already gone: it stays as it is)
    for (const e of this.entries) if (path.posix.dirname(e.path) === LEGACY_PARENT) native().rmdirErrno(path.dirname(e.dir));
  }

  /** rmdir of every hierarchy's directory; whether all are gone (missing ones count as gone). */
  private removeIfEmpty(): boolean {
    let all = true;
    for (const e of this.entries) {
      const err = native().rmdirErrno(e.dir);
      if (err !== 0 && err !== Errno.ENOENT) all = false;
    }
    return all;
  }

  /** The JSON stored in the container state; loadCgroup() reopens it. */
  toJSON(): CgroupJSON {
    const paths: Record<string, string> = {};
    let differs = false;
    for (const e of this.entries) {
      if (e.path !== this.path) {
        paths[e.hierarchy.key] = e.path;
        differs = true;
      }
    }
    const out: CgroupJSON = differs ? { mode: this.mode, path: this.path, paths } : { mode: this.mode, path: this.path };
    if (this.configDevices) out.devices = this.configDevices;
    return out;
  }
}
