/**
 * Page-cache sharing at create: which files of a container's rootfs to replace with read-only
 * bind mounts of identical layer-store objects, so every container (from whatever image) maps the
 * same inode. Pure planning: returns the mounts; `create` adds them to config.mounts.
 *
 *   org.shoal.share=libs|all|off     automatic sharing (host default: /etc/shoal/config.json)
 *   org.shoal.layers=...             explicit store layers mounted at paths
 *   org.shoal.share.writable=ro|skip what to do when the rootfs is writable (see README.md)
 *   org.shoal.share.exclude=/a,/b/   rootfs paths (or directory prefixes) never shared
 */
import * as fs from 'fs';
import * as path from 'path';
import { ShoalError } from '../runtime/errors';
import { readElfHeader, ET } from '../gen/elf';
import { ANN_EXCLUDE, ANN_LAYERS, ANN_SHARE, ANN_WRITABLE, hostConfig, parseShareMode } from './config';
import { DigestCache } from './digest-cache';
import type { LayerStore } from './store';

/** Options of {@link planSharing}. */
export interface SharingOptions {
  /** Absolute rootfs path on the host. */
  rootfs: string;
  /** config.json annotations. */
  annotations: Record<string, string>;
  /** config.json root.readonly. */
  readonlyRootfs: boolean;
  store: LayerStore;
  /** Mode when the annotation does not say (before the host config's default). */
  mode?: 'libs' | 'all';
}

/** One read-only bind mount: a store object over a path inside the container. */
export interface SharedMount {
  source: string;
  destination: string;
}

/** The plan: mounts to add, digests to register with the store, and what to warn about. */
export interface SharingPlan {
  mounts: SharedMount[];
  digests: string[];
  warnings: string[];
  /** Files looked at, files hashed now (cache misses), shared files, elapsed milliseconds. */
  stats: { scanned: number; hashed: number; shared: number; ms: number };
}

/** Directories (relative to the rootfs) searched for shared objects in "libs" mode. */
export const LIB_DIRS = ['lib', 'lib64', 'lib32', 'libx32', 'usr/lib', 'usr/lib64', 'usr/lib32', 'usr/libx32', 'usr/local/lib', 'usr/local/lib64'];

/** True for names like libc.so.6, libfoo.so, ld-linux-x86-64.so.2. */
export const isSharedObjectName = (name: string): boolean => /\.so(\.|$)/.test(name);

/**
 * Parse org.shoal.layers: JSON ({"name": "/path"}, [{"name","path"}] or ["name:/path"]) or
 * "name:/path,name2:/path2". Throws INVALID_CONFIG on a malformed value or a relative path.
 */
export function parseLayersAnnotation(v: string | undefined): { name: string; path: string }[] {
  if (!v || !v.trim()) return [];
  let out: { name: string; path: string }[] = [];
  const fromPair = (s: string) => {
    const i = s.indexOf(':');
    if (i <= 0) throw new ShoalError('INVALID_CONFIG', `${ANN_LAYERS}: ${JSON.stringify(s)} is not name:/path`);
    return { name: s.slice(0, i).trim(), path: s.slice(i + 1).trim() };
  };
  const t = v.trim();
  if (t.startsWith('{') || t.startsWith('[')) {
    let j: unknown;
    try {
      j = JSON.parse(t);
    } catch (e) {
      throw new ShoalError('INVALID_CONFIG', `${ANN_LAYERS}: invalid JSON: ${(e as Error).message}`);
    }
    if (Array.isArray(j)) out = j.map((x) => (typeof x === 'string' ? fromPair(x) : { name: String(x?.name), path: String(x?.path) }));
    else out = Object.entries(j as Record<string, unknown>).map(([name, p]) => ({ name, path: String(p) }));
  } else {
    out = t.split(',').filter((s) => s.trim()).map(fromPair);
  }
  for (const l of out) {
    if (!l.name || !path.posix.isAbsolute(l.path)) throw new ShoalError('INVALID_CONFIG', `${ANN_LAYERS}: layer ${JSON.stringify(l.name)} needs an absolute path, got ${JSON.stringify(l.path)}`);
  }
  return out;
}

/** Whether every component of `rel` under `root` is a real directory (no symlinks, which could leave the rootfs). */
function realDir(root: string, rel: string): boolean {
  let cur = root;
  for (const c of rel.split('/').filter(Boolean)) {
    cur = path.join(cur, c);
    try {
      if (!fs.lstatSync(cur).isDirectory()) return false;
    } catch {
      return false;
    }
  }
  return true;
}

/**
 * Call `fn(rel, st)` for every regular file under rootfs/`rel` whose name passes `want`, not
 * following symlinks. Names are filtered before the lstat: most of a lib dir is not libraries.
 */
