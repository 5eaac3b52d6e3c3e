/*
 * dockerd 20.10 (on its own containerd 1.6, in a private mount namespace: test/lib/daemons.ts)
 * driving shoal through `--add-runtime shoal=build/shoal.js`, the way docker users would. Every
 * test runs first with runc (docker's built-in `runc` runtime, the reference: if it fails there,
 * the test or the host is wrong) and then with shoal, and ends by checking that no cgroup, mount
 * or process of the sandbox was left behind. The daemons start once for the file.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'fs';
import * as path from 'path';
import {
  cannotRun,
  CmdResult,
  Containerd,
  Dockerd,
  runInPty,
  skip,
  startContainerd,
  startDockerd,
  TmuxSession,
} from '../lib/daemons';
import { rootfsTar } from '../lib/image';

const IMAGE = 'shoaltest:latest';
/** Runtimes under test: docker's built-in runc (reference) first, then shoal. */
const RUNTIMES = ['runc', 'shoal'];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let cd: Containerd | undefined;
let dd: Dockerd | undefined;
/** Why the daemons cannot run on this machine (tests skip), if so. */
let unavailable: string | undefined;
/** Why they failed to start although they should run here (tests fail). */
let startError: Error | undefined;

test.before(async () => {
  unavailable = cannotRun(['containerd', 'ctr', 'containerd-shim-runc-v2', 'dockerd', 'docker', 'runc', 'tmux', 'script']);
  if (unavailable) return;
  try {
    cd = await startContainerd();
    dd = await startDockerd(cd);
    const r = dd.docker(['import', '--change', 'CMD ["sh"]', rootfsTar(), IMAGE]);
    if (r.code !== 0) throw new Error(`docker import: ${r.stderr}`);
  } catch (e) {
    startError = e as Error;
  }
});

test.after(async () => {
  // Normally already stopped by the last test; this only matters when that one did not run.
  await dd?.stop().catch(() => undefined);
  await cd?.stop().catch(() => undefined);
});

/** The docker client; asserts the daemons are up (or returns undefined when the test must skip). */
function daemon(): Dockerd | undefined {
  if (unavailable) {
    skip(unavailable);
    return undefined;
  }
  if (startError) throw startError;
  return dd!;
}

function ok(r: CmdResult, what: string): string {
  assert.is(r.code, 0, `${what} exited ${r.code}: ${r.stderr}`);
  return r.stdout.trim();
}

/** `docker inspect -f <format> <name>`. */
function inspect(d: Dockerd, name: string, format: string): string {
  return ok(d.docker(['inspect', '-f', format, name]), `inspect ${name}`);
}

