/**
 * Per-rootfs cache of file digests, so a rootfs is hashed once, not at every create. One JSON
 * file per rootfs directory, named by the rootfs root's identity: `<store>/cache/<dev>-<ino>.json`,
 * holding {rootfs, files: {relpath: [identity, digest | "", sharedObject 0/1/-1]}} where the
 * identity is "dev:ino:size:mtime_ns:ctime_ns" of the file. An entry is reused only when the
 * file's identity is unchanged (any write, chmod, rename or relink changes ctime).
 */
import * as fs from 'fs';
import * as path from 'path';
import { digestFile } from './hash';
import { atomicWrite } from './atomic';

type Entry = [identity: string, digest: string, sharedObject: number];

/** The identity of a file from a bigint lstat: dev, ino, size, mtime and ctime in nanoseconds. */
export function fileIdentity(st: fs.BigIntStats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

/** The digest cache of one rootfs directory. Call {@link save} once after the lookups. */
export class DigestCache {
  /** The cache file. */
  readonly file: string;
  private files: Record<string, Entry> = {};
  private seen = new Set<string>();
  private dirty = false;
  /** How many digests were computed (not found in the cache) by this instance. */
  hashed = 0;

  constructor(
    readonly cacheDir: string,
    readonly rootfs: string,
  ) {
    const st = fs.statSync(rootfs, { bigint: true });
    this.file = path.join(cacheDir, `${st.dev}-${st.ino}.json`);
    try {
      const v = JSON.parse(fs.readFileSync(this.file, 'utf8'));
      if (v && v.rootfs === path.resolve(rootfs) && v.files) this.files = v.files;
    } catch {
      /* no or bad cache: start empty */
    }
  }

  private entry(rel: string, st: fs.BigIntStats): Entry {
    this.seen.add(rel);
    const id = fileIdentity(st);
    const e = this.files[rel];
    if (e && e[0] === id) return e;
    this.dirty = true;
    return (this.files[rel] = [id, '', -1]);
  }

  /** The digest of rootfs file `rel` (lstat'ed as `st`), from the cache or computed now. */
  digest(rel: string, st: fs.BigIntStats): string {
    const e = this.entry(rel, st);
    if (!e[1]) {
      e[1] = digestFile(path.join(this.rootfs, rel));
      this.hashed++;
      this.dirty = true;
    }
    return e[1];
  }

  /** A cached yes/no property of the file (whether it is an ELF shared object), computed once. */
  sharedObject(rel: string, st: fs.BigIntStats, compute: () => boolean): boolean {
    const e = this.entry(rel, st);
    if (e[2] < 0) {
      e[2] = compute() ? 1 : 0;
      this.dirty = true;
    }
    return e[2] === 1;
  }

  /**
   * Write the cache back when it changed. Entries not looked up this time are kept while their
   * file exists (a `libs` create must not drop what an `all` create of the same rootfs hashed);
   * entries of vanished files are dropped. A changed file is caught by its identity on lookup.
   */
  save(): void {
    for (const k of Object.keys(this.files)) {
      if (this.seen.has(k)) continue;
      if (!fs.lstatSync(path.join(this.rootfs, k), { throwIfNoEntry: false })) {
        delete this.files[k];
        this.dirty = true;
      }
    }
    if (!this.dirty) return;
    try {
      fs.mkdirSync(this.cacheDir, { recursive: true });
      atomicWrite(this.file, JSON.stringify({ rootfs: path.resolve(this.rootfs), files: this.files }));
    } catch {
      /* a read-only store still shares; it just hashes again next time */
    }
  }
}

/** Remove cache files whose rootfs no longer exists (or is another directory now). */
export function pruneDigestCaches(cacheDir: string): number {
  let n = 0;
  let names: string[] = [];
  try {
    names = fs.readdirSync(cacheDir).filter((f) => f.endsWith('.json'));
  } catch {
    return 0;
  }
  for (const name of names) {
    const file = path.join(cacheDir, name);
    let keep = false;
    try {
      const { rootfs } = JSON.parse(fs.readFileSync(file, 'utf8'));
      const st = fs.statSync(rootfs, { bigint: true });
      keep = `${st.dev}-${st.ino}.json` === name;
    } catch {
      keep = false;
    }
    if (!keep) {
      fs.rmSync(file, { force: true });
      n++;
    }
  }
  return n;
}
