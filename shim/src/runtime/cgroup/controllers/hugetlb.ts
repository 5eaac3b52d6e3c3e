/*
 * hugetlb controller: linux.resources.hugepageLimits[] → one limit per page size.
 *   v1: hugetlb.<size>.limit_in_bytes (+ hugetlb.<size>.rsvd.limit_in_bytes when present)
 *   v2: hugetlb.<size>.max            (+ hugetlb.<size>.rsvd.max when present)
 * <size> is the kernel's name ("2MB", "1GB", "64KB"), validated against the sizes this host
 * offers (/sys/kernel/mm/hugepages/hugepages-<N>kB). On a hybrid host hugetlb usually lives in
 * the unified hierarchy; like runc's v1 manager, a limit is then an error (v1.ts reports it).
 */
import * as fs from 'fs';
import type { LinuxResources } from '../../../../../spec/src/config';
import { ShoalError } from '../../errors';
import type { Controller, CgroupWrite } from './common';

/** Where the kernel lists the supported huge page sizes. */
export const HUGEPAGES_DIR = '/sys/kernel/mm/hugepages';

/** The kernel's name of a page size in kB: 2048 → "2MB", 1048576 → "1GB", 64 → "64KB". */
export function pageSizeName(kb: number): string {
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = kb;
  let i = 0;
  while (v >= 1024 && v % 1024 === 0 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v}${units[i]}`;
}

let cachedSizes: string[] | undefined;

/** Huge page sizes of this host by kernel name, e.g. ["1GB", "2MB"] (cached; [] if none). */
export function hugePageSizes(): string[] {
  if (!cachedSizes) {
    let names: string[] = [];
    try {
      names = fs.readdirSync(HUGEPAGES_DIR);
    } catch {
      names = [];
    }
    cachedSizes = names
      .map((n) => /^hugepages-(\d+)kB$/.exec(n))
      .filter((m): m is RegExpExecArray => !!m)
      .map((m) => pageSizeName(Number(m[1])));
  }
  return cachedSizes;
}

/** Throw INVALID_CONFIG unless `size` is a page size of this host. */
function checkSize(size: string): void {
  const sizes = hugePageSizes();
  if (!sizes.includes(size)) {
    throw new ShoalError('INVALID_CONFIG', `hugetlb.${size}: invalid hugepage size "${size}" (this host supports: ${sizes.join(', ') || 'none'})`);
  }
}

function make(limitSuffix: string, rsvdSuffix: string) {
  return (r: LinuxResources): CgroupWrite[] => {
    const out: CgroupWrite[] = [];
    for (const h of r.hugepageLimits ?? []) {
      checkSize(h.pageSize);
      const v = String(h.limit);
      out.push({ file: `hugetlb.${h.pageSize}.${limitSuffix}`, value: v });
      // Reservation accounting (kernel >= 5.7): keep it in step, as runc does.
      out.push({ file: `hugetlb.${h.pageSize}.${rsvdSuffix}`, value: v, optional: true });
    }
    return out;
  };
}

/** The hugetlb controller (per page size limits). */
export const hugetlbController: Controller = {
  name: 'hugetlb',
  v2Name: 'hugetlb',
  isSet: (r) => (r.hugepageLimits ?? []).length > 0,
  v1Writes: make('limit_in_bytes', 'rsvd.limit_in_bytes'),
  v2Writes: make('max', 'rsvd.max'),
};