async function waitFor(what: string, fn: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** Host path of a container's cgroup directory in v1 `controller`. */
function cgroupDir(d: Dockerd, controller: string, id: string): string {
  return path.join('/sys/fs/cgroup', controller, d.cgroupParent, id);
}

let nameCounter = 0;

/**
 * Registers `name` as a test of `runtime`: the body gets the docker client and a fresh container
 * name generator; every container named through it is force-removed afterwards, then the
 * sandbox must have no new cgroup, mount or process.
 */
function dockerTest(name: string, body: (d: Dockerd, rt: string, newName: () => string) => Promise<void> | void): void {
  for (const rt of RUNTIMES) {
    test(`docker ${rt}: ${name}`, async () => {
      const d = daemon();
      if (!d) return;
      const before = d.snapshot();
      const names: string[] = [];
      const newName = () => {
        const n = `shoal-${rt}-${process.pid}-${++nameCounter}`;
        names.push(n);
        return n;
      };
      let failure: unknown;
      try {
        await body(d, rt, newName);
      } catch (e) {
        failure = e;
      }
      for (const n of names) d.docker(['rm', '-f', n], { timeoutMs: 60_000 });
      if (failure) throw failure;
      const leaks = await d.sandbox.leaksSince(before);
      assert.equal(leaks, [], `leaked after the test:\n${leaks.join('\n')}`);
    });
  }
}

dockerTest('run --rm prints the output and passes the exit code through', (d, rt) => {
  const r = d.docker(['run', '--rm', '--runtime', rt, IMAGE, 'sh', '-c', 'echo hi; exit 3']);
  assert.is(r.stdout, 'hi\n', r.stderr);
  assert.is(r.code, 3, r.stderr);
});

dockerTest('run -d, top, pause/unpause, kill, rm', async (d, rt, newName) => {
  const n = newName();
  const id = ok(d.docker(['run', '-d', '--runtime', rt, '--name', n, IMAGE, 'sleep', '1000']), 'run -d');
  assert.match(id, /^[0-9a-f]{64}$/);
  assert.is(inspect(d, n, '{{.State.Status}}'), 'running');
  const pid = inspect(d, n, '{{.State.Pid}}');
  assert.ok(fs.readFileSync(path.join(cgroupDir(d, 'memory', id), 'cgroup.procs'), 'utf8').split('\n').includes(pid), 'init in <parent>/<id>');

  const top = ok(d.docker(['top', n]), 'top');
  assert.match(top, /PID/);
  assert.match(top, /sleep 1000/);

  ok(d.docker(['pause', n]), 'pause');
  assert.is(inspect(d, n, '{{.State.Status}}'), 'paused');
  assert.is(fs.readFileSync(path.join(cgroupDir(d, 'freezer', id), 'freezer.state'), 'utf8').trim(), 'FROZEN');
  ok(d.docker(['unpause', n]), 'unpause');
  assert.is(inspect(d, n, '{{.State.Status}}'), 'running');
  assert.is(fs.readFileSync(path.join(cgroupDir(d, 'freezer', id), 'freezer.state'), 'utf8').trim(), 'THAWED');

  ok(d.docker(['kill', n]), 'kill');
  await waitFor('exited after kill', () => inspect(d, n, '{{.State.Status}}') === 'exited');
  assert.is(inspect(d, n, '{{.State.ExitCode}}'), '137');
  ok(d.docker(['rm', n]), 'rm');
  assert.not.ok(fs.existsSync(cgroupDir(d, 'memory', id)), 'memory cgroup left after rm');
});

dockerTest('exec: output and exit code, -i stdin, -t terminal, after pause/unpause', (d, rt, newName) => {
  const n = newName();
  ok(d.docker(['run', '-d', '--runtime', rt, '--name', n, IMAGE, 'sleep', '1000']), 'run -d');
  const e = d.docker(['exec', n, 'sh', '-c', 'echo from-exec; echo err >&2; exit 5']);
  assert.is(e.stdout, 'from-exec\n', e.stderr);
  assert.ok(e.stderr.includes('err'), e.stderr);
  assert.is(e.code, 5);
  const cat = d.docker(['exec', '-i', n, 'cat'], { input: 'piped-stdin\n' });
  assert.is(cat.stdout, 'piped-stdin\n', `exec -i: ${cat.stderr}`);

  const t = runInPty(d.dockerArgv(['exec', '-t', n, 'sh', '-c', 'tty; exit 6']));
  assert.match(t.stdout, /\/dev\/pts\/\d+/, `exec -t: ${t.stdout} ${t.stderr}`);
  assert.is(t.code, 6, `exec -t exit code: ${t.stdout}`);
  const it = runInPty(d.dockerArgv(['exec', '-it', n, 'sh', '-c', 'tty']));
  assert.match(it.stdout, /\/dev\/pts\/\d+/, `exec -it: ${it.stdout} ${it.stderr}`);

  ok(d.docker(['pause', n]), 'pause');
  ok(d.docker(['unpause', n]), 'unpause');
  const e2 = d.docker(['exec', n, 'echo', 'after-unpause']);
  assert.is(e2.stdout, 'after-unpause\n', e2.stderr);
});

dockerTest('stop: TERM handled exits 0; TERM ignored is KILLed after -t 1', async (d, rt, newName) => {
  const polite = newName();
  ok(d.docker(['run', '-d', '--runtime', rt, '--name', polite, IMAGE, 'sh', '-c', 'trap "exit 0" TERM; sleep 1000 & wait']), 'run polite');
  ok(d.docker(['stop', '-t', '10', polite]), 'stop polite');
  // Exit code 0 (not 137) shows the TERM reached the trap before docker's KILL fallback.
  assert.is(inspect(d, polite, '{{.State.ExitCode}}'), '0');

  const stubborn = newName();
  ok(d.docker(['run', '-d', '--runtime', rt, '--name', stubborn, IMAGE, 'sh', '-c', 'trap "" TERM; sleep 1000']), 'run stubborn');
  await sleep(300); // let sh install the trap
  ok(d.docker(['stop', '-t', '1', stubborn]), 'stop stubborn');
  // 137 = killed by SIGKILL: the TERM was ignored and docker fell back to KILL.
  assert.is(inspect(d, stubborn, '{{.State.Status}}'), 'exited');
  assert.is(inspect(d, stubborn, '{{.State.ExitCode}}'), '137');
});

dockerTest('kill -s sends the signal; rm -f removes a running container', async (d, rt, newName) => {
  const n = newName();
  ok(d.docker(['run', '-d', '--runtime', rt, '--name', n, IMAGE, 'sh', '-c', 'trap "exit 42" USR1; sleep 1000 & wait']), 'run');
  await sleep(300);
  ok(d.docker(['kill', '-s', 'USR1', n]), 'kill -s USR1');
  await waitFor('exited after USR1', () => inspect(d, n, '{{.State.Status}}') === 'exited');
  assert.is(inspect(d, n, '{{.State.ExitCode}}'), '42');

  const m = newName();
  const id = ok(d.docker(['run', '-d', '--runtime', rt, '--name', m, IMAGE, 'sleep', '1000']), 'run');
  ok(d.docker(['rm', '-f', m]), 'rm -f');
  assert.not.ok(d.docker(['ps', '-aq', '--no-trunc']).stdout.includes(id), 'container still listed after rm -f');
});

dockerTest('run --memory 64m --pids-limit 20 --cpus 0.5 sets the cgroup limits', (d, rt, newName) => {
  const n = newName();
  const id = ok(
    d.docker(['run', '-d', '--runtime', rt, '--name', n, '--memory', '64m', '--pids-limit', '20', '--cpus', '0.5', IMAGE, 'sleep', '1000']),
    'run -d with limits',
  );
  const read = (ctrl: string, file: string) => fs.readFileSync(path.join(cgroupDir(d, ctrl, id), file), 'utf8').trim();
  assert.is(read('memory', 'memory.limit_in_bytes'), String(64 * 1024 * 1024));
  assert.is(read('pids', 'pids.max'), '20');
  const quota = Number(read('cpu', 'cpu.cfs_quota_us'));
  const period = Number(read('cpu', 'cpu.cfs_period_us'));
  assert.is(quota / period, 0.5, `cfs quota ${quota} / period ${period}`);
  // The init process really is in those cgroups.
  const pid = inspect(d, n, '{{.State.Pid}}');
  assert.ok(read('memory', 'cgroup.procs').split('\n').includes(pid), `pid ${pid} not in the memory cgroup`);
});

dockerTest('--pids-limit is enforced: 40 background sleeps stop at 20 tasks', async (d, rt, newName) => {
  const n = newName();
  // Forks fail once the limit is hit: fork in a subshell, count with shell builtins only.
  const script = '(i=0; while [ $i -lt 40 ]; do sleep 30 & i=$((i+1)); done) 2>/dev/null; set -- /proc/[0-9]*; echo tasks=$#; exec sleep 1000';
  ok(d.docker(['run', '-d', '--runtime', rt, '--name', n, '--pids-limit', '20', IMAGE, 'sh', '-c', script]), 'run -d');
  let logs = '';
  await waitFor('the task count in the logs', () => /tasks=\d+/.test((logs = d.docker(['logs', n]).stdout)));
  const tasks = Number(/tasks=(\d+)/.exec(logs)![1]);
  assert.ok(tasks > 5 && tasks <= 20, `tasks in the container with pids.max=20: ${logs}`);
});

dockerTest('run options reach the process: -e, -w, --user, --hostname, --read-only, --cap-drop, -i', (d, rt) => {
  const script = 'echo "foo=$FOO"; pwd; id -u; id -g; hostname; (touch /x 2>/dev/null && echo rw) || echo ro; grep CapEff /proc/self/status';
  const r = d.docker([
    'run', '--rm', '--runtime', rt, '-e', 'FOO=bar baz', '-w', '/tmp', '--user', '65534:65534', '--hostname', 'shoalhost',
    '--read-only', '--cap-drop', 'ALL', IMAGE, 'sh', '-c', script,
  ]);
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout, 'foo=bar baz\n/tmp\n65534\n65534\nshoalhost\nro\nCapEff:\t0000000000000000\n', r.stderr);
  const i = d.docker(['run', '--rm', '-i', '--runtime', rt, IMAGE, 'sh', '-c', 'cat; echo done'], { input: 'line1\nline2\n' });
  assert.is(i.stdout, 'line1\nline2\ndone\n', `run -i: ${i.stderr}`);
});

