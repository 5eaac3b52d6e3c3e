/*
 * Rootful podman 4.3 (through conmon) driving shoal with `--runtime build/shoal.js`. podman runs
 * in a private mount namespace with its storage, runroot and config in a temp dir
 * (test/lib/daemons.ts); the image is the busybox rootfs tar brought in with `podman import`.
 * Every test runs first with runc (the reference) and then with shoal, and ends by checking that
 * no cgroup, mount or process of the sandbox was left.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cannotRun, CmdResult, Podman, runcExecutable, shoalExecutable, skip, startPodman } from '../lib/daemons';
import { rootfsTar } from '../lib/image';

const IMAGE = 'localhost/shoaltest:latest';
/** Runtimes under test, by name, with the path given to `--runtime`. */
const RUNTIMES: Array<[string, () => string]> = [
  ['runc', () => runcExecutable()!],
  ['shoal', shoalExecutable],
];

let pm: Podman | undefined;
/** Why podman cannot run on this machine (tests skip), if so. */
let unavailable: string | undefined;
/** Why it failed to start although it should run here (tests fail). */
let startError: Error | undefined;

test.before(async () => {
  unavailable = cannotRun(['podman', 'conmon', 'runc']);
  if (unavailable) return;
  try {
    pm = await startPodman();
    const r = pm.podman(['import', '--change', 'CMD ["sh"]', rootfsTar(), IMAGE]);
    if (r.code !== 0) throw new Error(`podman import: ${r.stderr}`);
  } catch (e) {
    startError = e as Error;
  }
});

test.after(async () => {
  await pm?.stop().catch(() => undefined);
});

function ok(r: CmdResult, what: string): string {
  assert.is(r.code, 0, `${what} exited ${r.code}: ${r.stderr}`);
  return r.stdout.trim();
}

let nameCounter = 0;

/**
 * Registers `name` as a test of each runtime: the body gets a podman client bound to that runtime
 * and a name generator; named containers are force-removed afterwards, then the sandbox must have
 * no new cgroup, mount or process.
 */
function podmanTest(name: string, body: (podman: (args: string[], input?: string) => CmdResult, newName: () => string) => Promise<void> | void): void {
  for (const [rtName, bin] of RUNTIMES) {
    test(`podman ${rtName}: ${name}`, async () => {
      if (unavailable) return void skip(unavailable);
      if (startError) throw startError;
      const p = pm!;
      const before = p.snapshot();
      const names: string[] = [];
      const newName = () => {
        const n = `shoal-${rtName}-${process.pid}-${++nameCounter}`;
        names.push(n);
        return n;
      };
      const podman = (args: string[], input?: string) => p.podman(args, { runtime: bin(), input });
      let failure: unknown;
      try {
        await body(podman, newName);
      } catch (e) {
        failure = e;
      }
      for (const n of names) podman(['rm', '-f', '-t', '0', n]);
      if (failure) throw failure;
      const leaks = await p.sandbox.leaksSince(before);
      assert.equal(leaks, [], `leaked after the test:\n${leaks.join('\n')}`);
    });
  }
}

podmanTest('run --rm echo hi; exit codes pass through', (podman) => {
  const r = podman(['run', '--rm', IMAGE, 'echo', 'hi']);
  assert.is(r.stdout, 'hi\n', r.stderr);
  assert.is(r.code, 0, r.stderr);
  const e = podman(['run', '--rm', IMAGE, 'sh', '-c', 'echo out; echo err >&2; exit 3']);
  assert.is(e.stdout, 'out\n', e.stderr);
  assert.ok(e.stderr.includes('err'), e.stderr);
  assert.is(e.code, 3);
  const i = podman(['run', '--rm', '-i', IMAGE, 'cat'], 'via-stdin\n');
  assert.is(i.stdout, 'via-stdin\n', `run -i: ${i.stderr}`);
});

podmanTest('run -d, ps, stop (TERM handled), rm', (podman, newName) => {
  const n = newName();
  ok(podman(['run', '-d', '--name', n, IMAGE, 'sh', '-c', 'trap "exit 0" TERM; sleep 1000 & wait']), 'run -d');
  assert.match(ok(podman(['ps', '--format', '{{.Names}} {{.Status}}']), 'ps'), new RegExp(`^${n} Up`, 'm'));
  ok(podman(['stop', '-t', '10', n]), 'stop');
  assert.is(ok(podman(['inspect', '-f', '{{.State.Status}} {{.State.ExitCode}}', n]), 'inspect'), 'exited 0');
  ok(podman(['rm', n]), 'rm');
});

podmanTest('exec into a running container', (podman, newName) => {
  const n = newName();
  ok(podman(['run', '-d', '--name', n, IMAGE, 'sleep', '1000']), 'run -d');
  const e = podman(['exec', n, 'sh', '-c', 'echo from-exec; exit 4']);
  assert.is(e.stdout, 'from-exec\n', e.stderr);
  assert.is(e.code, 4, e.stderr);
  ok(podman(['rm', '-f', '-t', '0', n]), 'rm -f');
});

podmanTest('pause/unpause, kill -s, exit code of a signalled container', (podman, newName) => {
  const n = newName();
  ok(podman(['run', '-d', '--name', n, IMAGE, 'sh', '-c', 'trap "exit 33" USR1; sleep 1000 & wait']), 'run -d');
  ok(podman(['pause', n]), 'pause');
  assert.is(ok(podman(['inspect', '-f', '{{.State.Status}}', n]), 'inspect'), 'paused');
  ok(podman(['unpause', n]), 'unpause');
  assert.is(ok(podman(['inspect', '-f', '{{.State.Status}}', n]), 'inspect'), 'running');
  ok(podman(['kill', '-s', 'USR1', n]), 'kill -s USR1');
  assert.is(ok(podman(['wait', n]), 'wait'), '33');
  ok(podman(['rm', n]), 'rm');
});

podmanTest('errors: missing executable exits 127, non-executable 126', (podman) => {
  // Like docker, podman maps the runtime's error message to 127 ("no such file or directory",
  // "executable file not found") and 126 ("permission denied").
  const missing = podman(['run', '--rm', IMAGE, '/no/such/binary']);
  assert.is(missing.code, 127, `missing executable: ${missing.stderr}`);
  const notExec = podman(['run', '--rm', IMAGE, '/etc/passwd']);
  assert.is(notExec.code, 126, `non-executable: ${notExec.stderr}`);
});

test('podman: nothing left at the end', async () => {
  if (unavailable) return void skip(unavailable);
  if (startError) throw startError;
  const p = pm!;
  pm = undefined;
  await p.stop();
});

test.run();
