/* The shim's process state machine and the process record built on it (no real processes). */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { allowed, next, statusCode, ProcOp, ProcState } from '../../shim/src/task/state-machine';
import { ShimProcess, toTimestamp } from '../../shim/src/task/process';
import { ShoalError } from '../../shim/src/runtime/errors';

const stdio = { stdin: '', stdout: '', stderr: '', terminal: false };

test('the happy path: created -> running -> paused -> running -> stopped -> deleted', () => {
  let s: ProcState = 'created';
  for (const [op, to] of [['start', 'running'], ['pause', 'paused'], ['resume', 'running'], ['exit', 'stopped'], ['delete', 'deleted']] as [ProcOp, ProcState][]) {
    s = next(s, op);
    assert.is(s, to, op);
  }
});

test('illegal operations say "cannot <op> task in <state> state"', () => {
  const cases: [ProcState, ProcOp][] = [
    ['created', 'pause'], ['created', 'resume'], ['running', 'start'], ['running', 'delete'], ['running', 'resume'],
    ['paused', 'start'], ['paused', 'delete'], ['paused', 'pause'], ['paused', 'exec'], ['stopped', 'start'], ['stopped', 'kill'],
    ['stopped', 'exec'], ['stopped', 'pause'], ['deleted', 'delete'], ['deleted', 'start'], ['deleted', 'kill'],
  ];
  for (const [state, op] of cases) {
    assert.not.ok(allowed(state, op), `${op} in ${state}`);
    try {
      next(state, op);
      assert.unreachable(`${op} in ${state}`);
    } catch (e) {
      assert.instance(e, ShoalError);
      assert.is((e as ShoalError).code, 'INVALID_STATE');
      assert.is((e as Error).message, `cannot ${op} task in ${state} state`);
    }
  }
});

test('exit is never refused and a created process can be deleted or killed', () => {
  for (const s of ['created', 'running', 'paused', 'stopped', 'deleted'] as ProcState[]) assert.ok(allowed(s, 'exit'), s);
  assert.is(next('created', 'exit'), 'stopped');
  assert.is(next('created', 'delete'), 'deleted');
  assert.is(next('created', 'kill'), 'created');
  assert.is(next('running', 'exec'), 'running');
});

test('ShimProcess: an exit while Start runs is held until releaseExit, after the start transition', async () => {
  const p = new ShimProcess('c1', '', stdio);
  const seen: string[] = [];
  p.onExit((q) => seen.push(`exit ${q.exit!.status} in ${q.state}`));
  p.holdExit();
  p.setExited(0); // the init ran `true` and was reaped before Start finished
  assert.is(p.state, 'created', 'exit not applied while held');
  assert.is(p.exit, null);
  p.apply('start');
  seen.push('start');
  p.releaseExit();
  assert.is(p.state, 'stopped');
  assert.equal(seen, ['start', 'exit 0 in stopped']);
  assert.is((await p.wait()).status, 0);
  // Without a held exit, release does nothing; holds nest.
  const q = new ShimProcess('c2', 'e1', stdio);
  q.holdExit();
  q.holdExit();
  q.setExited(5);
  q.releaseExit();
  assert.is(q.exit, null, 'still held by the outer hold');
  q.releaseExit();
  assert.is(q.exit!.status, 5);
});

test('status codes of containerd.task.v2.Status', () => {
  assert.equal((['created', 'running', 'paused', 'stopped', 'deleted'] as ProcState[]).map(statusCode), [1, 2, 4, 3, 3]);
});

test('ShimProcess: setExited records the first exit, wakes Wait and listeners', async () => {
  const p = new ShimProcess('c1', '', stdio);
  assert.is(p.id, 'c1');
  p.apply('start');
  let seen = 0;
  p.onExit(() => seen++);
  const when = new Date(1_700_000_000_123);
  p.setExited(137, when);
  p.setExited(0);
  assert.is(p.state, 'stopped');
  assert.equal(await p.wait(), { status: 137, exitedAt: when });
  assert.is(seen, 1);
  p.onExit(() => seen++);
  assert.is(seen, 2, 'a late listener runs at once');
  assert.equal(toTimestamp(when), { seconds: 1_700_000_000, nanos: 123_000_000 });
});

test('ShimProcess: signalling a finished process is NOT_FOUND "process already finished"', () => {
  const p = new ShimProcess('c1', 'e1', stdio);
  assert.is(p.id, 'e1');
  p.setExited(0);
  try {
    p.signal(15);
    assert.unreachable();
  } catch (e) {
    assert.is((e as ShoalError).code, 'NOT_FOUND');
    assert.is((e as Error).message, 'process already finished');
  }
});

test('ShimProcess: waitFor times out with null', async () => {
  const p = new ShimProcess('c1', '', stdio);
  assert.is(await p.waitFor(10), null);
});

test.run();