dockerTest('restart, then stop and start -a the same container again', async (d, rt, newName) => {
  const n = newName();
  ok(d.docker(['run', '-d', '--runtime', rt, '--name', n, IMAGE, 'sh', '-c', 'echo boot; trap "exit 0" TERM; sleep 1000 & wait']), 'run -d');
  const pid1 = inspect(d, n, '{{.State.Pid}}');
  ok(d.docker(['restart', '-t', '5', n]), 'restart');
  assert.is(inspect(d, n, '{{.State.Status}}'), 'running');
  assert.is.not(inspect(d, n, '{{.State.Pid}}'), pid1, 'a new init after restart');
  await waitFor('two boots in the log', () => (d.docker(['logs', n]).stdout.match(/boot/g) ?? []).length === 2);
  ok(d.docker(['stop', '-t', '5', n]), 'stop');
  const m = newName();
  ok(d.docker(['create', '--runtime', rt, '--name', m, IMAGE, 'sh', '-c', 'echo attached; exit 4']), 'create');
  const a = d.docker(['start', '-a', m]);
  assert.is(a.stdout, 'attached\n', a.stderr);
  assert.is(a.code, 4, a.stderr);
  const again = d.docker(['start', '-a', m]);
  assert.is(again.stdout, 'attached\n', `second start: ${again.stderr}`);
});

