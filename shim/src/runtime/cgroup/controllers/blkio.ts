/*
 * blkio (v1) / io (v2) controller.
 *   OCI field               v1 file                              v2 file
 *   weight                  blkio.weight, else blkio.bfq.weight  io.bfq.weight, else io.weight
 *                                                                (converted, see ioWeightValue)
 *   leafWeight              blkio.leaf_weight                    (none: ignored)
 *   weightDevice[]          blkio.weight_device "M:m w",         io.bfq.weight "M:m w", else
 *                           else blkio.bfq.weight_device         io.weight "M:m converted"
 *   throttleRead/WriteBps/  blkio.throttle.{read,write}_         io.max "M:m rbps=N" (wbps,
 *   IOPSDevice[]            {bps,iops}_device "M:m N"            riops, wiops)
 * Which weight file exists depends on the disk scheduler (CFQ on old kernels, BFQ now), so
 * weight writes carry a fallback used when the first file is absent.
 */
import type { LinuxBlockIO, LinuxResources, LinuxThrottleDevice } from '../../../../../spec/src/config';
import type { Controller, CgroupWrite } from './common';

/**
 * io.weight (1..10000) for a blkio weight (10..1000), the linear map runc uses:
 * 1 + ((weight - 10) * 9999) / 990 with integer division; out-of-range weights are clamped.
 */
export function ioWeightValue(weight: number): number {
  const w = Math.min(Math.max(Math.floor(weight), 10), 1000);
  return 1 + Math.floor(((w - 10) * 9999) / 990);
}

const V1_THROTTLE: Array<[keyof LinuxBlockIO, string]> = [
  ['throttleReadBpsDevice', 'blkio.throttle.read_bps_device'],
  ['throttleWriteBpsDevice', 'blkio.throttle.write_bps_device'],
  ['throttleReadIOPSDevice', 'blkio.throttle.read_iops_device'],
  ['throttleWriteIOPSDevice', 'blkio.throttle.write_iops_device'],
];

const V2_THROTTLE: Array<[keyof LinuxBlockIO, string]> = [
  ['throttleReadBpsDevice', 'rbps'],
  ['throttleWriteBpsDevice', 'wbps'],
  ['throttleReadIOPSDevice', 'riops'],
  ['throttleWriteIOPSDevice', 'wiops'],
];

function devices(b: LinuxBlockIO, key: keyof LinuxBlockIO): LinuxThrottleDevice[] {
  const v = b[key];
  return Array.isArray(v) ? (v as LinuxThrottleDevice[]) : [];
}

function v1Writes(r: LinuxResources): CgroupWrite[] {
  const b = r.blockIO;
  if (!b) return [];
  const out: CgroupWrite[] = [];
  if (typeof b.weight === 'number' && b.weight !== 0) {
    const v = String(b.weight);
    out.push({ file: 'blkio.weight', value: v, fallback: { file: 'blkio.bfq.weight', value: v }, setting: 'blockIO.weight (the I/O scheduler must be BFQ, or CFQ on old kernels)' });
  }
  if (typeof b.leafWeight === 'number' && b.leafWeight !== 0) out.push({ file: 'blkio.leaf_weight', value: String(b.leafWeight) });
  for (const d of b.weightDevice ?? []) {
    const dev = `${d.major}:${d.minor}`;
    if (typeof d.weight === 'number') {
      const v = `${dev} ${d.weight}`;
      out.push({ file: 'blkio.weight_device', value: v, fallback: { file: 'blkio.bfq.weight_device', value: v }, setting: 'blockIO.weightDevice (the I/O scheduler must be BFQ, or CFQ on old kernels)' });
    }
    if (typeof d.leafWeight === 'number') out.push({ file: 'blkio.leaf_weight_device', value: `${dev} ${d.leafWeight}` });
  }
  for (const [key, file] of V1_THROTTLE) {
    for (const d of devices(b, key)) out.push({ file, value: `${d.major}:${d.minor} ${d.rate}` });
  }
  return out;
}

function v2Writes(r: LinuxResources): CgroupWrite[] {
  const b = r.blockIO;
  if (!b) return [];
  const out: CgroupWrite[] = [];
  if (typeof b.weight === 'number' && b.weight !== 0) {
    out.push({ file: 'io.bfq.weight', value: String(b.weight), fallback: { file: 'io.weight', value: String(ioWeightValue(b.weight)) }, setting: 'blockIO.weight (BFQ or the io.weight of blk-iocost)' });
  }
  for (const d of b.weightDevice ?? []) {
    if (typeof d.weight !== 'number') continue;
    const dev = `${d.major}:${d.minor}`;
    out.push({ file: 'io.bfq.weight', value: `${dev} ${d.weight}`, fallback: { file: 'io.weight', value: `${dev} ${ioWeightValue(d.weight)}` }, setting: 'blockIO.weightDevice (BFQ or the io.weight of blk-iocost)' });
  }
  for (const [key, name] of V2_THROTTLE) {
    for (const d of devices(b, key)) out.push({ file: 'io.max', value: `${d.major}:${d.minor} ${name}=${d.rate === 0 ? 'max' : d.rate}` });
  }
  return out;
}

/** The blkio (v1) / io (v2) controller: weights and per-device throttles. */
export const blkioController: Controller = {
  name: 'blkio',
  v2Name: 'io',
  isSet: (r) => v1Writes(r).length > 0,
  v1Writes,
  v2Writes,
};
