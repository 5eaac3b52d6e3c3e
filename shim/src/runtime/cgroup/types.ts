import type { LinuxResources } from '../../../../spec/src/config';

/** Where the cgroup hierarchy lives on this host. */
export type CgroupMode = 'v2' | 'hybrid' | 'v1';

/**
 * A container's cgroup, created from config.json (linux.cgroupsPath + linux.resources).
 * Serializable: `toJSON()` is stored in the container state so any later shoal process
 * (kill, delete, pause, update, events) can reopen it with `CgroupManager.load()`.
 */
export interface CgroupHandle {
  /** "v2" | "hybrid" | "v1". */
  readonly mode: CgroupMode;
  /** The cgroup path relative to each hierarchy root, e.g. "/shoal/abc" or "/user.slice/x". */
  readonly path: string;
  /** The cgroup.procs file of each hierarchy (one per v1 hierarchy, one on v2): where the init joins. */
  procsFiles(): string[];
  /** The cgroup.procs file of the cgroup2 hierarchy, when the cgroup has one (v2, hybrid). */
  cgroup2ProcsFile(): string | undefined;
  /** Absolute host directories of this cgroup (for cleanup and tests). */
  dirs(): string[];
  /** pids currently in the cgroup (all hierarchies merged). */
  pids(): number[];
  /** Freeze or thaw; resolves when the kernel reports the state reached. */
  setFrozen(frozen: boolean): Promise<void>;
  /** Whether the cgroup is frozen now. */
  isFrozen(): boolean;
  /** Apply resources (update). Errors name the file and the reason. */
  apply(resources: LinuxResources): void;
  /**
   * Send `signal` to every process in the cgroup (nested ones included). SIGKILL uses the
   * atomic cgroup.kill when the host has it (v2, or the unified hierarchy of a hybrid host).
   */
  killAll(signal: number): Promise<void>;
  /**
   * Absolute directory holding `controller`'s files ("memory", "cpu", "cpuacct", "blkio", "pids",
   * "hugetlb", ...), or undefined when that controller is not available to this cgroup.
   */
  controllerDir(controller: string): string | undefined;
  /** Kill every process in it (SIGKILL), then remove all dirs, retrying on EBUSY. */
  destroy(): Promise<void>;
  /** The serializable form stored in the container state (see CgroupJSON in handle.ts). */
  toJSON(): { mode: CgroupMode; path: string };
}
