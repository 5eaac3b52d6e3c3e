/*
 * Pure cgroup v2 coverage on a hybrid host: runs test/vm/run.sh, which boots a throw-away VM with
 * every v2 controller (/work/shared/vm/run-in-vm.sh) and runs the cgroup integration tests there
 * (limits, OOM events, pids, cpu throttling, freezer, update, the eBPF device filter).
 * Skipped with a printed reason when the VM script or qemu is missing, or when this host is
 * already pure v2 (the same tests then run natively). SHOAL_SKIP_VM=1 skips it too.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as path from 'path';
import { repoRoot } from '../../shim/src/native';
import { detectCgroups } from '../../shim/src/runtime/cgroup/detect';
import { runVm, vmSkipReason } from '../lib/vm';

/** Upper bound for the whole VM run (boot + tests); the emulated VM is 20-60x slower. */
const TIMEOUT_MS = 8 * 60_000;

/** Why the VM run cannot happen here, or undefined when it can. */
function skipReason(): string | undefined {
  if (process.env.SHOAL_SKIP_VM !== '1' && detectCgroups().mode === 'v2') return 'this host is pure cgroup v2: the tests run natively';
  return vmSkipReason();
}

test('cgroup tests pass on a pure cgroup v2 kernel (VM)', () => {
  const why = skipReason();
  if (why) {
    console.log(`  (skipped: ${why})`);
    return;
  }
  const r = runVm('bash', [path.join(repoRoot(), 'test', 'vm', 'run.sh')], TIMEOUT_MS);
  const out = r.out;
  if (r.status === 125) {
    console.log(`  (skipped: the VM could not start)\n${out.slice(-2000)}`);
    return;
  }
  assert.is(r.status, 0, `VM tests failed (status ${r.status}, signal ${r.signal}):\n${out.slice(-6000)}`);
});

test.run();