dockerTest('update --memory --pids-limit changes the cgroup of a running container', (d, rt, newName) => {
  const n = newName();
  const id = ok(d.docker(['run', '-d', '--runtime', rt, '--name', n, '--memory', '64m', IMAGE, 'sleep', '1000']), 'run -d');
  const u = d.docker(['update', '--memory', '96m', '--memory-swap', '-1', '--pids-limit', '30', n]);
  assert.is(u.code, 0, `update: ${u.stderr}`);
  const read = (ctrl: string, file: string) => fs.readFileSync(path.join(cgroupDir(d, ctrl, id), file), 'utf8').trim();
  assert.is(read('memory', 'memory.limit_in_bytes'), String(96 * 1024 * 1024));
  assert.is(read('pids', 'pids.max'), '30');
});

dockerTest('volumes: -v rw and :ro binds of a host dir, --tmpfs', (d, rt) => {
  const host = fs.mkdtempSync(path.join(d.sandbox.dir, 'vol-'));
  try {
    fs.writeFileSync(path.join(host, 'in.txt'), 'from-host\n');
    const r = d.docker([
      'run', '--rm', '--runtime', rt, '-v', `${host}:/data`, '-v', `${host}:/ro:ro`, '--tmpfs', '/scratch:size=1m',
      IMAGE, 'sh', '-c',
      'cat /data/in.txt; echo from-container > /data/out.txt; (echo x > /ro/y 2>/dev/null && echo ro-writable) || echo ro-ok; ' +
        'grep " /scratch " /proc/mounts | cut -d" " -f3; echo s > /scratch/f && cat /scratch/f',
    ]);
    assert.is(r.stdout, 'from-host\nro-ok\ntmpfs\ns\n', r.stderr);
    assert.is(r.code, 0, r.stderr);
    assert.is(fs.readFileSync(path.join(host, 'out.txt'), 'utf8'), 'from-container\n');
  } finally {
    fs.rmSync(host, { recursive: true, force: true });
  }
});

