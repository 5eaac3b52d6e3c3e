/**
 * The content-addressed layer store. Every file is stored once, by digest, as
 * `objects/sha256/<hex>` (read-only, owned by root); a layer is a named list of
 * {path, digest, mode, size}. Layout of the store directory:
 *
 *   index.json          {version, layers: {name: {created, files}}, objects: {digest: {size, refs}}}
 *   sizes.json          the distinct object sizes (a cheap pre-filter for planSharing)
 *   objects/sha256/...  the files (0444, or 0555 when imported with an exec bit: the kernel
 *                       refuses to exec a file without one, and ld.so is exec'd as PT_INTERP)
 *   users/<key>.json    one live container's use: {id, stateDir, digests}
 *   cache/              rootfs digest caches (see digest-cache.ts)
 *   lock, tmp/          writers' lock; imports in progress
 *
 * index.json is replaced atomically (write + fsync + rename) under the lock; readers never lock.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { ShoalError } from '../runtime/errors';
import { digestFile, digestHex } from './hash';
import { withLock } from './lock';
import { storeDir } from './config';
import { atomicWrite } from './atomic';
import { pruneDigestCaches } from './digest-cache';
import { isoTime } from '../runtime/time';

export { atomicWrite };

/** One file of a layer. `path` is relative to the layer root, without a leading slash. */
export interface LayerFile {
  path: string;
  digest: string;
  /** Permission bits of the imported file (the object itself is 0444 or 0555). */
  mode: number;
  size: number;
}

/** A named layer. */
export interface Layer {
  name: string;
  created: string;
  files: LayerFile[];
}

/** A file to import: where it goes in the layer and where it is read from. */
export interface ImportFile {
  path: string;
  source: string;
}

/** One container's registered use of objects. */
export interface StoreUser {
  id: string;
  stateDir?: string;
  digests: string[];
  since: string;
}

/** What {@link LayerStore.gc} did. */
export interface GcResult {
  removed: string[];
  freedBytes: number;
  deadUsers: string[];
}

interface Index {
  version: 1;
  layers: Record<string, { created: string; files: LayerFile[] }>;
  objects: Record<string, { size: number; refs: number }>;
}

const emptyIndex = (): Index => ({ version: 1, layers: {}, objects: {} });

/** The layer store rooted at a directory. Constructing it touches nothing on disk. */
export class LayerStore {
  /** Absolute store directory. */
  readonly dir: string;

  constructor(dir: string) {
    this.dir = path.resolve(dir);
  }

  /** Path of an object (which may not exist). */
  objectPath(digest: string): string {
    return path.join(this.dir, 'objects', 'sha256', digestHex(digest));
  }

  /** The object file of a digest, or null when the store does not hold it. */
  lookup(digest: string): string | null {
    const p = this.objectPath(digest);
    return fs.existsSync(p) ? p : null;
  }

  /**
   * The distinct sizes of the stored objects, from the small sizes.json written with the index:
   * planSharing hashes only rootfs files of these sizes, without parsing the (large) index.
   */
  objectSizes(): Set<number> {
    try {
      return new Set(JSON.parse(fs.readFileSync(path.join(this.dir, 'sizes.json'), 'utf8')) as number[]);
    } catch {
      return new Set(Object.values(this.readIndex().objects).map((o) => o.size));
    }
  }

  /** Every layer, sorted by name. */
  list(): Layer[] {
    const idx = this.readIndex();
    return Object.keys(idx.layers)
      .sort()
      .map((name) => ({ name, ...idx.layers[name] }));
  }

  /** One layer, or null. */
  get(name: string): Layer | null {
    const l = this.readIndex().layers[name];
    return l ? { name, ...l } : null;
  }

  /** digest -> {size, refs}: every object the index knows (refs = layer entries using it). */
  objects(): Record<string, { size: number; refs: number }> {
    return this.readIndex().objects;
  }

