#!/usr/bin/env node
/*
 * `npm test`: prepares a fresh clone and runs every suite, then prints `N passed, N failed,
 * N skipped` as the last line. Plain JavaScript on purpose: it must run before anything is built.
 *
 *   node test/harness.js                      everything
 *   node test/harness.js unit|integration     only those uvu files
 *   node test/harness.js conformance          only the conformance runner
 *   node test/harness.js native cgroup        test files whose path contains a substring
 *   node test/harness.js conformance -- -r runc   arguments after `--` go to the conformance runner
 *   --no-setup                                skip npm install, build and apt
 *
 * Order: npm install (if node_modules is missing or older than package.json), build (if outputs
 * are missing or older than their sources), Debian packages, then each compiled uvu file as its
 * own `node` process (unit, then integration, sequentially: integration tests create real
 * containers as root), then the conformance runner. Each suite has a timeout so a hung test
 * cannot eat the CI budget (60 minutes on 2 cores).
 */
'use strict';

const { spawn, spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

/** Debian packages the tests need; installed when missing. */
const APT_PACKAGES = ['busybox-static', 'runc', 'crun', 'containerd', 'docker.io', 'podman', 'tmux', 'qemu-system-x86', 'criu', 'strace'];

/** How long a suite may keep running after printing uvu's summary. */
const HUNG_AFTER_SUMMARY_MS = 30_000;

/** Per-suite time limit; SHOAL_SUITE_TIMEOUT (seconds) overrides it. */
const SUITE_TIMEOUT_MS = (Number(process.env.SHOAL_SUITE_TIMEOUT) || 15 * 60) * 1000;
/** Time between SIGTERM and SIGKILL of a timed-out suite's process group. */
const KILL_GRACE_MS = 5000;
/** How long to wait for a suite's output pipes after it exited (a leaked grandchild may hold them). */
const DRAIN_MS = 2000;

const ROOT = path.resolve(__dirname, '..');
const BUILD = path.join(ROOT, 'build');
const SUITE_KINDS = ['unit', 'integration'];
const CONFORMANCE_RUNNER = path.join(BUILD, 'conformance', 'src', 'runner.js');

/** Sources whose change needs `npm run build:ts` (tsc + the schema validators). */
const TS_SOURCES = ['shim/src', 'shim/proto', 'spec', 'conformance/src', 'test', 'bench', 'scripts', 'tsconfig.json', 'package.json'];
/** Sources whose change needs `npm run build` (node-gyp rebuild, then build:ts). */
const NATIVE_SOURCES = ['native', 'binding.gyp'];

function log(msg) {
  process.stdout.write(`[harness] ${msg}\n`);
}

/** Newest mtime (ms) of the files under `rel` matching `filter`, or 0 when there are none. */
function newestMtime(rel, filter) {
  const p = path.join(ROOT, rel);
  let st;
  try {
    st = fs.lstatSync(p);
  } catch {
    return 0;
  }
  if (!st.isDirectory()) return filter(p) ? st.mtimeMs : 0;
  let newest = 0;
  for (const ent of fs.readdirSync(p, { withFileTypes: true })) {
    if (ent.name === 'node_modules' || ent.name.startsWith('.')) continue;
    newest = Math.max(newest, newestMtime(path.join(rel, ent.name), filter));
  }
  return newest;
}

/** Runs a setup command with inherited stdio; returns true on success. */
function runStep(cmd, args, timeoutMs = 30 * 60 * 1000) {
  log(`$ ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: ROOT, stdio: 'inherit', timeout: timeoutMs });
  if (r.error) log(`${cmd} failed: ${r.error.message}`);
  else if (r.status !== 0) log(`${cmd} exited with ${r.status ?? r.signal}`);
  return !r.error && r.status === 0;
}

/** `npm install` when node_modules is missing or older than package.json. */
function ensureNodeModules(failures) {
  const nm = path.join(ROOT, 'node_modules');
  let installed = 0;
  for (const p of [nm, path.join(nm, '.package-lock.json')]) {
    try {
      installed = Math.max(installed, fs.statSync(p).mtimeMs);
    } catch {
      // missing: installed stays 0 if the directory itself is missing
    }
  }
  if (installed >= fs.statSync(path.join(ROOT, 'package.json')).mtimeMs) return;
  if (!runStep('npm', ['install'])) {
    failures.push('npm install');
    return;
  }
  // npm may leave node_modules untouched when nothing changed; mark it current.
  const now = new Date();
  fs.utimesSync(nm, now, now);
}

/** Output files of the binding.gyp targets (a `.node` addon or an executable). */
function nativeOutputs() {
  const gyp = fs.readFileSync(path.join(ROOT, 'binding.gyp'), 'utf8');
  const outs = [];
  // binding.gyp is a Python literal; a regex over target blocks avoids needing a parser.
  const re = /"target_name"\s*:\s*"([^"]+)"([^{}]*?"type"\s*:\s*"([^"]+)")?/g;
  for (let m; (m = re.exec(gyp)); ) {
    const name = m[1];
    const type = m[3];
    outs.push(path.join(BUILD, 'Release', type === 'executable' ? name : `${name}.node`));
  }
  return outs;
}

/** Oldest mtime of `files`, or 0 when any is missing. */
function oldestMtime(files) {
  let oldest = Infinity;
  for (const f of files) {
    try {
      oldest = Math.min(oldest, fs.statSync(f).mtimeMs);
    } catch {
      return 0;
    }
  }
  return oldest === Infinity ? 0 : oldest;
}

/** Written after a successful build, so outputs a build generates into source dirs count as built. */
const BUILD_STAMP = path.join(BUILD, '.harness-built');

/** When TypeScript was last built: the newest compiled .js under build/ (tsc rewrites them all) or the stamp. */
function lastTsBuild() {
  let newest = 0;
  for (const dir of ['shim', 'spec', 'conformance', 'test']) {
    newest = Math.max(newest, newestMtime(path.join('build', dir), (f) => f.endsWith('.js')));
  }
  try {
    newest = Math.max(newest, fs.statSync(BUILD_STAMP).mtimeMs);
  } catch {
    // no stamp yet (fresh clone built by npm install's prepare)
  }
  return newest;
}

function buildStep(script, failures) {
  const ok = runStep('npm', ['run', script]);
  if (ok) fs.writeFileSync(BUILD_STAMP, `${new Date().toISOString()} npm run ${script}\n`);
  else failures.push(`npm run ${script}`);
  return ok;
}

/**
 * `npm run build` when native outputs are stale, `npm run build:ts` when only TS ones are. A failed
 * native build still gets a TS build, so one broken C file does not hide every TypeScript test.
 */
function ensureBuilt(failures) {
  const nativeSrc = Math.max(...NATIVE_SOURCES.map((s) => newestMtime(s, () => true)));
  if (oldestMtime(nativeOutputs()) < nativeSrc) {
    const started = Date.now();
    if (buildStep('build', failures)) return;
    // make stopped at the first broken target: build the others anyway (`-k`) so one broken C
    // file fails its own tests only. The failure is already counted above.
    if (fs.existsSync(path.join(BUILD, 'Makefile'))) runStep('make', ['-C', BUILD, '-k', '-j2', 'BUILDTYPE=Release']);
    // `build` is node-gyp rebuild && build:ts: run build:ts only if tsc never got to run.
    if (lastTsBuild() < started) buildStep('build:ts', failures);
    return;
  }
  const tsSrc = Math.max(
    ...TS_SOURCES.map((s) =>
      newestMtime(s, (f) => f !== __filename && /\.(ts|js|json)$/.test(f) && !f.endsWith('.d.ts')),
    ),
  );
  if (lastTsBuild() < tsSrc) buildStep('build:ts', failures);
}

/** Installs the APT_PACKAGES that dpkg does not report as installed. */
function ensureDebianPackages(failures) {
  const q = spawnSync('dpkg-query', ['-W', '-f=${Package} ${Status}\n', ...APT_PACKAGES], { encoding: 'utf8' });
  if (q.error) {
    log(`dpkg-query unavailable (${q.error.message}); not installing ${APT_PACKAGES.join(' ')}`);
    return;
  }
  const installed = new Set(
    q.stdout
      .split('\n')
      .filter((l) => / install ok installed$/.test(l))
      .map((l) => l.split(' ')[0]),
  );
  const missing = APT_PACKAGES.filter((p) => !installed.has(p));
  if (missing.length === 0) return;
  if (process.getuid && process.getuid() !== 0) {
    log(`not root: cannot install missing Debian packages: ${missing.join(' ')}`);
    failures.push('apt-get install');
    return;
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  log(`installing Debian packages: ${missing.join(' ')}`);
  const steps = [
    ['apt-get', ['update']],
    ['apt-get', ['install', '-y', '--no-install-recommends', ...missing]],
  ];
  for (const [cmd, args] of steps) {
    log(`$ ${cmd} ${args.join(' ')}`);
    const r = spawnSync(cmd, args, { stdio: 'inherit', env, timeout: 15 * 60 * 1000 });
    if (r.error || r.status !== 0) {
      log(`${cmd} ${args[0]} failed`);
      failures.push(`apt-get ${args[0]}`);
      return;
    }
  }
}

/**
 * Fetches the containerd releases the shim tests also run under (1.7 and 2.x from Debian trixie
 * and sid, unpacked into a cache, not installed: test/lib/containerd-releases.ts).
 */
function ensureContainerdReleases(failures) {
  const lib = path.join(BUILD, 'test', 'lib', 'containerd-releases.js');
  if (!fs.existsSync(lib)) return;
  if (process.getuid && process.getuid() !== 0) return log('not root: not fetching containerd releases');
  for (const f of require(lib).fetchReleases(log)) {
    log(`containerd releases: ${f}`);
    failures.push(`containerd releases: ${f}`);
  }
}

function stripAnsi(s) {
  return s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
}

/** The last value of a `Label:   N` line in uvu's summary, or undefined. */
function lastField(text, label) {
  const all = [...text.matchAll(new RegExp(`^\\s*${label}:\\s+(\\d+)\\s*$`, 'gm'))];
  return all.length ? Number(all[all.length - 1][1]) : undefined;
}

/** Counts from uvu's summary; a missing summary or a non-zero exit counts as one failure. */
function parseUvu(text, outcome) {
  const total = lastField(text, 'Total');
  const passed = lastField(text, 'Passed');
  const skipped = lastField(text, 'Skipped') || 0;
  if (total === undefined || passed === undefined) {
    return { passed: 0, failed: 1, skipped: 0, note: `no uvu summary (${outcome.describe})` };
  }
  let failed = total - passed;
  let note = '';
  if (outcome.code !== 0 && failed === 0) {
    failed = 1;
    note = `exited ${outcome.describe} after its summary`;
  }
  return { passed, failed, skipped, note };
}

/** Counts from the conformance runner's last `N passed, N failed[, N skipped]` line. */
function parseConformance(text, outcome) {
  const all = [...text.matchAll(/^\s*(\d+) passed, (\d+) failed(?:, (\d+) skipped)?\s*$/gm)];
  if (!all.length) return { passed: 0, failed: 1, skipped: 0, note: `no summary line (${outcome.describe})` };
  const m = all[all.length - 1];
  const res = { passed: Number(m[1]), failed: Number(m[2]), skipped: Number(m[3] || 0), note: '' };
  if (outcome.code !== 0 && res.failed === 0) {
    res.failed = 1;
    res.note = `exited ${outcome.describe}`;
  }
  return res;
}

/** Suites that failed once and passed when run again. */
const flaky = [];

let current = null; // the running suite's child, killed if the harness itself is interrupted

/** Kills a suite's whole process group (it was started detached, as a group leader). */
function killGroup(child, sig) {
  try {
    process.kill(-child.pid, sig);
  } catch {
    // already gone
  }
}

/** Runs one suite as `node <args>`, streaming its output; resolves with its exit and output. */
function runSuite(args) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    current = child;
    let out = '';
    let timedOut = false;
    // A suite that printed uvu's summary but does not exit leaked a handle (a daemon, a timer):
    // kill it after a grace period instead of waiting for the suite timeout.
    let hungTimer = null;
    let hung = false;
    child.stdout.on('data', (d) => {
      process.stdout.write(d);
      out += d;
      if (!hungTimer && /Duration:\s/.test(stripAnsi(out))) {
        hungTimer = setTimeout(() => {
          hung = true;
          process.stdout.write(`\n[harness] the suite printed its summary but did not exit within ${HUNG_AFTER_SUMMARY_MS / 1000}s (a leaked handle); killing\n`);
          killGroup(child, 'SIGKILL');
        }, HUNG_AFTER_SUMMARY_MS);
        hungTimer.unref();
      }
    });
    child.stderr.on('data', (d) => {
      process.stderr.write(d);
      out += d;
    });
    const timer = setTimeout(() => {
      timedOut = true;
      process.stdout.write(`\n[harness] timed out after ${SUITE_TIMEOUT_MS / 1000}s; killing\n`);
      killGroup(child, 'SIGTERM');
      setTimeout(() => killGroup(child, 'SIGKILL'), KILL_GRACE_MS).unref();
    }, SUITE_TIMEOUT_MS);
    let finished = false;
    const finish = (code, signal, err) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      if (hungTimer) clearTimeout(hungTimer);
      current = null;
      const describe = err
        ? `spawn error: ${err.message}`
        : timedOut
          ? `timed out after ${SUITE_TIMEOUT_MS / 1000}s`
          : signal
            ? `killed by ${signal}`
            : `code ${code}`;
      const done = () =>
        resolve({
          code: timedOut || err || signal ? -1 : code,
          describe: hung ? 'did not exit after its summary (leaked handle)' : describe,
          text: stripAnsi(out) + (hung ? '\n[harness] did not exit after its summary\n' : ''),
          hung,
        });
      // A process leaked by the suite may keep the pipes open: wait briefly, then stop reading.
      let open = 2;
      const drained = setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
        done();
      }, DRAIN_MS);
      const onEnd = () => {
        if (--open === 0) {
          clearTimeout(drained);
          done();
        }
      };
      if (err) return done();
      child.stdout.once('close', onEnd);
      child.stderr.once('close', onEnd);
      if (child.stdout.destroyed) onEnd();
      if (child.stderr.destroyed) onEnd();
    };
    child.on('exit', (code, signal) => finish(code, signal));
    child.on('error', (err) => finish(null, null, err));
  });
}

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    if (current) killGroup(current, 'SIGKILL');
    process.exit(130);
  });
}

/** Parses argv into selectors, conformance pass-through args and flags. */
function parseArgs(argv) {
  const dd = argv.indexOf('--');
  const own = dd < 0 ? argv : argv.slice(0, dd);
  const passThrough = dd < 0 ? [] : argv.slice(dd + 1);
  const noSetup = own.includes('--no-setup');
  const selectors = own.filter((a) => a !== '--no-setup');
  return { selectors, passThrough, noSetup };
}

/** Compiled uvu files of one kind whose TypeScript source still exists (no stale outputs). */
function testFiles(kind) {
  const dir = path.join(BUILD, 'test', kind);
  let names;
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((n) => n.endsWith('.test.js'))
    .filter((n) => {
      const src = path.join(ROOT, 'test', kind, n.replace(/\.js$/, ''));
      return fs.existsSync(`${src}.ts`) || fs.existsSync(`${src}.js`);
    })
    .sort()
    .map((n) => path.join(dir, n));
}

async function main() {
  const { selectors, passThrough, noSetup } = parseArgs(process.argv.slice(2));
  const results = [];
  const setupFailures = [];

  if (!noSetup) {
    ensureNodeModules(setupFailures);
    ensureBuilt(setupFailures);
    ensureDebianPackages(setupFailures);
    ensureContainerdReleases(setupFailures);
  }
  for (const f of setupFailures) results.push({ name: `setup: ${f}`, passed: 0, failed: 1, skipped: 0, note: '' });

  const all = selectors.length === 0;
  const wants = (kind, rel) =>
    all || selectors.some((s) => s === kind || (!SUITE_KINDS.includes(s) && s !== 'conformance' && rel.includes(s)));

  for (const kind of SUITE_KINDS) {
    for (const file of testFiles(kind)) {
      const rel = path.relative(path.join(BUILD, 'test'), file);
      if (!wants(kind, rel)) continue;
      process.stdout.write(`\n[harness] === ${rel} ===\n`);
      let outcome = await runSuite([file]);
      let res = parseUvu(outcome.text, outcome);
      // Known flake (see the issue notes): the in-process shim tests sometimes see a created init
      // leave its exec fifo and exit before Start. A failing integration suite is run up to twice
      // more; a pass on retry is reported loudly, never silently.
      for (let attempt = 2; res.failed > 0 && kind === 'integration' && attempt <= 3; attempt++) {
        process.stdout.write(`\n[harness] FLAKY? ${rel} failed (${res.failed}); attempt ${attempt} of 3\n`);
        outcome = await runSuite([file]);
        res = parseUvu(outcome.text, outcome);
        if (res.failed === 0) flaky.push(`${rel} (attempt ${attempt})`);
      }
      results.push({ name: rel, ...res });
    }
  }

  if (all || selectors.includes('conformance')) {
    if (fs.existsSync(CONFORMANCE_RUNNER)) {
      process.stdout.write('\n[harness] === conformance ===\n');
      // shoal, and runc as the reference: a case runc fails is questioned, not trusted.
      const runs = passThrough.length ? [['conformance', passThrough]] : [['conformance (shoal)', []], ['conformance (runc)', ['-r', '/usr/sbin/runc']]];
      for (const [name, args] of runs) {
        if (runs.length > 1) process.stdout.write(`\n[harness] --- ${name} ---\n`);
        const outcome = await runSuite([CONFORMANCE_RUNNER, ...args]);
        results.push({ name, ...parseConformance(outcome.text, outcome) });
      }
    } else {
      log(`no conformance runner at ${path.relative(ROOT, CONFORMANCE_RUNNER)}; skipped`);
    }
  }

  if (flaky.length) process.stdout.write(`\n[harness] FLAKY (failed once, passed on retry): ${flaky.join(', ')}\n`);
  const sum = { passed: 0, failed: 0, skipped: 0 };
  process.stdout.write('\n[harness] results:\n');
  const width = Math.max(10, ...results.map((r) => r.name.length));
  for (const r of results) {
    sum.passed += r.passed;
    sum.failed += r.failed;
    sum.skipped += r.skipped;
    const mark = r.failed ? 'FAIL' : 'ok  ';
    process.stdout.write(
      `  ${mark} ${r.name.padEnd(width)}  ${r.passed} passed, ${r.failed} failed, ${r.skipped} skipped` +
        `${r.note ? `  (${r.note})` : ''}\n`,
    );
  }
  if (results.length === 0) process.stdout.write('  (no suite matched)\n');
  process.stdout.write(`${sum.passed} passed, ${sum.failed} failed, ${sum.skipped} skipped\n`);
  process.exit(sum.failed > 0 || sum.passed + sum.failed === 0 ? 1 : 0);
}

main().catch((err) => {
  process.stderr.write(`[harness] ${err && err.stack ? err.stack : err}\n`);
  process.stdout.write('0 passed, 1 failed\n');
  process.exit(1);
});
