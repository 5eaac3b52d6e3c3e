/*
 * The shim socket address: the TypeScript implementation against known vectors (computed with
 * `printf %s PATH | sha256sum`) and the C launcher's fast path against the TypeScript one,
 * including config.json files built to fool a naive string search.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { goClean, groupId, NAMESPACE_GROUP, socketAddress, socketPath } from '../../shim/src/task/address';
import { repoRoot } from '../../shim/src/native';

const LAUNCHER = path.join(repoRoot(), 'build', 'Release', 'containerd-shim-shoal-v2');

test('known vectors', () => {
  // printf %s /run/containerd/containerd.sock/k8s.io/c1 | sha256sum
  assert.is(socketPath('/run/containerd/containerd.sock', 'k8s.io', 'c1'), '/run/containerd/s/ccd9e484aa63698a22b33f8964a2eb3d2a5c6e843ccac78fda28f084794782cd');
  // printf %s /run/containerd/containerd.sock/default/sbA | sha256sum (address not clean)
  assert.is(socketAddress('/run/containerd//containerd.sock/', 'default', 'sbA'), 'unix:///run/containerd/s/e93d62e25be56fabfe94792bf282a24d0677d024b9eb88c9dd820dfadb57b381');
  assert.ok(socketPath('/x', 'ns', 'id').length < 106);
});

test('goClean matches filepath.Clean', () => {
  const cases: [string, string][] = [
    ['', '.'], ['/', '/'], ['//a//b/', '/a/b'], ['/a/./b/../c', '/a/c'], ['/../a', '/a'], ['a/../..', '..'],
    ['../../x', '../../x'], ['a/b/../../..', '..'], ['./', '.'], ['/a/b/c/../../..', '/'],
  ];
  for (const [i, o] of cases) assert.is(goClean(i), o, i);
});

function bundleWith(json: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-addr-'));
  fs.writeFileSync(path.join(dir, 'config.json'), json);
  return dir;
}

function launcherAddress(dir: string, args: string[], env: NodeJS.ProcessEnv = {}): string {
  const r = spawnSync(LAUNCHER, [...args, 'socket-address'], { cwd: dir, encoding: 'utf8', env: { PATH: process.env.PATH, ...env } });
  assert.is(r.status, 0, r.stderr);
  return r.stdout.trim();
}

const CONFIGS: [string, string][] = [
  ['no annotations', '{"ociVersion":"1.2.0","process":{"args":["sh"]}}'],
  ['group annotation wins', '{"annotations":{"io.kubernetes.cri.sandbox-id":"sb1","io.containerd.runc.v2.group":"grp"}}'],
  ['sandbox id', '{"annotations":{"io.kubernetes.cri.sandbox-id":"sb1"}}'],
  ['escaped quote in the value', '{"annotations":{"io.containerd.runc.v2.group":"g\\"1\\\\x"}}'],
  ['unicode escapes', '{"annotations":{"io.containerd.runc.v2.group":"\\u00e9\\ud83d\\ude00/\\/"}}'],
  ['decoy inside a string', '{"process":{"env":["X=\\"annotations\\":{\\"io.containerd.runc.v2.group\\":\\"bad\\"}"]},"annotations":{"a":"\\"io.containerd.runc.v2.group\\": \\"bad2\\""}}'],
  ['nested annotations are not the top level', '{"linux":{"annotations":{"io.containerd.runc.v2.group":"bad"}},"annotations":{}}'],
  ['empty value falls through', '{"annotations":{"io.containerd.runc.v2.group":"","io.kubernetes.cri.sandbox-id":"sb2"}}'],
  ['non-string value ignored', '{"annotations":{"io.containerd.runc.v2.group":{"x":[1,2,{"y":null}]},"io.kubernetes.cri.sandbox-id":"sb3"}}'],
  ['last duplicate wins', '{"annotations":{"io.containerd.runc.v2.group":"a"},"annotations":{"io.containerd.runc.v2.group":"b"}}'],
  ['whitespace and numbers', ' {\n "x": -1.5e+3, "y": [true, false, null],\n "annotations" : { "io.containerd.runc.v2.group" : "ws" } }\n'],
  ['malformed json', '{"annotations":{"io.containerd.runc.v2.group":"x"'],
];

for (const [name, json] of CONFIGS) {
  test(`launcher matches TypeScript: ${name}`, () => {
    const dir = bundleWith(json);
    try {
      const want = socketAddress('/run/containerd/containerd.sock', 'default', groupId('ctr-1', dir));
      assert.is(launcherAddress(dir, ['-namespace', 'default', '-address', '/run/containerd/containerd.sock', '-publish-binary', '/usr/bin/containerd', '-id', 'ctr-1']), want);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('launcher: flag forms, NAMESPACE env and per-namespace grouping', () => {
  const dir = bundleWith('{"annotations":{"io.containerd.runc.v2.group":"g"}}');
  try {
    // Without -namespace the launcher takes NAMESPACE from the env, as containerd sets it.
    assert.is(launcherAddress(dir, ['--address=/a.sock', '-id=c', '-debug'], { NAMESPACE: 'ns1' }), socketAddress('/a.sock', 'ns1', 'g'));
    assert.is(launcherAddress(dir, ['-namespace=ns1', '--address', '/a.sock', '--id', 'c']), socketAddress('/a.sock', 'ns1', 'g'));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const d2 = bundleWith('{}');
  try {
    assert.is(launcherAddress(d2, ['-namespace', 'n', '-address', '/a.sock', '-id', 'c1'], { SHOAL_SHIM_GROUPING: 'namespace' }), launcherAddress(d2, ['-namespace', 'n', '-address', '/a.sock', '-id', 'c2'], { SHOAL_SHIM_GROUPING: 'namespace' }));
    // Default: no group annotation and no sandbox id -> the namespace is the group.
    assert.is(launcherAddress(d2, ['-namespace', 'n', '-address', '/a.sock', '-id', 'c1']), launcherAddress(d2, ['-namespace', 'n', '-address', '/a.sock', '-id', 'c2']));
    assert.is(launcherAddress(d2, ['-namespace', 'n', '-address', '/a.sock', '-id', 'c1']), socketAddress('/a.sock', 'n', NAMESPACE_GROUP));
    assert.is(groupId('c1', d2, {}), NAMESPACE_GROUP);
    // SHOAL_SHIM_GROUPING=container: one shim per container, as runc's shim.
    assert.is.not(launcherAddress(d2, ['-namespace', 'n', '-address', '/a.sock', '-id', 'c1'], { SHOAL_SHIM_GROUPING: 'container' }), launcherAddress(d2, ['-namespace', 'n', '-address', '/a.sock', '-id', 'c2'], { SHOAL_SHIM_GROUPING: 'container' }));
    assert.is(groupId('c1', d2, { SHOAL_SHIM_GROUPING: 'container' }), 'c1');
    assert.is(groupId('c1', d2, { SHOAL_SHIM_GROUPING: 'namespace' }), groupId('c2', d2, { SHOAL_SHIM_GROUPING: 'namespace' }));
  } finally {
    fs.rmSync(d2, { recursive: true, force: true });
  }
});

test('launcher start: a live shim socket is answered without Node', async () => {
  const dir = bundleWith('{}');
  const net = await import('net');
  const addr = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-grpc-'));
  const sock = socketPath(path.join(addr, 'c.sock'), 'default', NAMESPACE_GROUP);
  // Leave the host as found: remove the socket directories if this test created them.
  const created = ['/run/containerd', '/run/containerd/s'].filter((d) => !fs.existsSync(d));
  fs.mkdirSync(path.dirname(sock), { recursive: true, mode: 0o700 });
  const server = net.createServer((c) => c.destroy());
  await new Promise<void>((r) => server.listen(sock, r));
  try {
    // SHOAL_NODE points at false(1): reaching Node would fail the start.
    const r = spawnSync(LAUNCHER, ['-namespace', 'default', '-address', path.join(addr, 'c.sock'), '-publish-binary', 'x', '-id', 'live-1', 'start'], {
      cwd: dir, input: 'options', encoding: 'utf8', env: { PATH: process.env.PATH, SHOAL_NODE: '/bin/false' },
    });
    assert.is(r.status, 0, r.stderr);
    assert.is(r.stdout, `unix://${sock}`);
  } finally {
    await new Promise((r) => server.close(r));
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(addr, { recursive: true, force: true });
    for (const d of created.reverse()) fs.rmdirSync(d);
  }
});

test('launcher: other actions exec Node with the same arguments', () => {
  const dir = bundleWith('{}');
  try {
    const script = path.join(dir, 'entry.js');
    fs.writeFileSync(script, 'process.stdout.write(JSON.stringify(process.argv.slice(2)))');
    // A `delete` with work left (an init.pid) is Node's; a clean one the launcher answers itself.
    fs.writeFileSync(path.join(dir, 'init.pid'), '1');
    const r = spawnSync(LAUNCHER, ['-namespace', 'n', '-id', 'x', '-bundle', dir, 'delete'], { encoding: 'utf8', env: { PATH: process.env.PATH, SHOAL_SHIM_ENTRY: script, SHOAL_NODE: process.execPath } });
    assert.is(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout), ['-namespace', 'n', '-id', 'x', '-bundle', dir, 'delete']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
