/**
 * Image-less bundles: a rootfs skeleton plus a config.json that bind-mounts, read-only, exactly
 * the host files a program needs (its ELF closure and any --include'd data) at their host paths.
 * Symlinks met on the way (/lib -> usr/lib, libfoo.so.1 -> libfoo.so.1.2.3) are recreated in the
 * skeleton, so the container sees the same paths as the host. With a layer store, the files are
 * imported into a layer first and the store objects are mounted instead, so every bundle
 * generated from the same files maps the same inodes.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as crypto from 'crypto';
import type { Mount } from '../../../spec/src/config';
import { defaultSpec } from '../../../spec/src/default-spec';
import { ShoalError } from '../runtime/errors';
import type { LayerStore } from '../layers/store';
import { resolveClosure, resolveProgram, Closure, ClosureEntry } from './closure';

/** Options of {@link generateBundle}. */
export interface GenOptions {
  /** Bundle directory to create (must not hold a config.json yet). */
  out: string;
  /** The program and its arguments; the program is looked up in $PATH when it has no '/'. */
  argv: string[];
  /** Data files or directories to bind-mount too. */
  include?: string[];
  /** Import the files into this store and mount the objects instead of the host files. */
  store?: LayerStore;
  /** Layer name in the store (default: gen-<program>-<hash of the file list>). */
  layerName?: string;
  /** Extra environment ("K=V") for the process. */
  env?: string[];
}

/** What was written. */
export interface GenSummary {
  bundle: string;
  /** Regular files mounted and their total size. */
  files: number;
  bytes: number;
  /** Directories mounted whole (from --include). */
  dirs: number;
  symlinks: number;
  mounts: number;
  /** Bytes on disk of the bundle itself (skeleton + config.json). */
  bundleBytes: number;
  missing: string[];
  layer?: string;
}

const SKELETON: [string, number][] = [['proc', 0o555], ['sys', 0o555], ['dev', 0o755], ['tmp', 0o1777], ['etc', 0o755], ['root', 0o700], ['run', 0o755]];

/** mkdir -p inside `root` that refuses to go through a symlink (the target could be on the host). */
function mkdirsIn(root: string, rel: string): void {
  let cur = root;
  for (const c of rel.split('/').filter(Boolean)) {
    cur = path.join(cur, c);
    let st: fs.Stats | undefined;
    try {
      st = fs.lstatSync(cur);
    } catch {
      fs.mkdirSync(cur, { mode: 0o755 });
      continue;
    }
    if (!st.isDirectory()) throw new ShoalError('INTERNAL', `gen: ${cur} is not a directory`);
  }
}

function duBytes(p: string): number {
  const st = fs.lstatSync(p);
  if (!st.isDirectory()) return st.blocks * 512;
  return fs.readdirSync(p).reduce((s, n) => s + duBytes(path.join(p, n)), st.blocks * 512);
}

/** Expand included directories into their files and symlinks (for store mode). */
function expandDirs(c: Closure): void {
  for (const [p, e] of [...c.entries]) {
    if (e.type !== 'dir') continue;
    const walk = (dir: string) => {
      for (const ent of fs.readdirSync(dir, { withFileTypes: true })) {
        const q = path.join(dir, ent.name);
        if (ent.isDirectory()) walk(q);
        else if (ent.isSymbolicLink()) c.entries.set(q, { type: 'symlink', target: fs.readlinkSync(q) });
        else if (ent.isFile()) c.entries.set(q, { type: 'file', size: fs.statSync(q).size });
      }
    };
    walk(p);
    c.entries.delete(p);
  }
}

