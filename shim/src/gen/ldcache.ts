/**
 * A reader for glibc's /etc/ld.so.cache, the "new" format ("glibc-ld.so.cache1.1"), standalone
 * (glibc >= 2.32) or appended to the old "ld.so-1.7.0" format. String offsets in the new format
 * are relative to the start of the new-format header.
 *
 * Header (48 bytes): magic "glibc-ld.so.cache" + version "1.1" (20), nlibs u32, len_strings u32,
 * flags u8 + 3 padding, extension_offset u32, 3 unused u32. Then nlibs entries of 24 bytes:
 * flags i32, key u32, value u32, osversion u32, hwcap u64.
 */
import * as fs from 'fs';

const NEW_MAGIC = 'glibc-ld.so.cache1.1';
const OLD_MAGIC = 'ld.so-1.7.0';

/** One library of the cache. */
export interface LdCacheEntry {
  /** The soname, e.g. libc.so.6. */
  name: string;
  /** The path it resolves to, e.g. /lib/x86_64-linux-gnu/libc.so.6. */
  path: string;
  /** The entry flags: type in the low byte (3 = ELF libc6), architecture bits in 0xff00. */
  flags: number;
  hwcap: bigint;
}

/** FLAG_REQUIRED_MASK architecture bits of ldconfig (elf/cache.h) by ELF e_machine, for 64-bit. */
const ARCH_FLAGS_64: Record<number, number> = {
  62: 0x0300, // x86-64 FLAG_X8664_LIB64
  183: 0x0a00, // aarch64 FLAG_AARCH64_LIB64
  21: 0x0500, // ppc64 FLAG_POWERPC_LIB64
  22: 0x0400, // s390x FLAG_S390_LIB64
  243: 0x0900, // riscv FLAG_RISCV_FLOAT_ABI_DOUBLE (lp64d)
};

/**
 * The architecture bits (flags & 0xff00) a cache entry must have to be loadable by an object of
 * this class and machine; null when unknown (then callers check the candidate's ELF header).
 */
export function requiredArchFlags(bits: 32 | 64, machine: number): number | null {
  if (bits === 32) return machine === 3 || machine === 40 ? 0 : null;
  return ARCH_FLAGS_64[machine] ?? null;
}

/** Parse the bytes of an ld.so.cache. Throws when the new-format header is missing or corrupt. */
export function parseLdCache(buf: Buffer): LdCacheEntry[] {
  let base = 0;
  if (buf.toString('latin1', 0, OLD_MAGIC.length) === OLD_MAGIC) {
    // Old format first: 12-byte header (magic + nlibs), 12-byte entries, then the new header (aligned).
    const nold = buf.readUInt32LE(OLD_MAGIC.length + 1);
    base = OLD_MAGIC.length + 1 + 4 + nold * 12;
    base = (base + 7) & ~7;
    const found = buf.indexOf(NEW_MAGIC, base - 8 < 0 ? 0 : base - 8, 'latin1');
    if (found < 0) throw new Error('ld.so.cache: old format without a new-format section');
    base = found;
  }
  if (buf.toString('latin1', base, base + NEW_MAGIC.length) !== NEW_MAGIC) throw new Error('ld.so.cache: bad magic');
  // The cache is written in host byte order; shoal runs on little-endian hosts.
  const nlibs = buf.readUInt32LE(base + 20);
  const headerSize = 48;
  if (base + headerSize + nlibs * 24 > buf.length) throw new Error('ld.so.cache: truncated entry table');
  const str = (off: number): string => {
    const o = base + off;
    if (o >= buf.length) throw new Error('ld.so.cache: string offset out of range');
    const end = buf.indexOf(0, o);
    return buf.toString('utf8', o, end < 0 ? buf.length : end);
  };
  const out: LdCacheEntry[] = [];
  for (let i = 0; i < nlibs; i++) {
    const e = base + headerSize + i * 24;
    out.push({ flags: buf.readInt32LE(e), name: str(buf.readUInt32LE(e + 4)), path: str(buf.readUInt32LE(e + 8)), hwcap: buf.readBigUInt64LE(e + 16) });
  }
  return out;
}

/** The parsed cache of a file (default /etc/ld.so.cache), or [] when it is missing. */
export function loadLdCache(file = '/etc/ld.so.cache'): LdCacheEntry[] {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch {
    return [];
  }
  return parseLdCache(buf);
}

/**
 * Index cache entries by soname for one architecture: name -> paths, best first (the cache's
 * own order, which is ldconfig's priority order). Entries of other architectures are dropped
 * when the architecture bits are known.
 */
export function indexLdCache(entries: LdCacheEntry[], bits: 32 | 64, machine: number): Map<string, string[]> {
  const want = requiredArchFlags(bits, machine);
  const m = new Map<string, string[]>();
  for (const e of entries) {
    if (want !== null && (e.flags & 0xff00) !== want) continue;
    const list = m.get(e.name) ?? [];
    list.push(e.path);
    m.set(e.name, list);
  }
  return m;
}