dockerTest('logs keeps stdout and stderr apart; wait returns the exit code', async (d, rt, newName) => {
  const n = newName();
  ok(d.docker(['run', '-d', '--runtime', rt, '--name', n, IMAGE, 'sh', '-c', 'echo to-out; echo to-err >&2; sleep 0.5; exit 12']), 'run -d');
  const w = d.docker(['wait', n]);
  assert.is(w.stdout.trim(), '12', w.stderr);
  const logs = d.docker(['logs', n]);
  assert.is(logs.stdout, 'to-out\n', 'stdout stream');
  assert.is(logs.stderr, 'to-err\n', 'stderr stream');
});

dockerTest('exec options: --user, -w, -e, -d', async (d, rt, newName) => {
  const n = newName();
  ok(d.docker(['run', '-d', '--runtime', rt, '--name', n, IMAGE, 'sleep', '1000']), 'run -d');
  const e = d.docker(['exec', '--user', '65534:65534', '-w', '/tmp', '-e', 'GREETING=hello there', n, 'sh', '-c', 'id -u; id -g; pwd; echo "$GREETING"']);
  assert.is(e.stdout, '65534\n65534\n/tmp\nhello there\n', e.stderr);
  ok(d.docker(['exec', '-d', n, 'sh', '-c', 'echo detached > /tmp/marker']), 'exec -d');
  let cat = '';
  await waitFor('the detached exec to write its marker', () => (cat = d.docker(['exec', n, 'cat', '/tmp/marker']).stdout) === 'detached\n');
  assert.is(cat, 'detached\n');
});

dockerTest('--network/--pid/--ipc container:X join the other container\'s namespaces; --uts host', (d, rt, newName) => {
  const a = newName();
  ok(d.docker(['run', '-d', '--runtime', rt, '--name', a, '--ipc', 'shareable', IMAGE, 'sleep', '1000']), 'run -d a');
  const apid = inspect(d, a, '{{.State.Pid}}');
  const ns = (pid: string, t: string) => fs.readlinkSync(`/proc/${pid}/ns/${t}`);
  const b = newName();
  ok(
    d.docker(['run', '-d', '--runtime', rt, '--name', b, '--network', `container:${a}`, '--pid', `container:${a}`, '--ipc', `container:${a}`, '--uts', 'host', IMAGE, 'sleep', '999']),
    'run -d b',
  );
  const bpid = inspect(d, b, '{{.State.Pid}}');
  for (const t of ['net', 'pid', 'ipc']) assert.is(ns(bpid, t), ns(apid, t), `${t} namespace shared`);
  assert.is(ns(bpid, 'uts'), fs.readlinkSync('/proc/self/ns/uts'), 'uts namespace is the host\'s');
  assert.is.not(ns(bpid, 'mnt'), ns(apid, 'mnt'), 'own mount namespace');
  const ps = d.docker(['exec', b, 'ps']);
  assert.match(ps.stdout, /sleep 1000/, `b sees a's processes: ${ps.stdout} ${ps.stderr}`);
});

