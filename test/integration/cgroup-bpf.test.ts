/*
 * The native cgroup v2 device filter (native/bpf/devfilter.c through the addon's
 * attachDeviceFilter) against the real kernel: a process in a cgroup2 directory can open only
 * what the program allows, and replacing the program leaves exactly one attached. Uses the
 * unified hierarchy (the root on pure v2, /sys/fs/cgroup/unified on hybrid hosts); skipped
 * without one.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { native } from '../../shim/src/native';
import { detectCgroups } from '../../shim/src/runtime/cgroup/detect';
import { DeviceEmulator, bpfRuleArray, containerDeviceRules } from '../../shim/src/runtime/cgroup/controllers/devices';

const unified = detectCgroups().unified;

test('the eBPF device program allows the default devices only, and is replaced on re-attach', () => {
  if (!unified) {
    console.log('  (skipped: no cgroup2 hierarchy mounted)');
    return;
  }
  const dir = path.join(unified.mountpoint, `shoal-bpf-test-${process.pid}`);
  fs.mkdirSync(dir);
  try {
    const emu = DeviceEmulator.from(containerDeviceRules({ devices: [{ allow: false, access: 'rwm' }] }));
    const n = native();
    const id1 = n.attachDeviceFilter(dir, bpfRuleArray(emu), emu.defaultAllow);
    const id2 = n.attachDeviceFilter(dir, bpfRuleArray(emu), emu.defaultAllow);
    assert.ok(id1 > 0 && id2 > 0 && id1 !== id2);
    assert.is(n.deviceFilterCount(dir), 1, 'the old program was detached');
    // /dev/zero and /dev/null are allowed by default; /dev/kmsg (c 1:11) is not.
    const script = `echo $$ > ${dir}/cgroup.procs; head -c1 /dev/zero | wc -c; echo x > /dev/null && echo NULL-OK; head -c1 /dev/kmsg; echo end`;
    const r = spawnSync('sh', ['-c', script], { encoding: 'utf8' });
    assert.match(r.stdout, /^1$/m);
    assert.match(r.stdout, /NULL-OK/);
    assert.match(r.stderr, /kmsg.*Operation not permitted/);
    assert.throws(() => n.attachDeviceFilter(dir, [9, 1, 1, 7], false), /invalid device rule/);
  } finally {
    fs.rmdirSync(dir);
  }
});

test.run();
