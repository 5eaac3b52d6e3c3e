#!/usr/bin/env node
/**
 * The README's quick start: run a real, isolated container with no image at all. The rootfs is
 * an empty skeleton; the host's /usr is bind-mounted read-only into it (with the merged-/usr
 * symlinks mirrored), so the container runs the host's own /bin/sh.
 *
 *   sudo npm run demo            # or: sudo node build/shim/src/demo.js [command...]
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { defaultSpec } from '../../spec/src/default-spec';

const SCRIPT = [
  'echo "hostname:     $(hostname)   (host: HOSTNAME_OF_HOST)"',
  'echo "my pid:       $$"',
  'echo "processes:    $(ls /proc | grep -c "^[0-9]")"',
  'echo "mounts:       $(wc -l < /proc/self/mountinfo)   (host: MOUNTS_OF_HOST)"',
  'echo "root is read-only: $(touch /x 2>/dev/null && echo no || echo yes)"',
].join('; ');

function main(): number {
  if (process.getuid && process.getuid() !== 0) {
    process.stderr.write('demo: shoal needs root to create namespaces and mounts (try: sudo npm run demo)\n');
    return 1;
  }
  const bundle = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-demo-'));
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-demo-root-'));
  const rootfs = path.join(bundle, 'rootfs');
  try {
    fs.mkdirSync(rootfs);
    for (const d of ['usr', 'proc', 'dev', 'sys', 'tmp', 'etc']) fs.mkdirSync(path.join(rootfs, d));
    // Mirror merged-/usr symlinks (/bin -> usr/bin ...), or bind the real directories.
    const extra: { destination: string; type: string; source: string; options: string[] }[] = [];
    for (const d of ['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32']) {
      const host = `/${d}`;
      if (!fs.existsSync(host)) continue;
      const st = fs.lstatSync(host);
      if (st.isSymbolicLink()) fs.symlinkSync(fs.readlinkSync(host), path.join(rootfs, d));
      else extra.push({ destination: host, type: 'bind', source: host, options: ['rbind', 'ro', 'nosuid'] });
    }
    const spec = defaultSpec({});
    const hostMounts = fs.readFileSync('/proc/self/mountinfo', 'utf8').trim().split('\n').length;
    const script = process.argv.length > 2 ? process.argv.slice(2) : ['/bin/sh', '-c', SCRIPT.replace('HOSTNAME_OF_HOST', os.hostname()).replace('MOUNTS_OF_HOST', String(hostMounts))];
    spec.process!.terminal = false;
    spec.process!.args = script;
    spec.hostname = 'shoal-demo';
    spec.mounts = [...(spec.mounts ?? []), { destination: '/usr', type: 'bind', source: '/usr', options: ['rbind', 'ro', 'nosuid'] }, ...extra];
    fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(spec, null, 2));
    const cli = path.join(__dirname, 'cli', 'main.js');
    process.stdout.write(`running ${script.join(' ').slice(0, 60)}... in a new container (bundle ${bundle})\n`);
    const r = spawnSync(process.execPath, [cli, '--root', root, 'run', '--bundle', bundle, `demo-${process.pid}`], { stdio: 'inherit' });
    return r.status ?? 1;
  } finally {
    fs.rmSync(bundle, { recursive: true, force: true });
    fs.rmSync(root, { recursive: true, force: true });
  }
}

process.exitCode = main();
