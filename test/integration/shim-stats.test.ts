/*
 * The shim's Task service in-process (as root) for what containerd-shim-runc-v2 does beyond the
 * lifecycle: Stats (cgroup Metrics Any matching the host), Update (resources JSON, all or
 * nothing), TaskOOM events, Checkpoint's and restore's errors (the VM test shim-criu does the real thing), and the runtime options of Create
 * (containerd.runc.v1.Options, CRI runtimeoptions TOML).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { native } from '../../shim/src/native';
import { detectCgroups } from '../../shim/src/runtime/cgroup/detect';
import { TaskService, Msg } from '../../shim/src/task/service';
import { decode, encode, lookupType, types } from '../../shim/src/ttrpc/proto';
import { makeBundle, BundleOverrides } from '../lib/rootfs';
import { uniqueId, withCleanup, Defer } from '../lib/shoal';

native().setChildSubreaper(true);

const MB = 1024 * 1024;

function setup(defer: Defer, overrides: BundleOverrides): { svc: TaskService; bundle: string; id: string; events: [string, Msg][] } {
  const bundle = makeBundle(overrides);
  defer(() => fs.rmSync(bundle, { recursive: true, force: true }));
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-shim-root-'));
  defer(() => fs.rmSync(root, { recursive: true, force: true }));
  const events: [string, Msg][] = [];
  const svc = new TaskService({ namespace: 'test', stateRoot: root, reapOrphans: false, warn: () => undefined, publish: (t, _type, e) => events.push([t, e]) });
  const id = uniqueId('stats');
  defer(async () => {
    if (svc.containers.has(id)) {
      await svc.Kill({ id, signal: 9, all: true }).catch(() => undefined);
      await svc.Wait({ id }).catch(() => undefined);
      await svc.Delete({ id }).catch(() => undefined);
    }
    svc.close();
    assert.not.ok(fs.existsSync(path.join(root, id)), 'state dir removed');
  });
  return { svc, bundle, id, events };
}

async function expectError(p: Promise<unknown>, code: string, msg: RegExp): Promise<void> {
  try {
    await p;
  } catch (e) {
    assert.is((e as { code: string }).code, code, (e as Error).message);
    assert.match((e as Error).message, msg);
    return;
  }
  assert.unreachable(`expected ${code}`);
}

/** Decodes a Stats response's Any: [type_url, message with Longs as numbers]. */
function metrics(resp: Msg): [string, Msg] {
  const t = lookupType(resp.stats.type_url)!;
  return [resp.stats.type_url, decode(t, resp.stats.value)];
}

const resourcesAny = (r: unknown) => ({ type_url: 'types.containerd.io/opencontainers/runtime-spec/1/LinuxResources', value: Buffer.from(JSON.stringify(r)) });
const v2Host = () => detectCgroups().mode === 'v2';

test('Stats: the cgroup Metrics of the host kind; Update changes the limits, all or nothing', () =>
  withCleanup(async (defer) => {
    const { svc, bundle, id } = setup(defer, { process: { args: ['sleep', '100'] }, linux: { resources: { memory: { limit: 64 * MB } } } });
    await svc.Create({ id, bundle });
    await svc.Start({ id });
    const [url, m] = metrics(await svc.Stats({ id }));
    if (v2Host()) {
      assert.is(url, 'io.containerd.cgroups.v2.Metrics');
      assert.is(m.memory.usage_limit, 64 * MB);
      assert.ok(m.memory.usage > 0);
    } else {
      assert.is(url, 'io.containerd.cgroups.v1.Metrics');
      assert.is(m.memory.usage.limit, 64 * MB);
      assert.ok(m.memory.usage.usage > 0, 'memory usage');
      assert.ok(m.cpu.usage.total > 0, 'cpu usage');
      // "max" is 2^64-1 exactly, as Go's uint64 (protobufjs gives it as a Long when asked).
      const raw = lookupType(url)!.decode((await svc.Stats({ id })).stats.value) as unknown as { memory: { swap: { limit: { toString(): string } } } };
      assert.ok(['18446744073709551615', '9223372036854771712', '0'].includes(raw.memory.swap.limit.toString()), `swap limit ${raw.memory.swap.limit}`);
    }
    assert.is(m.pids.current, 1);

    await svc.Update({ id, resources: resourcesAny({ memory: { limit: 96 * MB }, pids: { limit: 50 } }) });
    const [, m2] = metrics(await svc.Stats({ id }));
    assert.is(v2Host() ? m2.memory.usage_limit : m2.memory.usage.limit, 96 * MB);
    assert.is(m2.pids.limit, 50);

    // A value the kernel refuses (cfs period below 1 ms): the pids limit written with it is rolled back.
    await expectError(svc.Update({ id, resources: resourcesAny({ pids: { limit: 70 }, cpu: { period: 1, quota: 1000 } }) }), 'CGROUP', /cpu/);
    const [, m3] = metrics(await svc.Stats({ id }));
    assert.is(m3.pids.limit, 50, 'the failed update changed nothing');
    await expectError(svc.Update({ id, resources: { type_url: 'x', value: Buffer.from('not json') } }), 'INVALID_ARGUMENT', /LinuxResources/);
    await expectError(svc.Stats({ id: 'nope' }), 'NOT_FOUND', /not found/);
  }));