/** Generate the bundle; throws when the program is not found or the bundle already exists. */
export function generateBundle(o: GenOptions): GenSummary {
  if (!o.argv.length) throw new ShoalError('INVALID_ARGUMENT', 'gen: no program given (shoal gen --out DIR -- /path/to/app args...)');
  const out = path.resolve(o.out);
  if (fs.existsSync(path.join(out, 'config.json'))) throw new ShoalError('ALREADY_EXISTS', `gen: ${out}/config.json already exists`);
  let program: string;
  try {
    program = resolveProgram(o.argv[0]);
  } catch (e) {
    throw new ShoalError('INVALID_ARGUMENT', `gen: ${(e as Error).message}`);
  }
  const closure = resolveClosure([program], { include: o.include });
  if (o.store) expandDirs(closure);
  const rootfs = path.join(out, 'rootfs');
  fs.mkdirSync(rootfs, { recursive: true, mode: 0o755 });
  for (const [d, mode] of SKELETON) {
    mkdirsIn(rootfs, d);
    fs.chmodSync(path.join(rootfs, d), mode);
  }
  const etc: Record<string, string> = {
    'etc/passwd': 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n',
    'etc/group': 'root:x:0:\nnobody:x:65534:\n',
    'etc/hosts': '127.0.0.1\tlocalhost\n::1\tlocalhost\n',
  };
  for (const [rel, text] of Object.entries(etc)) if (!closure.entries.has('/' + rel)) fs.writeFileSync(path.join(rootfs, rel), text, { mode: 0o644 });

  const sorted = [...closure.entries].sort(([a], [b]) => (a < b ? -1 : 1));
  const files = sorted.filter(([, e]) => e.type === 'file') as [string, Extract<ClosureEntry, { type: 'file' }>][];
  let sources = new Map(files.map(([p]) => [p, p]));
  let layer: string | undefined;
  if (o.store) {
    const hash = crypto.createHash('sha256').update(files.map(([p]) => p).join('\n')).digest('hex').slice(0, 12);
    layer = o.layerName ?? `gen-${path.basename(program).replace(/[^A-Za-z0-9_.-]/g, '_')}-${hash}`;
    const l = o.store.addFiles(layer, files.map(([p]) => ({ path: p.slice(1), source: p })));
    sources = new Map(l.files.map((f) => [`/${f.path}`, o.store!.objectPath(f.digest)]));
  }

  const mounts: Mount[] = [];
  const sum: GenSummary = { bundle: out, files: 0, bytes: 0, dirs: 0, symlinks: 0, mounts: 0, bundleBytes: 0, missing: closure.missing, layer };
  for (const [p, e] of sorted) {
    const dest = path.join(rootfs, p);
    mkdirsIn(rootfs, path.dirname(p));
    if (e.type === 'symlink') {
      try {
        fs.lstatSync(dest);
      } catch {
        fs.symlinkSync(e.target, dest);
        sum.symlinks++;
      }
    } else if (e.type === 'dir') {
      mkdirsIn(rootfs, p);
      mounts.push({ destination: p, type: 'bind', source: p, options: ['rbind', 'ro', 'nosuid', 'nodev'] });
      sum.dirs++;
    } else {
      if (!fs.existsSync(dest)) fs.writeFileSync(dest, '', { mode: 0o644 });
      mounts.push({ destination: p, type: 'bind', source: sources.get(p) ?? p, options: ['bind', 'ro', 'nosuid', 'nodev'] });
      sum.files++;
      sum.bytes += e.size;
    }
  }

  const spec = defaultSpec();
  spec.process!.terminal = false;
  spec.process!.args = [program, ...o.argv.slice(1)];
  spec.process!.env = [...(spec.process!.env ?? []), ...(o.env ?? [])];
  spec.root = { path: 'rootfs', readonly: true };
  spec.hostname = 'shoal-gen';
  spec.mounts = [...(spec.mounts ?? []), ...mounts];
  spec.annotations = { 'org.shoal.gen.program': program, ...(layer ? { 'org.shoal.gen.layer': layer } : {}) };
  fs.writeFileSync(path.join(out, 'config.json'), JSON.stringify(spec, null, 2));
  sum.mounts = spec.mounts.length;
  sum.bundleBytes = duBytes(out);
  return sum;
}

/** The one-line summary `shoal gen` prints. */
export function formatSummary(s: GenSummary): string {
  const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;
  const from = s.layer ? `layer ${s.layer}` : 'the host';
  return (
    `gen: ${s.bundle}: ${s.files} files (${mib(s.bytes)})${s.dirs ? ` and ${s.dirs} directories` : ''} bind-mounted read-only from ${from}, ` +
    `${s.symlinks} symlinks, ${s.mounts} mounts; bundle on disk ${(s.bundleBytes / 1024).toFixed(0)} KiB` +
    (s.missing.length ? `; MISSING: ${s.missing.join(', ')}` : '')
  );
}
