/*
 * Side by side with runc (the reference, /usr/sbin/runc): the same bundle run by both must give
 * the process the same capabilities, seccomp mode, no_new_privs, ids, mounts (destination,
 * fstype, options), hostname and rlimits. Two configs: a hardened one (uid 1000, extra groups,
 * reduced capabilities, NOFILE, a seccomp profile) and runc's own `runc spec` default.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { execFileSync, spawnSync } from 'child_process';
import { shoalBin, tmpRoot, uniqueId, withCleanup, forceDelete, removeRoot, Defer } from '../lib/shoal';
import { makeBundle } from '../lib/rootfs';
import type { Spec } from '../../spec/src/config';

const RUNC = '/usr/sbin/runc';

/** What the container reports, one "== section" per aspect. */
const SCRIPT = [
  "echo '== status'; grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|Seccomp|NoNewPrivs|Sig(Ign|Blk)):' /proc/self/status",
  "echo '== id'; id",
  "echo '== hostname'; hostname",
  "echo '== limits'; cat /proc/self/limits",
  "echo '== mounts'; cat /proc/self/mountinfo",
  "echo '== mkdir'; mkdir /tmp/newdir 2>&1; echo rc=$?",
].join('; ');

type Report = Record<string, string>;

/** "id parent maj:min root mountpoint opts [optional...] - fstype source superopts" -> comparable line. */
function normalizeMount(line: string): string {
  const f = line.split(' ');
  const dash = f.indexOf('-');
  return `${f[4]} ${f[dash + 1]} ${f[5]} ${f[dash + 3]}`;
}

function parse(out: string): Report {
  const r: Report = {};
  let cur = '';
  for (const line of out.split('\n')) {
    const m = /^== (\w+)$/.exec(line);
    if (m) {
      cur = m[1];
      r[cur] = '';
    } else if (cur && line) {
      r[cur] += line + '\n';
    }
  }
  r.mounts = (r.mounts ?? '').trim().split('\n').filter(Boolean).map(normalizeMount).sort().join('\n');
  return r;
}

function runBoth(defer: Defer, bundle: string): { runc: Report; shoal: Report } {
  const runcRoot = tmpRoot('shoal-parity-runc-');
  const shoalRoot = tmpRoot();
  const id = uniqueId('par');
  defer(() => fs.rmSync(runcRoot, { recursive: true, force: true }));
  defer(() => spawnSync(RUNC, ['--root', runcRoot, 'delete', '--force', id]));
  defer(() => removeRoot(shoalRoot));
  defer(() => forceDelete(id, shoalRoot));
  const opts = { encoding: 'utf8' as const, timeout: 30_000, stdio: ['ignore', 'pipe', 'pipe'] as ['ignore', 'pipe', 'pipe'] };
  const a = spawnSync(RUNC, ['--root', runcRoot, 'run', '--bundle', bundle, id], opts);
  assert.is(a.status, 0, `runc: ${a.stderr}`);
  const b = spawnSync(process.execPath, [shoalBin(), '--root', shoalRoot, 'run', '--bundle', bundle, id], opts);
  assert.is(b.status, 0, `shoal: ${b.stderr}`);
  return { runc: parse(a.stdout), shoal: parse(b.stdout) };
}

function compare(r: { runc: Report; shoal: Report }, keys = ['status', 'id', 'hostname', 'limits', 'mounts', 'mkdir']): void {
  for (const k of keys) {
    assert.ok(r.runc[k] !== undefined && r.runc[k] !== '', `runc printed no ${k}`);
    assert.fixture(r.shoal[k] ?? '', r.runc[k], `${k} differs from runc (- runc, + shoal... see diff)`);
  }
}

function bundleDir(defer: Defer): string {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-parity-'));
  defer(() => fs.rmSync(work, { recursive: true, force: true }));
  return path.join(work, 'bundle');
}

test('hardened config: uid 1000 + groups, reduced caps, NOFILE, seccomp — same as runc', async () => {
  await withCleanup(async (defer) => {
    const caps = ['CAP_KILL', 'CAP_NET_BIND_SERVICE'];
    const bundle = makeBundle(
      {
        hostname: 'parity',
        process: {
          args: ['sh', '-c', SCRIPT],
          user: { uid: 1000, gid: 1000, additionalGids: [10, 20] },
          capabilities: { bounding: [...caps, 'CAP_CHOWN'], effective: caps, permitted: caps, inheritable: ['CAP_NET_BIND_SERVICE'], ambient: ['CAP_NET_BIND_SERVICE'] },
          rlimits: [{ type: 'RLIMIT_NOFILE', soft: 512, hard: 1024 }, { type: 'RLIMIT_NPROC', soft: 300, hard: 400 }],
          noNewPrivileges: true,
        },
        linux: {
          seccomp: {
            defaultAction: 'SCMP_ACT_ALLOW',
            architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
            syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO' }],
          },
        },
      },
      { dir: bundleDir(defer) },
    );
    const r = runBoth(defer, bundle);
    assert.match(r.runc.mkdir, /rc=1/, 'the seccomp profile works under runc');
    assert.match(r.runc.status, /Seccomp:\s+2/);
    assert.match(r.runc.id, /uid=1000/);
    compare(r);
  });
});

test('`runc spec` default config (terminal false) — same as runc', async () => {
  await withCleanup(async (defer) => {
    const bundle = makeBundle({}, { dir: bundleDir(defer) });
    fs.rmSync(path.join(bundle, 'config.json'));
    execFileSync(RUNC, ['spec', '--bundle', bundle]);
    const spec: Spec = JSON.parse(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8'));
    spec.process!.terminal = false;
    spec.process!.args = ['sh', '-c', SCRIPT];
    fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(spec, null, 2));
    const r = runBoth(defer, bundle);
    assert.match(r.runc.hostname, /^runc$/m);
    compare(r);
  });
});

test('`runc spec` default config without the cgroup mount — same as runc', async () => {
  // Isolates the /sys/fs/cgroup mount (hybrid hierarchy here) from every other difference.
  await withCleanup(async (defer) => {
    const bundle = makeBundle({}, { dir: bundleDir(defer) });
    fs.rmSync(path.join(bundle, 'config.json'));
    execFileSync(RUNC, ['spec', '--bundle', bundle]);
    const spec: Spec = JSON.parse(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8'));
    spec.process!.terminal = false;
    spec.process!.args = ['sh', '-c', SCRIPT];
    spec.mounts = spec.mounts!.filter((m) => m.type !== 'cgroup');
    fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(spec, null, 2));
    compare(runBoth(defer, bundle));
  });
});

test.run();
