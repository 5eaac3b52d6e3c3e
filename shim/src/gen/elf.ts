/**
 * A minimal ELF reader: just what dependency resolution needs. Reads the file header, the
 * program headers, PT_INTERP and the PT_DYNAMIC entries DT_NEEDED, DT_SONAME, DT_RPATH and
 * DT_RUNPATH (their strings are found through DT_STRTAB, mapped to a file offset with the
 * PT_LOAD segments). ELF32 and ELF64, little and big endian. Only the bytes needed are read.
 */
import * as fs from 'fs';

/** e_type values. */
export const ET = { REL: 1, EXEC: 2, DYN: 3, CORE: 4 } as const;
/** Program header types used here. */
export const PT = { LOAD: 1, DYNAMIC: 2, INTERP: 3 } as const;
/** Dynamic tags used here. */
export const DT = { NULL: 0, NEEDED: 1, STRTAB: 5, STRSZ: 10, SONAME: 14, RPATH: 15, RUNPATH: 29 } as const;

/** What {@link readElf} returns for an ELF file. */
export interface ElfInfo {
  /** 32 or 64. */
  bits: 32 | 64;
  littleEndian: boolean;
  /** e_type: 2 = ET_EXEC, 3 = ET_DYN (shared objects and PIE executables). */
  type: number;
  /** e_machine (62 = x86-64, 183 = aarch64, 3 = i386). */
  machine: number;
  /** The program interpreter (PT_INTERP), e.g. /lib64/ld-linux-x86-64.so.2. */
  interp?: string;
  /** DT_NEEDED names in order. */
  needed: string[];
  soname?: string;
  /** DT_RPATH entries (split on ':'), unexpanded ($ORIGIN stays). */
  rpath: string[];
  /** DT_RUNPATH entries (split on ':'), unexpanded. */
  runpath: string[];
  /** Whether a PT_DYNAMIC segment exists (false for static executables). */
  dynamic: boolean;
}

interface Reader {
  u16(o: number): number;
  u32(o: number): number;
  /** An address or offset (u32 on ELF32, u64 on ELF64) as a JS number. */
  addr(o: number): number;
}

function reader(b: Buffer, bits: 32 | 64, le: boolean): Reader {
  const u16 = (o: number) => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
  const u32 = (o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  const u64 = (o: number) => Number(le ? b.readBigUInt64LE(o) : b.readBigUInt64BE(o));
  return { u16, u32, addr: bits === 64 ? u64 : u32 };
}

function pread(fd: number, offset: number, length: number): Buffer {
  const b = Buffer.alloc(length);
  let got = 0;
  while (got < length) {
    const n = fs.readSync(fd, b, got, length - got, offset + got);
    if (n === 0) break;
    got += n;
  }
  if (got < length) throw new Error(`truncated ELF: wanted ${length} bytes at ${offset}, got ${got}`);
  return b;
}

/** True when the first bytes are the ELF magic. */
export function isElfMagic(head: Buffer): boolean {
  return head.length >= 4 && head[0] === 0x7f && head[1] === 0x45 && head[2] === 0x4c && head[3] === 0x46;
}

/**
 * Read the header of an ELF file: class, type, machine. Returns null when `file` is not ELF
 * (or too short). Cheap: one 64-byte read. Used to tell shared objects (ET_DYN) from the rest.
 */
export function readElfHeader(file: string): { bits: 32 | 64; littleEndian: boolean; type: number; machine: number } | null {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return null;
  }
  try {
    const h = Buffer.alloc(64);
    const n = fs.readSync(fd, h, 0, 64, 0);
    if (n < 52 || !isElfMagic(h)) return null;
    const bits = h[4] === 2 ? 64 : h[4] === 1 ? 32 : 0;
    if (!bits || (h[5] !== 1 && h[5] !== 2)) return null;
    const r = reader(h, bits as 32 | 64, h[5] === 1);
    return { bits: bits as 32 | 64, littleEndian: h[5] === 1, type: r.u16(16), machine: r.u16(18) };
  } finally {
    fs.closeSync(fd);
  }
}

