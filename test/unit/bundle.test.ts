/* scripts/bundle.js: the one-file bundle and its loader's V8 code cache, grown per covered command. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { CACHED_COMMANDS, GLOBAL_FLAGS } from '../../shim/src/cli/args';

const BUNDLER = path.join(__dirname, '../../../scripts/bundle.js');

/** A two-module program: `out.js [name]` covers `name` in the code cache and prints a result. */
function makeProgram(bundlerArgs: string[] = []): { dir: string; out: string; cache: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-bundle-'));
  fs.writeFileSync(path.join(dir, 'lib.js'), 'exports.twice = (x) => x * 2;\n');
  fs.writeFileSync(
    path.join(dir, 'entry.js'),
    `const { twice } = require('./lib');
const cache = globalThis[Symbol.for('shoal.codeCache')];
if (process.argv[2]) cache.cover(process.argv[2]);
process.stdout.write(String(twice(21)));
// 'flush': write the cache now and end without Node's exit (no 'exit' listeners), as shoal's
// hot commands do with _exit.
if (process.argv[3] === 'flush') {
  cache.flush();
  process.kill(process.pid, 'SIGKILL');
}
`,
  );
  const out = path.join(dir, 'out.js');
  const r = spawnSync(process.execPath, [BUNDLER, path.join(dir, 'entry.js'), out, ...bundlerArgs], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  return { dir, out, cache: path.join(dir, 'out.bundle.js.cache') };
}

function runProgram(out: string, ...args: string[]): void {
  const r = spawnSync(process.execPath, [out, ...args], { encoding: 'utf8' });
  if (args[1] === 'flush') assert.is(r.signal, 'SIGKILL', r.stderr);
  else assert.is(r.status, 0, r.stderr);
  assert.is(r.stdout, '42');
}

/** The cache's first line: the commands it covers. */
const covered = (cache: string): string => fs.readFileSync(cache, 'latin1').split('\n', 1)[0];
const stamp = (f: string): string => {
  const s = fs.statSync(f);
  return `${s.ino}:${s.mtimeMs}`;
};

test('the code cache is written on the first run, then grows once per newly covered command', () => {
  const { dir, out, cache } = makeProgram();
  try {
    assert.not.ok(fs.existsSync(cache));
    runProgram(out);
    assert.is(covered(cache), '', 'first run: a cache covering no command');
    const first = stamp(cache);
    runProgram(out);
    assert.is(stamp(cache), first, 'an accepted cache is not rewritten');
    runProgram(out, 'run');
    assert.is(covered(cache), 'run', 'a new command rewrites it');
    const withRun = stamp(cache);
    runProgram(out, 'run');
    runProgram(out);
    assert.is(stamp(cache), withRun, 'a covered command (or none) leaves it alone');
    runProgram(out, 'create');
    assert.is(covered(cache), 'create,run', 'the union, sorted');
    assert.equal(fs.readdirSync(dir).filter((f) => f.includes('.cache.')), [], 'no temporary file left');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('flush() writes a due cache before the program ends without Node\'s exit', () => {
  const { dir, out, cache } = makeProgram();
  try {
    runProgram(out, 'run', 'flush');
    assert.is(covered(cache), 'run', 'written by flush, not by an exit listener');
    const s = stamp(cache);
    runProgram(out, 'run', 'flush');
    assert.is(stamp(cache), s, 'nothing due: not rewritten');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a cache V8 rejects (corrupt, or from another Node) is replaced, and covers nothing', () => {
  const { dir, out, cache } = makeProgram();
  try {
    runProgram(out, 'run');
    fs.writeFileSync(cache, 'run,create\nnot a V8 code cache at all');
    runProgram(out);
    assert.is(covered(cache), '');
    assert.ok(fs.statSync(cache).size > 100, 'real cache data written');
    const good = stamp(cache);
    runProgram(out);
    assert.is(stamp(cache), good, 'the rewritten cache is accepted');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('with --slots, each named command has a cache of its own, found past the global flags', () => {
  const { dir, out, cache } = makeProgram(['--slots', 'run,state', '--value-flags', 'root,log']);
  const slotCache = (name: string) => path.join(dir, `out.bundle.js.${name}.cache`);
  try {
    // (the program covers its first argument: the command here)
    runProgram(out, 'run');
    assert.ok(fs.existsSync(slotCache('run')), 'run has its own cache');
    assert.is(covered(slotCache('run')), 'run');
    assert.not.ok(fs.existsSync(cache), 'the shared cache is not written for it');
    const r = spawnSync(process.execPath, [out, '--root', '/x', '--log=/y', '--debug', 'state', 'id'], { encoding: 'utf8' });
    assert.is(r.status, 0, r.stderr);
    assert.ok(fs.existsSync(slotCache('state')), 'the command after the global flags and their values');
    runProgram(out, 'list');
    assert.is(covered(cache), 'list', 'a command without a slot uses the shared cache');
    const runStamp = stamp(slotCache('run'));
    runProgram(out, 'run');
    assert.is(stamp(slotCache('run')), runStamp, "run's cache is accepted as it is");
    assert.equal(fs.readdirSync(dir).filter((f) => f.endsWith('.cache')).sort(), ['out.bundle.js.cache', 'out.bundle.js.run.cache', 'out.bundle.js.state.cache']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('package.json gives the CLI bundle a slot per hot command and the string-valued global flags', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '../../../package.json'), 'utf8'));
  const m = /scripts\/bundle\.js build\/shim\/src\/cli\/main\.js build\/shoal\.js --slots (\S+) --value-flags (\S+)/.exec(pkg.scripts['build:ts']);
  assert.ok(m, pkg.scripts['build:ts']);
  assert.equal(m![1].split(','), [...CACHED_COMMANDS]);
  assert.equal(m![2].split(','), GLOBAL_FLAGS.filter((f) => f.type === 'string').map((f) => f.name));
});

test('the loader starts the node that built it (no env lookup), and runs as an executable', () => {
  const { dir, out } = makeProgram();
  try {
    assert.is(fs.readFileSync(out, 'latin1').split('\n', 1)[0], `#!${process.execPath}`);
    fs.chmodSync(out, 0o755);
    const r = spawnSync(out, ['x'], { encoding: 'utf8' });
    assert.is(r.status, 0, r.stderr);
    assert.is(r.stdout, '42');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();

test('bundled modules see the __filename and __dirname of their source file, inside the output directory and above it', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-bundle-'));
  try {
    fs.mkdirSync(path.join(dir, 'build', 'sub'), { recursive: true });
    const show = `module.exports = () => [__filename, __dirname, require.resolve('./peer')];\n`;
    fs.writeFileSync(path.join(dir, 'build', 'sub', 'm.js'), show);
    fs.writeFileSync(path.join(dir, 'build', 'sub', 'peer.js'), '');
    fs.writeFileSync(path.join(dir, 'up.js'), show);
    fs.writeFileSync(path.join(dir, 'peer.js'), '');
    fs.writeFileSync(path.join(dir, 'build', 'entry.js'), `process.stdout.write(JSON.stringify([require('./sub/m')(), require('../up')()]));\n`);
    const out = path.join(dir, 'build', 'out.js');
    const b = spawnSync(process.execPath, [BUNDLER, path.join(dir, 'build', 'entry.js'), out], { encoding: 'utf8' });
    assert.is(b.status, 0, b.stderr);
    fs.rmSync(path.join(dir, 'build', 'sub', 'm.js'));
    fs.rmSync(path.join(dir, 'up.js'));
    const r = spawnSync(process.execPath, [out], { encoding: 'utf8' });
    assert.is(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout), [
      [path.join(dir, 'build', 'sub', 'm.js'), path.join(dir, 'build', 'sub'), path.join(dir, 'build', 'sub', 'peer.js')],
      [path.join(dir, 'up.js'), dir, path.join(dir, 'peer.js')],
    ]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