function walkFiles(root: string, rel: string, skipTop: Set<string>, want: (name: string) => boolean, fn: (rel: string, st: fs.BigIntStats) => void): void {
  let ents: fs.Dirent[];
  try {
    ents = fs.readdirSync(path.join(root, rel), { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of ents) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (!rel && skipTop.has(e.name)) continue;
    if (e.isDirectory()) walkFiles(root, r, skipTop, want, fn);
    else if (e.isFile() && want(e.name)) fn(r, fs.lstatSync(path.join(root, r), { bigint: true }));
  }
}

/**
 * Plan the shared mounts of one container. Returns no mounts when sharing is off and no layers
 * are requested. Throws INVALID_CONFIG for bad annotations or an unknown/missing explicit layer.
 */
export function planSharing(o: SharingOptions): SharingPlan {
  const t0 = Date.now();
  const a = o.annotations ?? {};
  const plan: SharingPlan = { mounts: [], digests: [], warnings: [], stats: { scanned: 0, hashed: 0, shared: 0, ms: 0 } };
  let mode: 'libs' | 'all' | null;
  try {
    mode = parseShareMode(a[ANN_SHARE] ?? o.mode ?? hostConfig().share);
  } catch (e) {
    throw new ShoalError('INVALID_CONFIG', `annotations: ${(e as Error).message}`);
  }
  const writable = a[ANN_WRITABLE] ?? 'ro';
  if (writable !== 'ro' && writable !== 'skip') throw new ShoalError('INVALID_CONFIG', `annotations: ${ANN_WRITABLE}: unknown value ${JSON.stringify(writable)} (want ro or skip)`);
  if (mode && !o.readonlyRootfs && writable === 'skip') {
    plan.warnings.push(`memory sharing skipped: the rootfs is writable and ${ANN_WRITABLE}=skip`);
    mode = null;
  }
  const byDest = new Map<string, SharedMount & { digest: string }>();

  for (const l of parseLayersAnnotation(a[ANN_LAYERS])) {
    const layer = o.store.get(l.name);
    if (!layer) throw new ShoalError('INVALID_CONFIG', `annotations: ${ANN_LAYERS}: layer ${l.name} is not in the layer store ${o.store.dir}`);
    for (const f of layer.files) {
      const source = o.store.lookup(f.digest);
      if (!source) throw new ShoalError('INVALID_CONFIG', `layer ${l.name}: object ${f.digest} of ${f.path} is missing from ${o.store.dir}`);
      byDest.set(path.posix.join(l.path, f.path), { source, destination: path.posix.join(l.path, f.path), digest: f.digest });
    }
  }

  if (mode) {
    const sizes = o.store.objectSizes();
    if (!sizes.size) plan.warnings.push(`memory sharing: the layer store ${o.store.dir} is empty (add layers with "shoal layer add")`);
    const exclude = (a[ANN_EXCLUDE] ?? '').split(',').map((s) => s.trim().replace(/^\/+/, '')).filter(Boolean);
    const excluded = (rel: string) => exclude.some((x) => rel === x || (x.endsWith('/') ? rel.startsWith(x) : rel.startsWith(x + '/')));
    const cache = new DigestCache(path.join(o.store.dir, 'cache'), o.rootfs);
    const visit = (rel: string, st: fs.BigIntStats) => {
      plan.stats.scanned++;
      const dest = '/' + rel;
      if (byDest.has(dest) || !st.size || !sizes.has(Number(st.size)) || excluded(rel)) return;
      if (mode === 'libs') {
        if (!isSharedObjectName(path.basename(rel))) return;
        if (!cache.sharedObject(rel, st, () => readElfHeader(path.join(o.rootfs, rel))?.type === ET.DYN)) return;
      } else if (Number(st.mode) & 0o6000) {
        return; // setuid/setgid: the object has no such bits and the mount is nosuid
      }
      const digest = cache.digest(rel, st);
      const source = o.store.lookup(digest);
      if (source) byDest.set(dest, { source, destination: dest, digest });
    };
    if (sizes.size) {
      if (mode === 'all') walkFiles(o.rootfs, '', new Set(['proc', 'sys', 'dev']), () => true, visit);
      else {
        const seen = new Set<string>();
        for (const d of LIB_DIRS) {
          if (!realDir(o.rootfs, d)) continue;
          const st = fs.statSync(path.join(o.rootfs, d));
          const key = `${st.dev}:${st.ino}`;
          if (seen.has(key)) continue;
          seen.add(key);
          walkFiles(o.rootfs, d, new Set(), isSharedObjectName, visit);
        }
      }
    }
    cache.save();
    plan.stats.hashed = cache.hashed;
  }

  const all = [...byDest.values()].sort((x, y) => (x.destination < y.destination ? -1 : 1));
  plan.mounts = all.map(({ source, destination }) => ({ source, destination }));
  plan.digests = [...new Set(all.map((m) => m.digest))];
  plan.stats.shared = all.length;
  plan.stats.ms = Date.now() - t0;
  return plan;
}

/** The config.json mount entry create adds for a planned shared mount. */
export function toOciMount(m: SharedMount): { destination: string; type: string; source: string; options: string[] } {
  return { destination: m.destination, type: 'bind', source: m.source, options: ['bind', 'ro', 'nosuid', 'nodev'] };
}