function cstr(b: Buffer, o: number): string {
  const end = b.indexOf(0, o);
  return b.toString('utf8', o, end < 0 ? b.length : end);
}

/**
 * Parse an ELF file's dynamic-linking information. Returns null when the file is not ELF.
 * Throws on a truncated or inconsistent file.
 */
export function readElf(file: string): ElfInfo | null {
  const head = readElfHeader(file);
  if (!head) return null;
  const fd = fs.openSync(file, 'r');
  try {
    const { bits, littleEndian: le } = head;
    const h = pread(fd, 0, bits === 64 ? 64 : 52);
    const r = reader(h, bits, le);
    const phoff = r.addr(bits === 64 ? 32 : 28);
    const phentsize = r.u16(bits === 64 ? 54 : 42);
    const phnum = r.u16(bits === 64 ? 56 : 44);
    const info: ElfInfo = { bits, littleEndian: le, type: head.type, machine: head.machine, needed: [], rpath: [], runpath: [], dynamic: false };
    if (!phnum) return info;
    const ph = pread(fd, phoff, phentsize * phnum);
    const pr = reader(ph, bits, le);
    const loads: { vaddr: number; offset: number; filesz: number }[] = [];
    let dyn: { offset: number; size: number } | undefined;
    for (let i = 0; i < phnum; i++) {
      const o = i * phentsize;
      const type = pr.u32(o);
      // ELF64: type, flags, offset, vaddr, paddr, filesz, memsz; ELF32: type, offset, vaddr, paddr, filesz, memsz, flags.
      const offset = bits === 64 ? pr.addr(o + 8) : pr.u32(o + 4);
      const vaddr = bits === 64 ? pr.addr(o + 16) : pr.u32(o + 8);
      const filesz = bits === 64 ? pr.addr(o + 32) : pr.u32(o + 16);
      if (type === PT.LOAD) loads.push({ vaddr, offset, filesz });
      else if (type === PT.DYNAMIC) dyn = { offset, size: filesz };
      else if (type === PT.INTERP) info.interp = cstr(pread(fd, offset, filesz), 0);
    }
    if (!dyn) return info;
    info.dynamic = true;
    const db = pread(fd, dyn.offset, dyn.size);
    const dr = reader(db, bits, le);
    const ent = bits === 64 ? 16 : 8;
    const tags: [number, number][] = [];
    let strtab = -1;
    let strsz = 0;
    for (let o = 0; o + ent <= db.length; o += ent) {
      const tag = bits === 64 ? dr.addr(o) : dr.u32(o);
      const val = dr.addr(o + ent / 2);
      if (tag === DT.NULL) break;
      if (tag === DT.STRTAB) strtab = val;
      else if (tag === DT.STRSZ) strsz = val;
      else tags.push([tag, val]);
    }
    if (strtab < 0 || !strsz) return info;
    // DT_STRTAB is a virtual address: find the PT_LOAD segment holding it.
    const seg = loads.find((l) => strtab >= l.vaddr && strtab < l.vaddr + l.filesz);
    if (!seg) throw new Error(`${file}: DT_STRTAB 0x${strtab.toString(16)} is outside every PT_LOAD segment`);
    const strs = pread(fd, seg.offset + (strtab - seg.vaddr), Math.min(strsz, seg.filesz - (strtab - seg.vaddr)));
    const split = (s: string) => s.split(':').filter(Boolean);
    for (const [tag, val] of tags) {
      if (tag === DT.NEEDED) info.needed.push(cstr(strs, val));
      else if (tag === DT.SONAME) info.soname = cstr(strs, val);
      else if (tag === DT.RPATH) info.rpath.push(...split(cstr(strs, val)));
      else if (tag === DT.RUNPATH) info.runpath.push(...split(cstr(strs, val)));
    }
    return info;
  } finally {
    fs.closeSync(fd);
  }
}