  /**
   * Import every regular file under `dir` as a layer (default name: the directory's basename).
   * A symlink whose target is a regular file inside `dir` is imported as that file's content.
   * Identical files are stored once. Replaces an existing layer of the same name.
   */
  addDirectory(dir: string, name?: string): Layer {
    const root = fs.realpathSync(dir);
    const files: ImportFile[] = [];
    const walk = (rel: string): void => {
      for (const ent of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
        const r = rel ? `${rel}/${ent.name}` : ent.name;
        const abs = path.join(root, r);
        if (ent.isDirectory()) walk(r);
        else if (ent.isFile()) files.push({ path: r, source: abs });
        else if (ent.isSymbolicLink()) {
          let real: string;
          try {
            real = fs.realpathSync(abs);
          } catch {
            continue; // dangling
          }
          if (real.startsWith(root + '/') && fs.statSync(real).isFile()) files.push({ path: r, source: real });
        }
      }
    };
    walk('');
    return this.addFiles(name ?? path.basename(root), files);
  }

  /** Import the given files as layer `name` (replacing a layer of that name). */
  addFiles(name: string, files: ImportFile[]): Layer {
    if (!/^[A-Za-z0-9][A-Za-z0-9_.@+-]*$/.test(name)) throw new ShoalError('INVALID_ARGUMENT', `invalid layer name ${JSON.stringify(name)}`);
    // Hash outside the lock (the slow part); copy objects and update the index under it.
    const hashed = files.map((f) => {
      const st = fs.statSync(f.source);
      if (!st.isFile()) throw new ShoalError('INVALID_ARGUMENT', `${f.source}: not a regular file`);
      return { ...f, path: f.path.replace(/^\/+/, ''), st, digest: digestFile(f.source) };
    });
    this.ensureDirs();
    return withLock(this.lockPath(), () => {
      const idx = this.readIndex();
      for (const h of hashed) this.importObject(h.source, h.digest, (h.st.mode & 0o111) !== 0);
      const entries: LayerFile[] = hashed.map((h) => ({ path: h.path, digest: h.digest, mode: h.st.mode & 0o7777, size: h.st.size }));
      const old = idx.layers[name];
      if (old) for (const f of old.files) idx.objects[f.digest] && idx.objects[f.digest].refs--;
      for (const f of entries) {
        const o = (idx.objects[f.digest] ??= { size: f.size, refs: 0 });
        o.refs++;
      }
      idx.layers[name] = { created: isoTime(), files: entries };
      this.writeIndex(idx);
      return { name, ...idx.layers[name] };
    });
  }

  /** Remove a layer. Its objects stay until {@link gc}. Throws NOT_FOUND for an unknown name. */
  remove(name: string): void {
    withLock(this.lockPath(), () => {
      const idx = this.readIndex();
      const l = idx.layers[name];
      if (!l) throw new ShoalError('NOT_FOUND', `layer ${name} does not exist`);
      for (const f of l.files) if (idx.objects[f.digest]) idx.objects[f.digest].refs--;
      delete idx.layers[name];
      this.writeIndex(idx);
    });
  }

  /**
   * Record that container `id` (state directory `stateDir`) uses these objects, so gc keeps them
   * while the container lives. Throws NOT_FOUND when an object is missing (removed by a gc since
   * the container's mounts were planned): the caller must not mount it.
   */
  registerUse(id: string, digests: string[], stateDir?: string): void {
    this.ensureDirs();
    withLock(this.lockPath(), () => {
      for (const d of digests) if (!this.lookup(d)) throw new ShoalError('NOT_FOUND', `layer store ${this.dir}: object ${d} is missing`);
      const u: StoreUser = { id, stateDir: stateDir && path.resolve(stateDir), digests: [...new Set(digests)], since: isoTime() };
      atomicWrite(this.userPath(id, stateDir), JSON.stringify(u));
    });
  }

  /** Forget container `id`'s use (at delete). A missing registration is not an error. */
  releaseUse(id: string, stateDir?: string): void {
    fs.rmSync(this.userPath(id, stateDir), { force: true });
  }

  /** Registered users; `live` tells whether the container's state directory still exists. */
  users(): (StoreUser & { live: boolean })[] {
    const dir = path.join(this.dir, 'users');
    let names: string[] = [];
    try {
      names = fs.readdirSync(dir).filter((n) => n.endsWith('.json'));
    } catch {
      return [];
    }
    const out: (StoreUser & { live: boolean })[] = [];
    for (const n of names) {
      try {
        const u = JSON.parse(fs.readFileSync(path.join(dir, n), 'utf8')) as StoreUser;
        out.push({ ...u, live: !u.stateDir || fs.existsSync(u.stateDir) });
      } catch {
        /* torn or foreign file: ignored (gc removes it) */
      }
    }
    return out;
  }

