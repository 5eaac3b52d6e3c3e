/**
 * Root filesystems and bundles of the memory benchmark (issue 7).
 *
 * A "copy" is a rootfs holding private copies (new inodes) of a host program, its ELF closure
 * (from ldd) and busybox, laid out at their host paths with the host's symlinks on the way
 * (Debian's /lib -> usr/lib, /lib64/ld-linux-x86-64.so.2 -> ../lib/..., /bin -> usr/bin), plus a
 * skeleton (/proc /sys /dev /tmp /etc/passwd ...). Two copies built one after the other hold
 * byte-identical files as different inodes: the page cache holds each file once per copy unless a
 * runtime makes the containers map one inode (shoal's layer store).
 */
import * as fs from 'fs';
import * as path from 'path';
import { execFileSync } from 'child_process';

/** Absolute paths of the shared objects `program` loads (ldd), the dynamic loader included. */
export function lddClosure(program: string): string[] {
  const out = execFileSync('ldd', [program], { encoding: 'utf8' });
  const libs: string[] = [];
  for (const line of out.split('\n')) {
    // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m) libs.push(m[1]);
    else if (/not found/.test(line)) throw new Error(`ldd ${program}: ${line.trim()}`);
  }
  return libs;
}

/**
 * Copies host file `hostPath` into `rootfs` at the same path, reproducing every symlink met on the
 * way (created once; their targets are placed too). Returns the rootfs-relative path of the
 * regular file copied, or null if it was already there.
 */
export function placeHostPath(rootfs: string, hostPath: string, depth = 0): string | null {
  if (depth > 40) throw new Error(`${hostPath}: too many symlinks`);
  const parts = hostPath.split('/').filter(Boolean);
  let cur = '/';
  for (let i = 0; i < parts.length; i++) {
    const next = path.join(cur, parts[i]);
    const dest = path.join(rootfs, next);
    const st = fs.lstatSync(next);
    if (st.isSymbolicLink()) {
      const target = fs.readlinkSync(next);
      if (!fs.existsSync(dest) && !isLink(dest)) {
        fs.mkdirSync(path.dirname(dest), { recursive: true });
        fs.symlinkSync(target, dest);
      }
      const resolved = path.resolve(cur, target);
      return placeHostPath(rootfs, path.join(resolved, ...parts.slice(i + 1)), depth + 1);
    }
    if (st.isDirectory()) {
      if (!fs.existsSync(dest)) fs.mkdirSync(dest, { mode: st.mode & 0o7777 });
      cur = next;
      continue;
    }
    if (i !== parts.length - 1) throw new Error(`${next} is not a directory`);
    if (fs.existsSync(dest)) return null;
    fs.copyFileSync(next, dest);
    fs.chmodSync(dest, st.mode & 0o7777);
    return next;
  }
  return null;
}

function isLink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

const SKELETON: Array<[string, number]> = [
  ['proc', 0o555], ['sys', 0o555], ['dev', 0o755], ['tmp', 0o1777], ['etc', 0o755], ['root', 0o700], ['run', 0o755],
];

export interface Copy {
  rootfs: string;
  /** Absolute host paths of the regular files holding program/library/busybox content. */
  files: string[];
  /** Where the program is inside the rootfs. */
  program: string;
}

/**
 * Builds one copy: `program` and its closure plus `busybox` (with a symlink per applet next to
 * it, where no file of that name exists) under `rootfs`.
 */
export function buildCopy(rootfs: string, program: string, busybox: string): Copy {
  fs.mkdirSync(rootfs, { recursive: true, mode: 0o755 });
  for (const [d, mode] of SKELETON) {
    fs.mkdirSync(path.join(rootfs, d), { recursive: true });
    fs.chmodSync(path.join(rootfs, d), mode);
  }
  fs.writeFileSync(path.join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  fs.writeFileSync(path.join(rootfs, 'etc/group'), 'root:x:0:\n');
  const files: string[] = [];
  for (const p of [program, ...lddClosure(program), busybox]) {
    const placed = placeHostPath(rootfs, p);
    if (placed) files.push(path.join(rootfs, placed));
  }
  const bbDir = path.dirname(fs.realpathSync(path.join(rootfs, busybox)));
  const applets = execFileSync(busybox, ['--list'], { encoding: 'utf8' })
    .split('\n').map((s) => s.trim()).filter((s) => s && s !== 'busybox' && !s.includes('/'));
  for (const a of applets) {
    const dest = path.join(bbDir, a);
    if (!fs.existsSync(dest) && !isLink(dest)) fs.symlinkSync('busybox', dest);
  }
  return { rootfs, files, program };
}

/** Regular files under `dir` (recursively, symlinks not followed). */
export function regularFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) out.push(p);
    }
  };
  if (fs.existsSync(dir)) walk(dir);
  return out;
}

/**
 * Writes `<dir>/config.json` from `runc spec` with root.path = `rootfs` (absolute, read-only),
 * terminal off, `args`, and `annotations`. Several containers may use one bundle at once.
 */
export function writeBundle(dir: string, runc: string, rootfs: string, args: string[], annotations: Record<string, string> = {}): string {
  fs.mkdirSync(dir, { recursive: true });
  execFileSync(runc, ['spec', '--bundle', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  const cfgPath = path.join(dir, 'config.json');
  const cfg = JSON.parse(fs.readFileSync(cfgPath, 'utf8'));
  cfg.process.terminal = false;
  cfg.process.args = args;
  cfg.root = { path: rootfs, readonly: true };
  if (Object.keys(annotations).length) cfg.annotations = annotations;
  fs.writeFileSync(cfgPath, JSON.stringify(cfg, null, 2));
  return dir;
}
