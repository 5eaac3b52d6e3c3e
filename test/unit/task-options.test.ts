/*
 * Runtime options of the shim (runc Options, CRI runtimeoptions TOML, the start stdin Any) and
 * the exact uint64 handling of the Stats payload.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { checkOptions, DEFAULT_OPTIONS, parseOptionsAny, parseStartOptions, parseTomlPairs } from '../../shim/src/task/options';
import { exactUint64 } from '../../shim/src/task/metrics';
import { decode, encode, packMessage, types } from '../../shim/src/ttrpc/proto';

test('parseTomlPairs: strings, booleans, integers; sub-tables and comments skipped', () => {
  const toml = [
    '# options of the shoal runtime',
    'BinaryName = "/usr/bin/x" # trailing comment',
    "Root = '/run/literal'",
    'SystemdCgroup = true',
    'IoUid = 1_000',
    '"NoPivotRoot" = false',
    '[sub]',
    'SystemdCgroup = false',
  ].join('\n');
  assert.equal(parseTomlPairs(toml), [
    ['BinaryName', '/usr/bin/x'],
    ['Root', '/run/literal'],
    ['SystemdCgroup', true],
    ['IoUid', 1000],
    ['NoPivotRoot', false],
  ]);
});

test('parseOptionsAny: containerd.runc.v1.Options', () => {
  const any = packMessage('containerd.runc.v1.Options', { no_pivot_root: true, io_uid: 7, io_gid: 8, root: '/run/r', systemd_cgroup: false });
  assert.equal(parseOptionsAny(any), { ...DEFAULT_OPTIONS, noPivotRoot: true, ioUid: 7, ioGid: 8, root: '/run/r' });
});

test('parseOptionsAny: CRI config_body (2.x package) and config_path (1.6 package)', () => {
  const body = packMessage('runtimeoptions.v1.Options', { config_body: Buffer.from('SystemdCgroup = true\nNoPivotRoot = true\n') });
  assert.equal(parseOptionsAny(body), { ...DEFAULT_OPTIONS, systemdCgroup: true, noPivotRoot: true });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-opts-'));
  try {
    fs.writeFileSync(path.join(dir, 'shoal.toml'), 'io_uid = 5\nio_gid = 6\n');
    const file = packMessage('cri.runtimeoptions.v1.Options', { config_path: path.join(dir, 'shoal.toml') });
    assert.equal(parseOptionsAny(file), { ...DEFAULT_OPTIONS, ioUid: 5, ioGid: 6 });
    const missing = packMessage('cri.runtimeoptions.v1.Options', { config_path: path.join(dir, 'nope.toml') });
    assert.throws(() => parseOptionsAny(missing), /runtime options file/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('parseOptionsAny: none, empty and foreign types give null', () => {
  assert.is(parseOptionsAny(null), null);
  assert.is(parseOptionsAny({ type_url: '', value: new Uint8Array(0) }), null);
  assert.is(parseOptionsAny({ type_url: 'example.com/Other', value: Buffer.from([1]) }), null);
});

test('parseStartOptions: an Any on stdin; BootstrapParams and garbage are ignored', () => {
  const any = packMessage('containerd.runc.v1.Options', { no_new_keyring: true });
  assert.equal(parseStartOptions(Buffer.from(encode(types().protobuf.Any, any))), { ...DEFAULT_OPTIONS, noNewKeyring: true });
  assert.is(parseStartOptions(Buffer.alloc(0)), null);
  assert.is(parseStartOptions(Buffer.from([0x0a, 0x00])), null);
  const boot = encode(types().bootstrap.BootstrapParams, { instance_id: 'x', namespace: 'default' });
  assert.is(parseStartOptions(Buffer.from(boot)), null);
  assert.is(parseStartOptions(Buffer.from([0xff, 0xff, 0xff])), null);
});

test('checkOptions: the systemd cgroup driver is a FailedPrecondition', () => {
  checkOptions(DEFAULT_OPTIONS);
  try {
    checkOptions({ ...DEFAULT_OPTIONS, systemdCgroup: true });
    assert.unreachable();
  } catch (e) {
    assert.is((e as { code: string }).code, 'INVALID_STATE');
    assert.match((e as Error).message, /SystemdCgroup/);
  }
});

test('exactUint64: values beyond 2^53 encode exactly (max = 2^64-1)', () => {
  const t = types().cgroupsV1.MemoryEntry;
  const m = exactUint64({ limit: 18446744073709551615, usage: 4096, max: 2 ** 60 }) as Record<string, unknown>;
  assert.is(m.limit, '18446744073709551615');
  assert.is(m.usage, 4096);
  const back = t.decode(encode(t, m)) as unknown as { limit: { toString(): string }; max: { toString(): string } };
  assert.is(back.limit.toString(), '18446744073709551615');
  assert.is(back.max.toString(), String(2n ** 60n));
  assert.is(decode(t, encode(t, m)).usage, 4096);
});

test.run();
