/**
 * Busybox root filesystems for test containers.
 *
 * A base rootfs is built once per run from the host's static busybox (every applet symlinked
 * into /bin) plus, optionally, the static shoal-probe at /probe; each case then gets a cheap
 * clone of it (directories re-created, regular files hard-linked, symlinks re-made) so a case
 * can scribble on its own tree without a full copy.
 */
import * as fs from 'fs';
import * as path from 'path';
import { execFileSync } from 'child_process';

/** Options for {@link buildBusyboxRootfs}. */
export interface RootfsOptions {
  /** Path of a statically linked busybox (default: /bin/busybox, then /usr/bin/busybox). */
  busybox?: string;
  /** Path of a static binary to install as /probe (mode 0755); omitted when not given. */
  probe?: string;
  /** Extra files to write into the rootfs: rootfs-relative path -> contents. */
  files?: Record<string, string>;
}

/** Finds a busybox binary on the host, or returns null. */
export function findBusybox(): string | null {
  for (const p of ['/bin/busybox', '/usr/bin/busybox', '/usr/local/bin/busybox']) {
    if (fs.existsSync(p)) return p;
  }
  return null;
}

const DIRS: Array<[string, number]> = [
  ['bin', 0o755], ['dev', 0o755], ['etc', 0o755], ['proc', 0o555], ['sys', 0o555],
  ['tmp', 0o1777], ['root', 0o700], ['mnt', 0o755], ['run', 0o755], ['var', 0o755],
  ['var/tmp', 0o1777], ['home', 0o755], ['usr', 0o755], ['opt', 0o755],
];

/**
 * Builds a minimal busybox root filesystem in `dir` (created if missing): the standard top-level
 * directories, /bin/busybox with a symlink per applet, /sbin and /usr/bin pointing at /bin,
 * /etc/passwd and /etc/group with root and nobody, and optionally /probe. Returns `dir`.
 * Throws when no busybox is found.
 */
export function buildBusyboxRootfs(dir: string, opts: RootfsOptions = {}): string {
  const busybox = opts.busybox ?? findBusybox();
  if (!busybox) throw new Error('busybox not found (apt-get install busybox-static)');
  fs.mkdirSync(dir, { recursive: true });
  fs.chmodSync(dir, 0o755);
  for (const [d, mode] of DIRS) {
    const p = path.join(dir, d);
    fs.mkdirSync(p, { recursive: true });
    fs.chmodSync(p, mode);
  }
  const bb = path.join(dir, 'bin/busybox');
  fs.copyFileSync(busybox, bb);
  fs.chmodSync(bb, 0o755);
  const list = execFileSync(busybox, ['--list'], { encoding: 'utf8' })
    .split('\n').map((s) => s.trim()).filter((s) => s && s !== 'busybox' && !s.includes('/'));
  for (const applet of list) {
    const link = path.join(dir, 'bin', applet);
    if (!fs.existsSync(link)) fs.symlinkSync('busybox', link);
  }
  symlinkIfMissing('bin', path.join(dir, 'sbin'));
  symlinkIfMissing('../bin', path.join(dir, 'usr/bin'));
  symlinkIfMissing('../bin', path.join(dir, 'usr/sbin'));
  const files: Record<string, string> = {
    'etc/passwd': 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n',
    'etc/group': 'root:x:0:\nnobody:x:65534:\n',
    'etc/hostname': 'busybox\n',
    ...opts.files,
  };
  for (const [rel, text] of Object.entries(files)) {
    const p = path.join(dir, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, text, { mode: 0o644 });
  }
  if (opts.probe) {
    const p = path.join(dir, 'probe');
    fs.copyFileSync(opts.probe, p);
    fs.chmodSync(p, 0o755);
  }
  return dir;
}

function symlinkIfMissing(target: string, link: string): void {
  try {
    fs.lstatSync(link);
  } catch {
    fs.symlinkSync(target, link);
  }
}

/**
 * Clones a rootfs tree from `src` to `dest`: directories are re-created with their modes,
 * regular files hard-linked (copied when linking fails, e.g. across filesystems), symlinks
 * re-created. Much cheaper than a copy; callers must not modify shared files in place.
 */
export function cloneRootfs(src: string, dest: string): void {
  const st = fs.lstatSync(src);
  fs.mkdirSync(dest, { recursive: true });
  fs.chmodSync(dest, st.mode & 0o7777);
  for (const ent of fs.readdirSync(src, { withFileTypes: true })) {
    const s = path.join(src, ent.name);
    const d = path.join(dest, ent.name);
    if (ent.isDirectory()) {
      cloneRootfs(s, d);
    } else if (ent.isSymbolicLink()) {
      fs.symlinkSync(fs.readlinkSync(s), d);
    } else {
      try {
        fs.linkSync(s, d);
      } catch {
        fs.copyFileSync(s, d);
        fs.chmodSync(d, fs.statSync(s).mode & 0o7777);
      }
    }
  }
}
