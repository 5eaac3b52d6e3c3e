/**
 * The benchmark bundle: a busybox-static rootfs (/bin/busybox plus a symlink per applet) and the
 * config.json that `runc spec` generates, with terminal false and args ['/bin/true']. One bundle
 * serves all runtimes (they run one after another, never concurrently).
 */
import * as fs from 'fs';
import * as path from 'path';
import { execFileSync } from 'child_process';

const DIRS: Array<[string, number]> = [
  ['bin', 0o755], ['dev', 0o755], ['etc', 0o755], ['proc', 0o555], ['sys', 0o555], ['tmp', 0o1777],
  ['root', 0o700], ['run', 0o755], ['var', 0o755], ['usr', 0o755],
];

/** Finds a static busybox on the host, or null. */
export function findBusybox(): string | null {
  for (const p of ['/bin/busybox', '/usr/bin/busybox', '/usr/local/bin/busybox']) if (fs.existsSync(p)) return p;
  return null;
}

/** Writes `<dir>/rootfs` and `<dir>/config.json`; `runc` generates the default spec. Returns dir. */
export function makeBundle(dir: string, runc: string, args: string[] = ['/bin/true']): string {
  const busybox = findBusybox();
  if (!busybox) throw new Error('busybox not found (apt-get install busybox-static)');
  const rootfs = path.join(dir, 'rootfs');
  fs.mkdirSync(rootfs, { recursive: true, mode: 0o755 });
  for (const [d, mode] of DIRS) {
    fs.mkdirSync(path.join(rootfs, d), { recursive: true });
    fs.chmodSync(path.join(rootfs, d), mode);
  }
  fs.copyFileSync(busybox, path.join(rootfs, 'bin/busybox'));
  fs.chmodSync(path.join(rootfs, 'bin/busybox'), 0o755);
  const applets = execFileSync(busybox, ['--list'], { encoding: 'utf8' })
    .split('\n').map((s) => s.trim()).filter((s) => s && s !== 'busybox' && !s.includes('/'));
  for (const a of applets) fs.symlinkSync('busybox', path.join(rootfs, 'bin', a));
  fs.symlinkSync('bin', path.join(rootfs, 'sbin'));
  fs.symlinkSync('../bin', path.join(rootfs, 'usr/bin'));
  fs.writeFileSync(path.join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  fs.writeFileSync(path.join(rootfs, 'etc/group'), 'root:x:0:\n');

  execFileSync(runc, ['spec', '--bundle', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  const cfgPath = path.join(dir, 'config.json');
  const cfg = JSON.parse(fs.readFileSync(cfgPath, 'utf8'));
  cfg.process.terminal = false;
  cfg.process.args = args;
  fs.writeFileSync(cfgPath, JSON.stringify(cfg, null, 2));
  return dir;
}
