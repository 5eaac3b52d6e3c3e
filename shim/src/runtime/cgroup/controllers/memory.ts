/*
 * memory controller.
 *   OCI field         v1 file                          v2 file
 *   limit             memory.limit_in_bytes (-1)       memory.max ("max")
 *   swap              memory.memsw.limit_in_bytes      memory.swap.max = swap - limit
 *                     (memory+swap total)              (swap alone)
 *   reservation       memory.soft_limit_in_bytes       memory.low
 *   kernel            memory.kmem.limit_in_bytes       (none: ignored, memory.max covers it)
 *   kernelTCP         memory.kmem.tcp.limit_in_bytes   (none: ignored, memory.max covers it)
 *   swappiness        memory.swappiness                (none: ignored on v2, as runc)
 *   disableOOMKiller  memory.oom_control = 1           (none: ignored on v2, as runc)
 *   useHierarchy      memory.use_hierarchy = 1|0       (none: always hierarchical)
 *   checkBeforeUpdate a new limit below memory.usage_in_bytes (v1) / memory.current (v2) is refused
 * 0 means "not set" for the numeric fields (runc's convention); -1 means unlimited.
 */
import type { LinuxMemory, LinuxResources } from '../../../../../spec/src/config';
import { ShoalError } from '../../errors';
import { isNonZero, type Controller, type CgroupWrite, type FileReader } from './common';

/** v1 text of a memory amount: negative → "-1" (unlimited), else the byte count. */
export function memoryV1Value(n: number): string {
  return n < 0 ? '-1' : String(n);
}

/** v2 text of a memory amount: negative → "max", else the byte count. */
export function memoryV2Value(n: number): string {
  return n < 0 ? 'max' : String(n);
}

/**
 * memory.swap.max for OCI memory.swap (memory+swap total, as on v1) and memory.limit, as runc
 * converts it: swap -1 → "max"; unset swap with unlimited memory → "max"; otherwise swap - limit.
 * Returns undefined when nothing should be written. Throws INVALID_CONFIG for inconsistent values.
 */
export function memorySwapV2Value(swap: number | undefined, limit: number | undefined): string | undefined {
  const s = swap ?? 0;
  const l = limit ?? 0;
  if (l === -1 && s === 0) return 'max';
  if (s === -1) return 'max';
  if (s === 0) return undefined;
  if (l === 0 || l === -1) {
    throw new ShoalError('INVALID_CONFIG', 'memory.swap.max: unable to set a swap limit without a memory limit');
  }
  if (l < 0 || s < 0) throw new ShoalError('INVALID_CONFIG', `memory.swap.max: invalid memory value ${l < 0 ? l : s}`);
  if (s < l) {
    throw new ShoalError('INVALID_CONFIG', `memory.swap.max: memory+swap limit (${s}) should be >= memory limit (${l})`);
  }
  return String(s - l);
}

/** Parse a v1 byte count that may exceed 2^53 (the "unlimited" 9223372036854771712). */
function toBig(text: string | undefined): bigint | undefined {
  if (text === undefined || !/^-?\d+$/.test(text.trim())) return undefined;
  return BigInt(text.trim());
}

/**
 * checkBeforeUpdate: throw CGROUP when the new positive `limit` is below the current usage
 * (read from `usageFile`), naming both numbers, as runc does. No-op without a reader.
 */
export function checkLimitAgainstUsage(m: LinuxMemory, read: FileReader | undefined, limitFile: string, usageFile: string): void {
  if (!m.checkBeforeUpdate || !read || !isNonZero(m.limit) || m.limit < 0) return;
  const usage = toBig(read(usageFile));
  if (usage !== undefined && usage > BigInt(m.limit)) {
    throw new ShoalError(
      'CGROUP',
      `${limitFile}: rejecting memory limit ${m.limit} below the current usage ${usage} (${usageFile}; checkBeforeUpdate is set)`,
      { path: limitFile },
    );
  }
}

function v1Writes(r: LinuxResources, read?: FileReader): CgroupWrite[] {
  const m = r.memory;
  if (!m) return [];
  checkLimitAgainstUsage(m, read, 'memory.limit_in_bytes', 'memory.usage_in_bytes');
  const out: CgroupWrite[] = [];
  // use_hierarchy must be set before any limit (the kernel refuses it once children exist).
  if (typeof m.useHierarchy === 'boolean') out.push({ file: 'memory.use_hierarchy', value: m.useHierarchy ? '1' : '0' });
  const limit = isNonZero(m.limit) ? { file: 'memory.limit_in_bytes', value: memoryV1Value(m.limit) } : undefined;
  // memsw is absent without swap accounting (swapaccount=0): then the swap limit is skipped.
  const swap = isNonZero(m.swap) ? { file: 'memory.memsw.limit_in_bytes', value: memoryV1Value(m.swap), optional: true } : undefined;
  if (limit && swap) {
    // The kernel requires memory <= memory+swap at every step. Raising the limit (or making swap
    // unlimited) needs memsw written first; lowering needs the limit first. A fresh cgroup is
    // unlimited, so without a known current value the limit goes first.
    const current = read ? toBig(read('memory.limit_in_bytes')) : undefined;
    const raising = m.swap === -1 || m.limit! < 0 || (current !== undefined && BigInt(m.limit!) > current);
    if (raising) out.push(swap, limit);
    else out.push(limit, swap);
  } else if (limit) out.push(limit);
  else if (swap) out.push(swap);
  if (isNonZero(m.reservation)) out.push({ file: 'memory.soft_limit_in_bytes', value: memoryV1Value(m.reservation) });
  if (isNonZero(m.kernel)) out.push({ file: 'memory.kmem.limit_in_bytes', value: memoryV1Value(m.kernel) });
  if (isNonZero(m.kernelTCP)) out.push({ file: 'memory.kmem.tcp.limit_in_bytes', value: memoryV1Value(m.kernelTCP) });
  if (typeof m.swappiness === 'number') {
    if (m.swappiness < 0 || m.swappiness > 100) {
      throw new ShoalError('INVALID_CONFIG', `memory.swappiness: invalid value ${m.swappiness} (must be 0..100)`);
    }
    out.push({ file: 'memory.swappiness', value: String(m.swappiness) });
  }
  if (m.disableOOMKiller) out.push({ file: 'memory.oom_control', value: '1' });
  return out;
}

function v2Writes(r: LinuxResources, read?: FileReader): CgroupWrite[] {
  const m = r.memory;
  if (!m) return [];
  checkLimitAgainstUsage(m, read, 'memory.max', 'memory.current');
  const out: CgroupWrite[] = [];
  const swap = memorySwapV2Value(m.swap ?? undefined, m.limit ?? undefined);
  // Absent without swap accounting; "max" there is what the kernel does anyway.
  if (swap !== undefined) out.push({ file: 'memory.swap.max', value: swap, optional: swap === 'max' });
  if (isNonZero(m.limit)) out.push({ file: 'memory.max', value: memoryV2Value(m.limit) });
  if (isNonZero(m.reservation)) out.push({ file: 'memory.low', value: memoryV2Value(m.reservation) });
  return out;
}

/** The memory controller. */
export const memoryController: Controller = {
  name: 'memory',
  v2Name: 'memory',
  isSet: (r) => {
    const m = r.memory;
    return !!m && (isNonZero(m.limit) || isNonZero(m.swap) || isNonZero(m.reservation) || isNonZero(m.kernel) ||
      isNonZero(m.kernelTCP) || typeof m.swappiness === 'number' || !!m.disableOOMKiller || typeof m.useHierarchy === 'boolean');
  },
  v1Writes,
  v2Writes,
};
