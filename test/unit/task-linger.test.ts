/*
 * The linger of an idle namespace shim: how long it is (lingerMs from the daemon's environment)
 * and when it runs (TaskService arms it when the last call of an idle shim ends, and any call
 * cancels it). The timers are captured, not waited for.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { DEFAULT_LINGER_S, lingerMs } from '../../shim/src/task/daemon';
import { TaskService } from '../../shim/src/task/service';

test('lingerMs: only a namespace group lingers; SHOAL_SHIM_LINGER in seconds, default 10', () => {
  assert.is(DEFAULT_LINGER_S, 10);
  assert.is(lingerMs({}), 0, 'a sandbox or annotation group');
  assert.is(lingerMs({ SHOAL_SHIM_LINGER: '5' }), 0, 'the setting does not make a sandbox group linger');
  assert.is(lingerMs({ SHOAL_SHIM_NAMESPACE_GROUP: '1' }), 10_000);
  assert.is(lingerMs({ SHOAL_SHIM_NAMESPACE_GROUP: '1', SHOAL_SHIM_LINGER: '2.5' }), 2500);
  assert.is(lingerMs({ SHOAL_SHIM_NAMESPACE_GROUP: '1', SHOAL_SHIM_LINGER: '0' }), 0);
  assert.is(lingerMs({ SHOAL_SHIM_NAMESPACE_GROUP: '1', SHOAL_SHIM_LINGER: 'soon' }), 0, 'garbage: no linger');
});

/** Runs fn with setTimeout/clearTimeout captured; returns the live timers afterwards. */
function captureTimers() {
  const live = new Map<number, { fn: () => void; ms: number }>();
  let next = 1;
  const real = { set: globalThis.setTimeout, clear: globalThis.clearTimeout };
  (globalThis as any).setTimeout = (fn: () => void, ms: number) => {
    const id = next++;
    live.set(id, { fn, ms });
    return id;
  };
  (globalThis as any).clearTimeout = (id: number) => void live.delete(id);
  return { live, restore: () => Object.assign(globalThis, { setTimeout: real.set, clearTimeout: real.clear }) };
}

function service(lingerMs: number, calls: string[]) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-linger-'));
  const svc = new TaskService({ namespace: 'test', stateRoot: root, reapOrphans: false, lingerMs, onShutdown: () => calls.push('exit') });
  return { h: svc.handlers(), done: () => fs.rmSync(root, { recursive: true, force: true }) };
}

const ctx = (after: (() => void)[]) => ({ afterReply: (fn: () => void) => after.push(fn) }) as any;

test('an idle shim with a linger outlives Shutdown; a call restarts the linger; it ends when the linger runs out', async () => {
  const calls: string[] = [];
  const { h, done } = service(4000, calls);
  const t = captureTimers();
  try {
    const after: (() => void)[] = [];
    await h.Shutdown({ id: 'gone' }, ctx(after));
    after.forEach((fn) => fn());
    assert.equal(calls, [], 'Shutdown of an idle lingering shim does not end it');
    assert.equal([...t.live.values()].map((x) => x.ms), [4000], 'the linger is armed once the call ended');
    const first = [...t.live.keys()][0];
    await h.Connect({ id: '' }, ctx([]));
    assert.not.ok(t.live.has(first), 'a call cancels the running linger');
    assert.is(t.live.size, 1, 'and arms a new one when it ends');
    [...t.live.values()][0].fn();
    assert.equal(calls, ['exit'], 'the linger ran out: the shim ends');
  } finally {
    t.restore();
    done();
  }
});

test('without a linger, Shutdown of an idle shim ends it at once (after the reply)', async () => {
  const calls: string[] = [];
  const { h, done } = service(0, calls);
  const t = captureTimers();
  try {
    const after: (() => void)[] = [];
    await h.Shutdown({ id: 'gone' }, ctx(after));
    assert.equal(calls, []);
    after.forEach((fn) => fn());
    assert.equal(calls, ['exit']);
    assert.is(t.live.size, 0, 'no linger timer');
  } finally {
    t.restore();
    done();
  }
});

test.run();
