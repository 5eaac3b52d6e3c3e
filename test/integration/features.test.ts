/*
 * What shoal says about itself: `--version` in runc's format (callers parse `spec: 1.x.y`), and
 * `features` as the runtime-spec features.md JSON document. Also `spec`, whose default config
 * must be usable as is (terminal aside).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runShoal, tmpRoot, uniqueId, withCleanup, removeRoot } from '../lib/shoal';
import { makeBundle } from '../lib/rootfs';

const semver = /^(\d+)\.(\d+)\.(\d+)(-[\w.]+)?$/;
const cmpVersion = (a: string, b: string) => {
  const x = semver.exec(a)!.slice(1, 4).map(Number), y = semver.exec(b)!.slice(1, 4).map(Number);
  return x[0] - y[0] || x[1] - y[1] || x[2] - y[2];
};

function features(): any {
  const r = runShoal(['features']);
  assert.is(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

test('--version: first line "shoal version X", then "spec: 1.x.y"; -v is the same', () => {
  const r = runShoal(['--version']);
  assert.is(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.match(lines[0], /^shoal version \S+$/);
  const spec = lines.find((l) => l.startsWith('spec: '));
  assert.ok(spec, `no spec line in ${JSON.stringify(r.stdout)}`);
  assert.match(spec!.slice(6), semver);
  assert.ok(spec!.slice(6).startsWith('1.'), spec);
  assert.is(runShoal(['-v']).stdout, r.stdout);
  assert.is(r.stderr, '');
});

test('features prints valid JSON with the features.md fields', () => {
  const f = features();
  assert.match(f.ociVersionMin, semver);
  assert.match(f.ociVersionMax, semver);
  assert.ok(cmpVersion(f.ociVersionMin, f.ociVersionMax) <= 0, 'ociVersionMin <= ociVersionMax');
  const specLine = runShoal(['--version']).stdout.split('\n').find((l) => l.startsWith('spec: '))!;
  assert.is(f.ociVersionMax, specLine.slice(6), 'ociVersionMax is the spec version --version reports');
  assert.equal([...f.hooks].sort(), ['createContainer', 'createRuntime', 'poststart', 'poststop', 'prestart', 'startContainer']);
  assert.ok(Array.isArray(f.mountOptions));
  for (const o of ['ro', 'rw', 'bind', 'rbind', 'nosuid', 'nodev', 'noexec', 'rprivate', 'rslave', 'rshared', 'relatime', 'strictatime']) {
    assert.ok(f.mountOptions.includes(o), `mountOptions lacks ${o}`);
  }
  assert.is(new Set(f.mountOptions).size, f.mountOptions.length, 'mountOptions has duplicates');
});

test('features.linux: namespaces, capabilities, cgroup, seccomp', () => {
  const l = features().linux;
  assert.type(l, 'object');
  for (const ns of ['cgroup', 'ipc', 'mount', 'network', 'pid', 'user', 'uts']) assert.ok(l.namespaces.includes(ns), `namespaces lacks ${ns}`);
  for (const ns of l.namespaces) assert.ok(['cgroup', 'ipc', 'mount', 'network', 'pid', 'user', 'uts', 'time'].includes(ns), `not a spec namespace name: ${ns}`);
  const lastCap = Number(fs.readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8'));
  assert.ok(l.capabilities.length >= Math.min(lastCap + 1, 41), `only ${l.capabilities.length} capabilities`);
  for (const c of ['CAP_CHOWN', 'CAP_SYS_ADMIN', 'CAP_NET_ADMIN', 'CAP_KILL', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE']) assert.ok(l.capabilities.includes(c), `capabilities lacks ${c}`);
  for (const c of l.capabilities) assert.match(c, /^CAP_[A-Z_]+$/);
  assert.type(l.cgroup, 'object');
  for (const k of ['v1', 'v2', 'systemd']) assert.type(l.cgroup[k], 'boolean', `cgroup.${k}`);
  assert.ok(l.cgroup.v1 && l.cgroup.v2, 'this host needs v1 and v2 (hybrid)');
  assert.is(l.seccomp.enabled, true);
  for (const a of ['SCMP_ACT_ALLOW', 'SCMP_ACT_ERRNO', 'SCMP_ACT_KILL', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_LOG', 'SCMP_ACT_TRAP']) assert.ok(l.seccomp.actions.includes(a), `seccomp.actions lacks ${a}`);
  for (const o of ['SCMP_CMP_EQ', 'SCMP_CMP_NE', 'SCMP_CMP_MASKED_EQ']) assert.ok(l.seccomp.operators.includes(o), `seccomp.operators lacks ${o}`);
  assert.ok(l.seccomp.archs.includes('SCMP_ARCH_X86_64'));
  for (const fl of l.seccomp.supportedFlags ?? []) assert.ok(l.seccomp.knownFlags.includes(fl), `supported flag ${fl} is not a known flag`);
});

test('features rejects an unknown flag', () => {
  const r = runShoal(['features', '--bogus']);
  assert.ok(r.code !== 0 && /bogus/.test(r.stderr), r.stderr);
});

test('spec writes a default config.json that runs (terminal off), and refuses to overwrite it', async () => {
  await withCleanup(async (defer) => {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-feat-'));
    defer(() => fs.rmSync(work, { recursive: true, force: true }));
    const bundle = makeBundle({}, { dir: path.join(work, 'bundle') });
    fs.rmSync(path.join(bundle, 'config.json'));
    const r = runShoal(['spec', '--bundle', bundle]);
    assert.is(r.code, 0, r.stderr);
    const spec = JSON.parse(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8'));
    assert.match(spec.ociVersion, semver);
    assert.is(spec.root.path, 'rootfs');
    assert.equal(spec.process.args, ['sh']);
    const again = runShoal(['spec', '--bundle', bundle]);
    assert.ok(again.code !== 0 && /exists/.test(again.stderr), again.stderr);
    spec.process.terminal = false;
    spec.process.args = ['sh', '-c', 'echo default-spec-ok'];
    fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(spec));
    const root = tmpRoot();
    defer(() => removeRoot(root));
    const run = runShoal(['run', '-b', bundle, uniqueId('ft')], { root });
    assert.is(run.code, 0, run.stderr);
    assert.is(run.stdout, 'default-spec-ok\n');
  });
});

test.run();