  /**
   * Remove every object that no layer references, no live container uses and is not in `inUse`;
   * drop registrations of dead containers (state directory gone) and leftovers of crashed imports.
   */
  gc(inUse: Set<string> = new Set()): GcResult {
    const res: GcResult = { removed: [], freedBytes: 0, deadUsers: [] };
    if (!fs.existsSync(this.dir)) return res;
    this.ensureDirs();
    return withLock(this.lockPath(), () => {
      const idx = this.readIndex();
      const keep = new Set<string>([...inUse].map((d) => `sha256:${digestHex(d)}`));
      for (const l of Object.values(idx.layers)) for (const f of l.files) keep.add(f.digest);
      for (const u of this.users()) {
        if (u.live) u.digests.forEach((d) => keep.add(d));
        else {
          res.deadUsers.push(u.id);
          this.releaseUse(u.id, u.stateDir);
        }
      }
      const objDir = path.join(this.dir, 'objects', 'sha256');
      for (const hex of fs.readdirSync(objDir)) {
        const d = `sha256:${hex}`;
        if (keep.has(d)) continue;
        const p = path.join(objDir, hex);
        res.freedBytes += fs.statSync(p).size;
        fs.unlinkSync(p);
        res.removed.push(d);
      }
      for (const d of Object.keys(idx.objects)) if (!keep.has(d)) delete idx.objects[d];
      for (const t of fs.readdirSync(path.join(this.dir, 'tmp'))) fs.rmSync(path.join(this.dir, 'tmp', t), { force: true, recursive: true });
      pruneDigestCaches(path.join(this.dir, 'cache'));
      this.writeIndex(idx);
      return res;
    });
  }

  private lockPath(): string {
    return path.join(this.dir, 'lock');
  }

  private userPath(id: string, stateDir?: string): string {
    const key = crypto.createHash('sha256').update(stateDir ? path.resolve(stateDir) : id).digest('hex').slice(0, 32);
    return path.join(this.dir, 'users', `${key}.json`);
  }

  private ensureDirs(): void {
    for (const d of ['objects/sha256', 'users', 'cache', 'tmp']) fs.mkdirSync(path.join(this.dir, d), { recursive: true, mode: 0o755 });
  }

  /** Copy `source` into the store as `digest` unless present. Caller holds the lock. */
  private importObject(source: string, digest: string, exec: boolean): void {
    const dest = this.objectPath(digest);
    const mode = exec ? 0o555 : 0o444;
    if (fs.existsSync(dest)) {
      if (exec && (fs.statSync(dest).mode & 0o111) === 0) fs.chmodSync(dest, mode);
      return;
    }
    const tmp = path.join(this.dir, 'tmp', `${digestHex(digest)}.${process.pid}`);
    fs.copyFileSync(source, tmp, fs.constants.COPYFILE_FICLONE);
    if (digestFile(tmp) !== digest) {
      fs.rmSync(tmp, { force: true });
      throw new ShoalError('INTERNAL', `${source} changed while it was imported`);
    }
    if (process.getuid?.() === 0) fs.chownSync(tmp, 0, 0);
    fs.chmodSync(tmp, mode);
    fs.renameSync(tmp, dest);
  }

  private readIndex(): Index {
    try {
      const v = JSON.parse(fs.readFileSync(path.join(this.dir, 'index.json'), 'utf8')) as Index;
      return v && v.version === 1 ? v : emptyIndex();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return emptyIndex();
      throw new ShoalError('INTERNAL', `layer store ${this.dir}: index.json: ${(e as Error).message}`);
    }
  }

  private writeIndex(idx: Index): void {
    atomicWrite(path.join(this.dir, 'index.json'), JSON.stringify(idx));
    atomicWrite(path.join(this.dir, 'sizes.json'), JSON.stringify([...new Set(Object.values(idx.objects).map((o) => o.size))]));
  }
}

/** The store at `dir`, or at the configured location (SHOAL_LAYER_STORE, config file, default). */
export function openLayerStore(dir?: string): LayerStore {
  return new LayerStore(storeDir(dir));
}
