/**
 * The dependency closure of ELF programs, resolved the way glibc's ld.so does, without running
 * anything: PT_INTERP, then DT_NEEDED searched in DT_RPATH (of the object and, when it has no
 * DT_RUNPATH, of the objects that loaded it), DT_RUNPATH, /etc/ld.so.cache and the default
 * directories; $ORIGIN, $LIB and $PLATFORM are expanded. Every symlink met on the way (in any
 * path component) is recorded with its target, so the same paths can be rebuilt elsewhere.
 */
import * as fs from 'fs';
import * as path from 'path';
import { readElf, readElfHeader, ElfInfo } from './elf';
import { loadLdCache, indexLdCache, LdCacheEntry } from './ldcache';

/** One host path of the closure: a regular file, a directory (from --include) or a symlink. */
export type ClosureEntry = { type: 'file'; size: number } | { type: 'dir' } | { type: 'symlink'; target: string };

/** The result of {@link resolveClosure}. */
export interface Closure {
  /** Absolute host path -> what it is. Parents of every entry are real directories. */
  entries: Map<string, ClosureEntry>;
  /** Libraries that could not be found, as "libfoo.so.1 (needed by /path)". */
  missing: string[];
}

/** Options of {@link resolveClosure}. */
export interface ClosureOptions {
  /** Parsed ld.so.cache entries (default: /etc/ld.so.cache). */
  ldCache?: LdCacheEntry[];
  /** Extra files or directories to include as data (directories are recorded whole). */
  include?: string[];
}

const MAX_SYMLINKS = 40;

/**
 * Canonicalize an absolute path component by component, calling `onLink(link, target)` for every
 * symlink met. Throws ENOENT like lstat when a component is missing.
 */
export function walkPath(p: string, onLink: (link: string, target: string) => void): string {
  const parts = p.split('/').filter(Boolean);
  let cur = '/';
  let hops = 0;
  while (parts.length) {
    const c = parts.shift()!;
    if (c === '.') continue;
    if (c === '..') {
      cur = path.dirname(cur);
      continue;
    }
    const next = path.join(cur, c);
    const st = fs.lstatSync(next);
    if (st.isSymbolicLink()) {
      if (++hops > MAX_SYMLINKS) throw Object.assign(new Error(`${p}: too many levels of symbolic links`), { code: 'ELOOP' });
      const t = fs.readlinkSync(next);
      onLink(next, t);
      if (t.startsWith('/')) cur = '/';
      parts.unshift(...t.split('/').filter(Boolean));
      continue;
    }
    cur = next;
  }
  return cur;
}

/** The default library directories of ld.so for this class (after the cache). */
function defaultDirs(bits: 32 | 64): string[] {
  return bits === 64 ? ['/lib64', '/usr/lib64', '/lib', '/usr/lib'] : ['/lib32', '/usr/lib32', '/lib', '/usr/lib'];
}

const PLATFORMS: Record<number, string> = { 62: 'x86_64', 183: 'aarch64', 3: 'i686' };

function expand(dir: string, origin: string, info: ElfInfo): string {
  return dir
    .replace(/\$(\{ORIGIN\}|ORIGIN)/g, origin)
    .replace(/\$(\{LIB\}|LIB)/g, info.bits === 64 ? 'lib64' : 'lib')
    .replace(/\$(\{PLATFORM\}|PLATFORM)/g, PLATFORMS[info.machine] ?? '');
}

/**
 * Resolve the closure of `programs` (absolute paths or names found in $PATH): the programs, their
 * interpreter and every shared library they need, transitively, plus `include`d data.
 */
export function resolveClosure(programs: string[], opts: ClosureOptions = {}): Closure {
  const entries = new Map<string, ClosureEntry>();
  const missing: string[] = [];
  const cacheEntries = opts.ldCache ?? loadLdCache();
  const caches = new Map<string, Map<string, string[]>>();
  const cacheFor = (info: ElfInfo) => {
    const k = `${info.bits}/${info.machine}`;
    if (!caches.has(k)) caches.set(k, indexLdCache(cacheEntries, info.bits, info.machine));
    return caches.get(k)!;
  };
  const record = (p: string): string => {
    const real = walkPath(p, (link, target) => entries.set(link, { type: 'symlink', target }));
    const st = fs.statSync(real);
    entries.set(real, st.isDirectory() ? { type: 'dir' } : { type: 'file', size: st.size });
    return real;
  };
  const compatible = (file: string, info: ElfInfo): boolean => {
    const h = readElfHeader(file);
    return !!h && h.bits === info.bits && h.machine === info.machine;
  };
  const done = new Set<string>();

  // `loaded` is the path the object was found at; `rpathChain` the DT_RPATHs of its loaders.
  const visit = (loaded: string, rpathChain: { dirs: string[]; origin: string; info: ElfInfo }[]): void => {
    const real = record(loaded);
    if (done.has(real)) return;
    done.add(real);
    const info = readElf(real);
    if (!info) return;
    if (info.interp) visit(info.interp, []);
    const origin = path.dirname(loaded);
    const chain = info.runpath.length ? [] : [{ dirs: info.rpath, origin, info }, ...rpathChain];
    for (const name of info.needed) {
      const found = findLibrary(name, info, origin, chain, cacheFor(info), compatible);
      if (found) visit(found, info.runpath.length ? [] : chain);
      else missing.push(`${name} (needed by ${loaded})`);
    }
  };
  for (const prog of programs) visit(resolveProgram(prog), []);
  for (const inc of opts.include ?? []) record(path.resolve(inc));
  return { entries, missing };
}

function findLibrary(
  name: string,
  info: ElfInfo,
  origin: string,
  rpathChain: { dirs: string[]; origin: string; info: ElfInfo }[],
  cache: Map<string, string[]>,
  compatible: (file: string, info: ElfInfo) => boolean,
): string | null {
  const ok = (p: string) => fs.existsSync(p) && compatible(p, info);
  if (name.includes('/')) return ok(path.resolve(origin, name)) ? path.resolve(origin, name) : null;
  const dirs: string[] = [];
  for (const r of rpathChain) dirs.push(...r.dirs.map((d) => expand(d, r.origin, r.info)));
  dirs.push(...info.runpath.map((d) => expand(d, origin, info)));
  for (const d of dirs) if (ok(path.join(d, name))) return path.join(d, name);
  for (const p of cache.get(name) ?? []) if (ok(p)) return p;
  for (const d of defaultDirs(info.bits)) if (ok(path.join(d, name))) return path.join(d, name);
  return null;
}

/** An absolute path for a program: as given when it contains '/', else looked up in $PATH. */
export function resolveProgram(prog: string): string {
  if (prog.includes('/')) return path.resolve(prog);
  for (const d of (process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(':')) {
    const p = path.join(d || '.', prog);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return path.resolve(p);
    } catch {
      /* next */
    }
  }
  throw Object.assign(new Error(`${prog}: not found in PATH`), { code: 'ENOENT' });
}
