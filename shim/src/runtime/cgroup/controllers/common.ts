/*
 * Types shared by the controller modules (kept free of runtime imports so the controller
 * modules and index.ts can import it without an import cycle).
 */
import type { LinuxResources } from '../../../../../spec/src/config';

/** One write to a cgroup interface file of the controller's directory. */
export interface CgroupWrite {
  /** File name inside the cgroup directory, e.g. "memory.max". */
  file: string;
  /** Exact text written with one write(2). */
  value: string;
  /** ENOENT means the kernel lacks this optional feature here (e.g. swap accounting): skip it. */
  optional?: boolean;
  /**
   * On EINVAL, retry once after the controller's later writes (the kernel may reject a new
   * cpu period until the new quota is in place).
   */
  retryAfter?: boolean;
  /** Written instead when `file` does not exist (ENOENT), e.g. blkio.bfq.weight for blkio.weight. */
  fallback?: CgroupWrite;
  /** What the setting is, for the error when neither `file` nor its fallback exists here. */
  setting?: string;
}

/** Reads a file of the controller's current cgroup directory; undefined if absent. */
export type FileReader = (file: string) => string | undefined;

/** A resource controller: its names and its resources → writes conversions. */
export interface Controller {
  /** v1 controller (hierarchy) name, e.g. "memory". */
  readonly name: string;
  /** v2 controller to enable in cgroup.subtree_control, e.g. "memory"; "" when v2 has none. */
  readonly v2Name: string;
  /** Whether `r` asks for anything this controller handles. */
  isSet(r: LinuxResources): boolean;
  /** Writes for a v1 hierarchy, in order. `read` (updates only) gives current values. */
  v1Writes(r: LinuxResources, read?: FileReader): CgroupWrite[];
  /**
   * Writes for the unified hierarchy, in order. Throws ShoalError for settings v2 lacks.
   * `read` gives current values of the container's directory.
   */
  v2Writes(r: LinuxResources, read?: FileReader): CgroupWrite[];
}

/** Treat an OCI optional number as unset when absent or 0 (runc's convention). */
export function isNonZero(n: number | undefined | null): n is number {
  return typeof n === 'number' && n !== 0;
}