test('an OOM kill publishes /tasks/oom before the exit is waited for', () =>
  withCleanup(async (defer) => {
    const { svc, bundle, id, events } = setup(defer, {
      process: { args: ['sh', '-c', 'dd if=/dev/zero of=/dev/null bs=64M count=1; sleep 100'] },
      linux: { resources: { memory: { limit: 16 * MB, swap: 16 * MB } } },
    });
    await svc.Create({ id, bundle });
    await svc.Start({ id });
    // dd is OOM-killed; the shell goes on sleeping: stop it once the event arrived.
    const deadline = Date.now() + 15_000;
    while (!events.some(([t]) => t === '/tasks/oom') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.equal(events.filter(([t]) => t === '/tasks/oom').map(([, e]) => e), [{ container_id: id }], `events: ${events.map(([t]) => t)}`);
    await svc.Kill({ id, signal: 9 });
    await svc.Wait({ id });
    await svc.Delete({ id });
    assert.is(events.filter(([t]) => t === '/tasks/oom').length, 1, 'removing the cgroup is no OOM');
  }));

test('Checkpoint and Create from a checkpoint: the errors, and nothing left behind', () =>
  withCleanup(async (defer) => {
    const { svc, bundle, id } = setup(defer, { process: { args: ['sh', '-c', 'exec </dev/null >/dev/null 2>&1; sleep 100'] } });
    const img = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-shim-ckpt-'));
    defer(() => fs.rmSync(img, { recursive: true, force: true }));
    await expectError(svc.Create({ id, bundle, checkpoint: img }), 'INVALID_ARGUMENT', /shoal-checkpoint\.json: not a shoal checkpoint/);
    assert.not.ok(svc.containers.has(id), 'a failed restore-create registers nothing');
    await svc.Create({ id, bundle });
    await expectError(svc.Checkpoint({ id, path: img }), 'INVALID_STATE', /cannot checkpoint task in created state/);
    await svc.Start({ id });
    await expectError(svc.Checkpoint({ id: 'nope', path: img }), 'NOT_FOUND', /not found/);
    await expectError(svc.Checkpoint({ id, path: img, options: { type_url: 'containerd.runc.v1.Options', value: Buffer.alloc(0) } }), 'INVALID_ARGUMENT', /unsupported type/);
    const ckOpts = (o: Msg) => ({ type_url: 'containerd.runc.v1.CheckpointOptions', value: encode(lookupType('containerd.runc.v1.CheckpointOptions')!, o) });
    await expectError(svc.Checkpoint({ id, path: img, options: ckOpts({ cgroups_mode: 'bogus' }) }), 'INVALID_ARGUMENT', /invalid manage cgroups mode: bogus/);
    // containerd 1.6/1.7's client sends the linux runtime's type (same fields) to non-runc runtimes.
    const linuxOpts = { ...ckOpts({ cgroups_mode: 'bogus2' }), type_url: 'containerd.linux.runc.CheckpointOptions' };
    await expectError(svc.Checkpoint({ id, path: img, options: linuxOpts }), 'INVALID_ARGUMENT', /invalid manage cgroups mode: bogus2/);
    const r = await svc.Checkpoint({ id, path: img, options: ckOpts({ file_locks: true }) }).then(() => null, (e: Error) => e);
    if (r) {
      // CRIU cannot dump on this kernel (the VM test covers a real one): the error carries the
      // tail of its log and the container goes on running.
      assert.match(r.message, /criu failed \(status \d+\); tail of .*dump\.log/);
    } else {
      assert.ok(fs.existsSync(path.join(img, 'shoal-checkpoint.json')), 'descriptor written');
    }
    assert.is((await svc.State({ id })).status, 2, 'still running after the checkpoint');
    assert.not.ok(fs.existsSync(path.join(bundle, 'criu-work')), 'the work dir is removed');

    // The shim serves its other calls while CRIU runs: a stand-in criu waits until the test,
    // having had its State answer, releases it.
    const go = path.join(img, 'go');
    const fake = path.join(img, 'fake-criu');
    fs.writeFileSync(fake, `#!/bin/sh\necho "$@" > ${img}/args\nfor i in $(seq 100); do [ -e ${go} ] && { echo released; exit 3; }; sleep 0.1; done\necho never released; exit 3\n`, { mode: 0o755 });
    process.env.SHOAL_CRIU = fake;
    try {
      // The options' image_path wins over the request's path (containerd's temp dir).
      const wanted = path.join(img, 'wanted');
      const dump = svc.Checkpoint({ id, path: path.join(img, 'temp'), options: ckOpts({ image_path: wanted }) }).then(() => null, (e: Error) => e);
      assert.is((await svc.State({ id })).status, 2);
      fs.writeFileSync(go, '');
      assert.match((await dump)?.message ?? '', /criu failed \(status 3\)[\s\S]*\nreleased$/);
      assert.match(fs.readFileSync(path.join(img, 'args'), 'utf8'), new RegExp(`^dump -t \\d+ -D ${wanted} `));
    } finally {
      delete process.env.SHOAL_CRIU;
    }
  }));

test('runtime options: runc Options (no_pivot_root, io_uid/io_gid, systemd_cgroup), CRI TOML', () =>
  withCleanup(async (defer) => {
    const { svc, bundle, id } = setup(defer, { process: { args: ['sh', '-c', 'stat -L -c %u:%g /proc/self/fd/1'] } });
    const runc = (o: Msg) => ({ type_url: 'containerd.runc.v1.Options', value: encode(types().runc.Options, o) });
    const cri = (toml: string) => ({ type_url: 'runtimeoptions.v1.Options', value: encode(types().cri.Options, { config_body: Buffer.from(toml) }) });
    await expectError(svc.Create({ id, bundle, options: runc({ systemd_cgroup: true }) }), 'INVALID_STATE', /SystemdCgroup/);
    await expectError(svc.Create({ id, bundle, options: cri('BinaryName = ""\nSystemdCgroup = true\n') }), 'INVALID_STATE', /SystemdCgroup/);
    assert.not.ok(svc.containers.has(id));

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-opt-'));
    defer(() => fs.rmSync(dir, { recursive: true, force: true }));
    const out = path.join(dir, 'out');
    fs.mkdirSync(out);
    const fifo = path.join(dir, 'stdout');
    require('child_process').execFileSync('mkfifo', [fifo]);
    const reader = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    defer(() => fs.closeSync(reader));
    await svc.Create({ id, bundle, stdout: fifo, options: runc({ no_pivot_root: true, io_uid: 1234, io_gid: 4321 }) });
    assert.is(fs.statSync(fifo).uid, 1234, 'io_uid owns the stdout fifo');
    assert.is(fs.statSync(fifo).gid, 4321, 'io_gid owns the stdout fifo');
    await svc.Start({ id });
    assert.is((await svc.Wait({ id })).exit_status, 0);
    const buf = Buffer.alloc(4096);
    const n = fs.readSync(reader, buf, 0, buf.length, null);
    const [owner] = buf.subarray(0, n).toString().split('\n');
    assert.is(owner.trim(), '1234:4321');
    await svc.Delete({ id });
  }));

test('an options Any of an unknown type is ignored', () =>
  withCleanup(async (defer) => {
    const { svc, bundle, id } = setup(defer, { process: { args: ['true'] } });
    await svc.Create({ id, bundle, options: { type_url: 'example.com/Unknown', value: Buffer.from([1, 2, 3]) } });
    await svc.Start({ id });
    assert.is((await svc.Wait({ id })).exit_status, 0);
  }));

test.run();
