/*
 * memory controller.
 *   OCI field        v1 file                          v2 file
 *   limit            memory.limit_in_bytes (-1)       memory.max ("max")
 *   swap             memory.memsw.limit_in_bytes      memory.swap.max = swap - limit
 *                    (memory+swap total)              (swap alone)
 *   reservation      memory.soft_limit_in_bytes       memory.low
 *   swappiness       memory.swappiness                (none: ignored on v2)
 *   disableOOMKiller memory.oom_control = 1           (none: ignored on v2)
 * 0 means "not set" for the numeric fields (runc's convention); -1 means unlimited.
 */
import type { LinuxResources } from '../../../../../spec/src/config';
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

function v1Writes(r: LinuxResources, read?: FileReader): CgroupWrite[] {
  const m = r.memory;
  if (!m) return [];
  const out: CgroupWrite[] = [];
  const limit = isNonZero(m.limit) ? { file: 'memory.limit_in_bytes', value: memoryV1Value(m.limit) } : undefined;
  // memsw is absent without swap accounting (swapaccount=0): then the swap limit is skipped.
  const swap = isNonZero(m.swap) ? { file: 'memory.memsw.limit_in_bytes', value: memoryV1Value(m.swap), optional: true } : undefined;
  if (limit && swap) {
    // The kernel requires memory <= memory+swap at every step. Raising the limit (or making swap
    // unlimited) needs memsw written first; lowering needs the limit first. A fresh cgroup is
    // unlimited, so without `read` (creation) the limit goes first.
    const current = read ? toBig(read('memory.limit_in_bytes')) : undefined;
    const raising = m.swap === -1 || m.limit! < 0 || (current !== undefined && BigInt(m.limit!) > current);
    if (raising) out.push(swap, limit);
    else out.push(limit, swap);
  } else if (limit) out.push(limit);
  else if (swap) out.push(swap);
  if (isNonZero(m.reservation)) out.push({ file: 'memory.soft_limit_in_bytes', value: memoryV1Value(m.reservation) });
  if (typeof m.swappiness === 'number') out.push({ file: 'memory.swappiness', value: String(m.swappiness) });
  if (m.disableOOMKiller) out.push({ file: 'memory.oom_control', value: '1' });
  return out;
}

function v2Writes(r: LinuxResources): CgroupWrite[] {
  const m = r.memory;
  if (!m) return [];
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
    return !!m && (isNonZero(m.limit) || isNonZero(m.swap) || isNonZero(m.reservation) ||
      typeof m.swappiness === 'number' || !!m.disableOOMKiller);
  },
  v1Writes,
  v2Writes,
};
