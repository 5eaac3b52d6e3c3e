/* Pure parts of the shim: stdio URIs, command-line flags, mount options, DeleteResponse bytes. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseIoUri, parseStdio } from '../../shim/src/task/io-uri';
import { parseFlags } from '../../shim/src/task/flags';
import { parseMountOptions } from '../../shim/src/task/rootfs';
import { encodeDeleteResponse } from '../../shim/src/task/cleanup';
import { decode, types } from '../../shim/src/ttrpc/proto';

test('stdio uris', () => {
  assert.equal(parseIoUri(''), { kind: 'null' });
  assert.equal(parseIoUri(undefined), { kind: 'null' });
  assert.equal(parseIoUri('/run/containerd/fifo/1/c-stdout'), { kind: 'fifo', path: '/run/containerd/fifo/1/c-stdout' });
  assert.equal(parseIoUri('fifo:///tmp/a'), { kind: 'fifo', path: '/tmp/a' });
  assert.equal(parseIoUri('file:///var/log/c%201.log'), { kind: 'file', path: '/var/log/c 1.log' });
  assert.equal(parseIoUri('binary:///usr/bin/logger?tag=web&verbose=&x=1'), { kind: 'binary', path: '/usr/bin/logger', args: ['tag', 'web', 'verbose', '', 'x', '1'] });
  assert.throws(() => parseIoUri('tcp://1.2.3.4:5'), /unknown STDIO scheme tcp/);
  assert.throws(() => parseIoUri('file://relative'), /absolute path/);
});

test('stdio: stdin must be a fifo; a terminal has no stderr', () => {
  assert.throws(() => parseStdio({ stdin: 'file:///x', stdout: '', stderr: '', terminal: false }), /stdin must be a fifo/);
  const s = parseStdio({ stdin: '/f/in', stdout: '/f/out', stderr: '/f/err', terminal: true });
  assert.equal(s.stderr, { kind: 'null' });
  assert.equal(s.stdout, { kind: 'fifo', path: '/f/out' });
});

test('flags: Go flag syntax, env defaults, round trip', () => {
  const flags = ['-namespace', 'k8s.io', '--address=/run/containerd/containerd.sock', '-publish-binary', '/usr/bin/containerd', '-id', 'abc', '-debug'];
  const f = parseFlags([...flags, 'start'], {});
  assert.equal(f, { namespace: 'k8s.io', address: '/run/containerd/containerd.sock', publishBinary: '/usr/bin/containerd', id: 'abc', bundle: '', socket: '', debug: true, version: false, action: 'start' });
  // The daemon gets start's flags again, then `-socket S serve` (native/launcher spawn_daemon).
  assert.equal(parseFlags([...flags, '-socket', '/s', 'serve'], {}), { ...f, socket: '/s', action: 'serve' });
  assert.is(parseFlags(['-id', 'x', 'delete'], { NAMESPACE: 'n', GRPC_ADDRESS: '/g' }).namespace, 'n');
  assert.ok(parseFlags(['-v'], {}).version);
  assert.ok(parseFlags(['--version'], {}).version);
  assert.is(parseFlags(['-unknown', 'v', '-id', 'i', 'delete'], {}).id, 'i');
});

test('mount options split into flags and data', () => {
  assert.equal(parseMountOptions(['ro', 'rbind']), { flags: 1 | 4096 | 16384, data: '' });
  assert.equal(parseMountOptions(['index=off', 'lowerdir=/a:/b', 'upperdir=/u', 'workdir=/w']), { flags: 0, data: 'index=off,lowerdir=/a:/b,upperdir=/u,workdir=/w' });
  assert.equal(parseMountOptions(['ro', 'rw', 'nosuid', 'nodev']), { flags: 2 | 4, data: '' });
});

test('DeleteResponse bytes decode with the protobuf types', () => {
  const when = new Date(1_700_000_001_500);
  const bytes = encodeDeleteResponse(4242, 137, when);
  const m = decode(types().task.DeleteResponse, bytes);
  assert.is(m.pid, 4242);
  assert.is(m.exit_status, 137);
  assert.is(Number(m.exited_at.seconds), 1_700_000_001);
  assert.is(m.exited_at.nanos, 500_000_000);
});

test.run();