// --privileged is not tested: this host's root lacks CAP_SYS_RESOURCE in its bounding set, so
// runc fails it too ("unable to apply caps: operation not permitted").
dockerTest('--device, --ulimit, --sysctl, --cap-add, seccomp=unconfined', (d, rt) => {
  const r = d.docker([
    'run', '--rm', '--runtime', rt, '--device', '/dev/zero:/dev/myzero', '--ulimit', 'nofile=100:200', '--sysctl', 'net.ipv4.ip_forward=1',
    IMAGE, 'sh', '-c', 'head -c 4 /dev/myzero | wc -c; ulimit -n; ulimit -Hn; cat /proc/sys/net/ipv4/ip_forward; grep Seccomp: /proc/self/status',
  ]);
  assert.is(r.stdout, '4\n100\n200\n1\nSeccomp:\t2\n', r.stderr);
  const p = d.docker(['run', '--rm', '--runtime', rt, '--cap-add', 'SYS_ADMIN', '--security-opt', 'seccomp=unconfined', IMAGE, 'sh', '-c', 'grep -E "CapEff|Seccomp:" /proc/self/status']);
  assert.is(p.code, 0, p.stderr);
  const capEff = BigInt('0x' + /CapEff:\t([0-9a-f]+)/.exec(p.stdout)![1]);
  assert.ok((capEff >> 21n) & 1n, `CAP_SYS_ADMIN in CapEff: ${p.stdout}`);
  assert.match(p.stdout, /Seccomp:\t0/, `no seccomp with seccomp=unconfined: ${p.stdout}`);
});

dockerTest('OOM: --memory 16m and a growing shell variable is OOM-killed, OOMKilled=true', async (d, rt, newName) => {
  const n = newName();
  ok(
    d.docker(['run', '-d', '--runtime', rt, '--name', n, '--memory', '16m', '--memory-swap', '16m', IMAGE, 'sh', '-c', 'x=0123456789; while :; do x=$x$x; done']),
    'run -d',
  );
  await waitFor('the container to be OOM-killed', () => inspect(d, n, '{{.State.Status}}') === 'exited', 30_000);
  assert.is(inspect(d, n, '{{.State.ExitCode}}'), '137');
  assert.is(inspect(d, n, '{{.State.OOMKilled}}'), 'true');
});

dockerTest('errors: missing executable exits 127, non-executable 126; a missing -w dir is created', (d, rt) => {
  const wd = d.docker(['run', '--rm', '--runtime', rt, '-w', '/new/work/dir', IMAGE, 'pwd']);
  assert.is(wd.stdout, '/new/work/dir\n', wd.stderr);
  // docker maps the runtime's create error to 127/126 by substrings of its message
  // ("no such file or directory" / "executable file not found", "permission denied"), else 125.
  const missing = d.docker(['run', '--rm', '--runtime', rt, IMAGE, '/no/such/binary']);
  assert.is(missing.code, 127, `missing executable: ${missing.stderr}`);
  assert.match(missing.stderr, /no such file or directory|not found/i, missing.stderr);
  const notExec = d.docker(['run', '--rm', '--runtime', rt, IMAGE, '/etc/passwd']);
  assert.is(notExec.code, 126, `non-executable: ${notExec.stderr}`);
  assert.match(notExec.stderr, /permission denied/i, notExec.stderr);
});

dockerTest('more settings: cpuset, cpu-shares, memory-reservation, swappiness, oom-score-adj, shm-size, no-new-privileges, group-add', (d, rt, newName) => {
  const n = newName();
  const id = ok(
    d.docker([
      'run', '-d', '--runtime', rt, '--name', n, '--cpuset-cpus', '0', '--cpu-shares', '512', '--memory', '64m', '--memory-reservation', '32m',
      '--memory-swappiness', '10', '--oom-score-adj', '500', '--shm-size', '8m', '--security-opt', 'no-new-privileges', '--user', '1000:1000',
      '--group-add', '5', '--group-add', '6', IMAGE, 'sleep', '1000',
    ]),
    'run -d',
  );
  const read = (ctrl: string, file: string) => fs.readFileSync(path.join(cgroupDir(d, ctrl, id), file), 'utf8').trim();
  assert.is(read('cpuset', 'cpuset.cpus'), '0');
  assert.is(read('cpu', 'cpu.shares'), '512');
  assert.is(read('memory', 'memory.soft_limit_in_bytes'), String(32 * 1024 * 1024));
  assert.is(read('memory', 'memory.swappiness'), '10');
  const pid = inspect(d, n, '{{.State.Pid}}');
  assert.is(fs.readFileSync(`/proc/${pid}/oom_score_adj`, 'utf8').trim(), '500');
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  assert.match(status, /^NoNewPrivs:\t1$/m);
  assert.match(status, /^Uid:\t1000\t1000\t1000\t1000$/m);
  const groups = /^Groups:\t(.*)$/m.exec(status)![1].trim().split(/\s+/).sort();
  assert.equal(groups, ['1000', '5', '6'], `supplementary groups (--group-add and the primary gid): ${groups}`);
  const shm = d.docker(['exec', n, 'sh', '-c', 'grep " /dev/shm " /proc/mounts']);
  assert.match(shm.stdout, /size=8192k/, `shm: ${shm.stdout} ${shm.stderr}`);
});

