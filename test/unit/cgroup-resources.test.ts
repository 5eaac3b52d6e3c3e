/*
 * Pure conversions of the cgroup layer's newer controllers: the device rule emulator and its v1
 * writes / eBPF rule array, memory (kernel, checkBeforeUpdate), hugetlb, rdma, net_cls/net_prio,
 * the stats parsers, the runc events conversion and `events --interval` parsing.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DeviceEmulator, DEFAULT_ALLOWED_DEVICES, bpfRuleArray, containerDeviceRules, normalizeDeviceRule, v1DeviceWrites, configDeviceRules } from '../../shim/src/runtime/cgroup/controllers/devices';
import { memoryController } from '../../shim/src/runtime/cgroup/controllers/memory';
import { hugetlbController, pageSizeName, hugePageSizes } from '../../shim/src/runtime/cgroup/controllers/hugetlb';
import { rdmaController } from '../../shim/src/runtime/cgroup/controllers/rdma';
import { netClsController } from '../../shim/src/runtime/cgroup/controllers/netcls';
import { netPrioController } from '../../shim/src/runtime/cgroup/controllers/netprio';
import { neededV2Controllers } from '../../shim/src/runtime/cgroup/v2';
import { parseFlatKeyed, parseNestedKeyed, num, UINT64_MAX } from '../../shim/src/runtime/stats';
import { toRuncStats } from '../../shim/src/runtime/events';
import { parseDuration } from '../../shim/src/cli/events';
import { ShoalError } from '../../shim/src/runtime/errors';

test('device rules: runc order, deny-all first, defaults and config devices appended', () => {
  const rules = containerDeviceRules({ devices: [{ allow: false, access: 'rwm' }] }, configDeviceRules([{ type: 'c', major: 10, minor: 200 }]));
  assert.equal(rules[0], { type: 'a', major: -1, minor: -1, access: 'rwm', allow: false });
  assert.is(rules.length, 1 + DEFAULT_ALLOWED_DEVICES.length + 1);
  const emu = DeviceEmulator.from(rules);
  assert.is(emu.defaultAllow, false);
  assert.is(emu.exceptions.get('c 1:3'), 'rwm');
  assert.is(emu.exceptions.get('c *:*'), 'm');
  assert.is(emu.exceptions.get('c 136:*'), 'rwm');
  assert.is(emu.exceptions.get('c 10:200'), 'rwm');
});

test('device emulator: deny removes access bits, "a" resets', () => {
  const e = DeviceEmulator.from([
    normalizeDeviceRule({ allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' }),
    normalizeDeviceRule({ allow: false, type: 'c', major: 1, minor: 3, access: 'w' }),
  ]);
  assert.is(e.exceptions.get('c 1:3'), 'rm');
  e.apply(normalizeDeviceRule({ allow: true, access: 'rwm' }));
  assert.is(e.defaultAllow, true);
  assert.is(e.exceptions.size, 0);
  e.apply(normalizeDeviceRule({ allow: false, type: 'b', major: 8, access: 'w' }));
  assert.equal(e.rules(), [{ type: 'b', major: 8, minor: -1, access: 'w', allow: false }]);
  assert.throws(() => normalizeDeviceRule({ allow: true, type: 'x' }), (err: unknown) => err instanceof ShoalError);
  assert.throws(() => normalizeDeviceRule({ allow: true, access: 'rx' }), /invalid access/);
});

test('v1 device writes: reset at creation, differences only on update', () => {
  const target = DeviceEmulator.from([normalizeDeviceRule({ allow: false, access: 'rwm' }), normalizeDeviceRule({ allow: true, type: 'c', major: 1, minor: 3, access: 'rw' })]);
  assert.equal(v1DeviceWrites(target, 'a *:* rwm'), [
    { file: 'devices.deny', value: 'a' },
    { file: 'devices.allow', value: 'c 1:3 rw' },
  ]);
  assert.equal(v1DeviceWrites(target, 'c 1:3 rwm\nc 1:5 rwm\n'), [
    { file: 'devices.deny', value: 'c 1:3 m' },
    { file: 'devices.deny', value: 'c 1:5 rwm' },
  ]);
  assert.equal(v1DeviceWrites(target, 'c 1:3 rw'), []);
  assert.equal(v1DeviceWrites(target, 'c 1:3 r'), [{ file: 'devices.allow', value: 'c 1:3 w' }]);
});

test('bpf rule array encodes type, numbers and access bits', () => {
  const e = DeviceEmulator.from([normalizeDeviceRule({ allow: true, type: 'c', major: 136, access: 'rw' }), normalizeDeviceRule({ allow: true, type: 'b', major: 8, minor: 0, access: 'm' })]);
  assert.equal(bpfRuleArray(e), [2, 136, -1, 6, 1, 8, 0, 1]);
});

test('memory: kernel, kernelTCP, useHierarchy on v1; ignored on v2; checkBeforeUpdate', () => {
  const r = { memory: { limit: 1000, kernel: 2000, kernelTCP: 3000, useHierarchy: true } };
  const files = memoryController.v1Writes(r).map((w) => `${w.file}=${w.value}`);
  assert.equal(files, ['memory.use_hierarchy=1', 'memory.limit_in_bytes=1000', 'memory.kmem.limit_in_bytes=2000', 'memory.kmem.tcp.limit_in_bytes=3000']);
  assert.equal(memoryController.v2Writes(r).map((w) => w.file), ['memory.max']);
  const check = { memory: { limit: 1000, checkBeforeUpdate: true } };
  assert.throws(() => memoryController.v2Writes(check, (f) => (f === 'memory.current' ? '5000' : undefined)), /rejecting memory limit 1000 below the current usage 5000/);
  assert.throws(() => memoryController.v1Writes(check, (f) => (f === 'memory.usage_in_bytes' ? '5000' : undefined)), /memory.limit_in_bytes/);
  assert.is(memoryController.v2Writes(check, () => '10').length, 1);
  assert.throws(() => memoryController.v1Writes({ memory: { swappiness: 101 } }), /swappiness/);
});

test('hugetlb: page size names, host validation, rsvd optional', () => {
  assert.is(pageSizeName(2048), '2MB');
  assert.is(pageSizeName(1048576), '1GB');
  assert.is(pageSizeName(64), '64KB');
  const sizes = hugePageSizes();
  if (sizes.length > 0) {
    const w = hugetlbController.v2Writes({ hugepageLimits: [{ pageSize: sizes[0], limit: 4 << 20 }] });
    assert.equal(w.map((x) => x.file), [`hugetlb.${sizes[0]}.max`, `hugetlb.${sizes[0]}.rsvd.max`]);
    assert.ok(w[1].optional);
    assert.is(hugetlbController.v1Writes({ hugepageLimits: [{ pageSize: sizes[0], limit: 1 }] })[0].file, `hugetlb.${sizes[0]}.limit_in_bytes`);
  }
  assert.throws(() => hugetlbController.v1Writes({ hugepageLimits: [{ pageSize: '3MB', limit: 1 }] }), /invalid hugepage size "3MB"/);
});

test('rdma, net_cls, net_prio writes; v1-only controllers need nothing on v2', () => {
  assert.equal(rdmaController.v2Writes({ rdma: { mlx5_0: { hcaHandles: 3 } } }), [{ file: 'rdma.max', value: 'mlx5_0 hca_handle=3 hca_object=max' }]);
  assert.equal(netClsController.v1Writes({ network: { classID: 0x100001 } }), [{ file: 'net_cls.classid', value: '1048577' }]);
  assert.equal(netPrioController.v1Writes({ network: { priorities: [{ name: 'eth0', priority: 5 }] } }), [{ file: 'net_prio.ifpriomap', value: 'eth0 5' }]);
  assert.equal(neededV2Controllers({ network: { classID: 1 }, pids: { limit: 3 } }), ['pids']);
});

test('stats parsers', () => {
  assert.equal(parseFlatKeyed('usage_usec 10\nnr_throttled 2\n'), { usage_usec: 10, nr_throttled: 2 });
  assert.equal(parseNestedKeyed('8:0 rbytes=1 wbytes=max'), [{ key: '8:0', values: { rbytes: 1, wbytes: UINT64_MAX } }]);
  assert.is(num('max'), UINT64_MAX);
  assert.is(num(undefined), 0);
});

test('runc stats conversion from v2 metrics', () => {
  const data = toRuncStats({
    version: 2,
    metrics: {
      pids: { current: 3, limit: 10 },
      cpu: { usage_usec: 5, user_usec: 3, system_usec: 2, nr_periods: 7, nr_throttled: 4, throttled_usec: 9, nr_bursts: 0, burst_usec: 0 },
      memory: { file: 100, anon: 50, usage: 150, usage_limit: 1000, swap_usage: 0, swap_limit: 0, max_usage: 0, swap_max_usage: 0 },
      memory_events: { low: 0, high: 0, max: 1, oom: 1, oom_kill: 1 },
      io: { usage: [{ major: 8, minor: 0, rbytes: 1, wbytes: 2, rios: 3, wios: 4 }] },
      hugetlb: [{ pagesize: '2MB', current: 0, max: 5 }],
      rdma: { current: [], limit: [] },
    },
  });
  assert.equal(data.cpu.usage, { total: 5000, kernel: 2000, user: 3000 });
  assert.equal(data.cpu.throttling, { periods: 7, throttledPeriods: 4, throttledTime: 9000 });
  assert.is(data.memory.cache, 100);
  assert.equal(data.memory.usage, { limit: 1000, usage: 150, max: 0, failcnt: 1 });
  assert.is(data.memory.raw.anon, 50);
  assert.equal(data.blkio.ioServiceBytesRecursive, [{ major: 8, minor: 0, op: 'Read', value: 1 }, { major: 8, minor: 0, op: 'Write', value: 2 }]);
  assert.equal(data.hugetlb['2MB'], { usage: 0, max: 5, failcnt: 0 });
});

test('events --interval durations', () => {
  assert.is(parseDuration('5s'), 5000);
  assert.is(parseDuration('1m30s'), 90000);
  assert.is(parseDuration('250ms'), 250);
  assert.is(parseDuration('2'), 2000);
  assert.throws(() => parseDuration('5x'), /interval/);
  assert.throws(() => parseDuration('0s'), /greater than 0/);
});

test.run();