dockerTest('--stop-signal and --init-less PID 1: stop delivers the configured signal', async (d, rt, newName) => {
  const n = newName();
  ok(d.docker(['run', '-d', '--runtime', rt, '--name', n, '--stop-signal', 'USR2', IMAGE, 'sh', '-c', 'trap "exit 21" USR2; sleep 1000 & wait']), 'run -d');
  await sleep(300);
  ok(d.docker(['stop', '-t', '10', n]), 'stop');
  assert.is(inspect(d, n, '{{.State.ExitCode}}'), '21');
});

dockerTest('stats --no-stream shows memory and pids numbers', (d, rt, newName) => {
  const n = newName();
  ok(d.docker(['run', '-d', '--runtime', rt, '--name', n, '--memory', '64m', IMAGE, 'sleep', '1000']), 'run -d');
  const r = d.docker(['stats', '--no-stream', '--format', '{{.Name}}|{{.MemUsage}}|{{.PIDs}}|{{.CPUPerc}}', n], { timeoutMs: 30_000 });
  assert.is(r.code, 0, `stats: ${r.stderr}`);
  const [name, mem, pids, cpu] = r.stdout.trim().split('|');
  assert.is(name, n, r.stdout);
  assert.match(mem, /^[1-9][0-9.]*[KMG]i?B \/ 64MiB$/, `mem usage: ${r.stdout}`);
  assert.is(pids, '1', r.stdout);
  assert.match(cpu, /^\d+\.\d+%$/, r.stdout);
});

dockerTest('run -it in a terminal: prompt, typed input echoed and run, exit status', async (d, rt, newName) => {
  const name = newName();
  const tmux = new TmuxSession(d.dockerArgv(['run', '-it', '--rm', '--name', name, '--runtime', rt, IMAGE, 'sh']), d.sandbox.dir);
  try {
    await tmux.waitFor(/\/ # $/m, 30_000);
    tmux.type('echo typed-$((6*7)); tty');
    tmux.keys('Enter');
    // tty prints after the echo: wait for its line, so both are on the screen.
    const screen = await tmux.waitFor(/^\/dev\/pts\/\d+$/m);
    assert.match(screen, /echo typed-\$\(\(6\*7\)\); tty/, 'typed input is echoed');
    assert.match(screen, /^typed-42$/m, 'typed input ran');
    tmux.type('exit 9');
    tmux.keys('Enter');
    await waitFor('docker run -it to exit', () => tmux.exited(), 30_000).catch((e) => {
      throw new Error(`${(e as Error).message}; screen:\n${tmux.capture()}`);
    });
    assert.is(tmux.exitStatus(), 9, tmux.capture());
  } finally {
    tmux.kill();
    d.docker(['rm', '-f', name]); // only does something when the test failed midway
  }
});

test('docker: dockerd and containerd stop cleanly, leaving nothing', async () => {
  if (unavailable) return void skip(unavailable);
  if (startError) throw startError;
  const d = dd!;
  const c = cd!;
  dd = undefined;
  cd = undefined;
  // containerd must stop even when dockerd's stop reports leftovers (or node never exits).
  try {
    await d.stop();
  } finally {
    await c.stop();
  }
});

test.run();
