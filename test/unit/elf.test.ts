/* The ELF reader, the ld.so.cache parser and the dependency closure, on the host's own binaries. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { execFileSync } from 'child_process';
import { readElf, readElfHeader, ET } from '../../shim/src/gen/elf';
import { parseLdCache, loadLdCache, indexLdCache } from '../../shim/src/gen/ldcache';
import { resolveClosure, walkPath } from '../../shim/src/gen/closure';

const NODE = fs.realpathSync(process.execPath);
const LS = fs.realpathSync('/bin/ls');

test('readElf(/bin/ls): ELF64 x86-64 with PT_INTERP and DT_NEEDED libc.so.6', () => {
  const e = readElf(LS)!;
  assert.ok(e);
  assert.is(e.bits, 64);
  assert.is(e.machine, 62);
  assert.is(e.interp, '/lib64/ld-linux-x86-64.so.2');
  assert.ok(e.needed.includes('libc.so.6'), e.needed.join());
  assert.ok(e.dynamic);
});

test('readElf(node): DT_NEEDED matches readelf -d', () => {
  const e = readElf(NODE)!;
  const out = execFileSync('readelf', ['-d', NODE], { encoding: 'utf8' });
  const needed = [...out.matchAll(/\(NEEDED\)\s+Shared library: \[(.+?)\]/g)].map((m) => m[1]);
  assert.equal(e.needed, needed);
  assert.is(e.interp, '/lib64/ld-linux-x86-64.so.2');
});

test('readElf: shared objects are ET_DYN with a SONAME; non-ELF gives null', () => {
  const e = readElf('/lib/x86_64-linux-gnu/libc.so.6')!;
  assert.is(e.type, ET.DYN);
  assert.is(e.soname, 'libc.so.6');
  assert.is(readElf('/etc/passwd'), null);
  assert.is(readElfHeader('/etc/passwd'), null);
  assert.is(readElfHeader('/nonexistent'), null);
});

test('readElf: DT_RUNPATH with $ORIGIN is read unexpanded', () => {
  // Build tiny ELFs with a runpath and an rpath (skipped without a C compiler).
  const cc = ['cc', 'gcc'].find((c) => {
    try {
      execFileSync(c, ['--version'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  });
  if (!cc) return;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-elf-'));
  try {
    fs.writeFileSync(path.join(dir, 'a.c'), 'int main(void){return 0;}\n');
    execFileSync(cc, ['-o', path.join(dir, 'a'), path.join(dir, 'a.c'), '-Wl,-rpath,$ORIGIN/../lib:/opt/x', '-Wl,--enable-new-dtags']);
    const e = readElf(path.join(dir, 'a'))!;
    assert.equal(e.runpath, ['$ORIGIN/../lib', '/opt/x']);
    assert.equal(e.rpath, []);
    execFileSync(cc, ['-o', path.join(dir, 'b'), path.join(dir, 'a.c'), '-Wl,-rpath,/opt/y', '-Wl,--disable-new-dtags']);
    assert.equal(readElf(path.join(dir, 'b'))!.rpath, ['/opt/y']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('ld.so.cache: parses the host cache; libc.so.6 resolves like ldconfig -p', () => {
  const entries = loadLdCache();
  assert.ok(entries.length > 10);
  const idx = indexLdCache(entries, 64, 62);
  const libc = idx.get('libc.so.6');
  assert.ok(libc && libc.length >= 1);
  const p = execFileSync('/sbin/ldconfig', ['-p'], { encoding: 'utf8' });
  const want = /\tlibc\.so\.6 \(libc6,x86-64\) => (\S+)/.exec(p)![1];
  assert.is(libc![0], want);
  assert.is(entries.length, Number(/^(\d+) libs found/.exec(p)![1]));
});

test('ld.so.cache: a synthetic cache round-trips; bad magic throws', () => {
  const strings = 'libx.so.1\0/usr/lib/libx.so.1\0';
  const buf = Buffer.alloc(48 + 24 + strings.length);
  buf.write('glibc-ld.so.cache1.1', 0, 'latin1');
  buf.writeUInt32LE(1, 20);
  buf.writeUInt32LE(strings.length, 24);
  buf.writeInt32LE(0x0303, 48);
  buf.writeUInt32LE(72, 52);
  buf.writeUInt32LE(72 + 10, 56);
  buf.write(strings, 72, 'latin1');
  assert.equal(parseLdCache(buf).map((e) => [e.name, e.path, e.flags]), [['libx.so.1', '/usr/lib/libx.so.1', 0x0303]]);
  assert.equal([...indexLdCache(parseLdCache(buf), 64, 183).keys()], [], 'aarch64 does not take an x86-64 entry');
  assert.throws(() => parseLdCache(Buffer.from('not a cache at all, no no no no no no no no')), /bad magic/);
});

test('closure of /bin/ls: interpreter, libraries and the symlinks on the way, like ldd', () => {
  const c = resolveClosure(['/bin/ls']);
  assert.equal(c.missing, []);
  assert.equal(c.entries.get('/bin'), { type: 'symlink', target: 'usr/bin' });
  assert.is(c.entries.get('/lib64')?.type, 'symlink');
  const files = [...c.entries].filter(([, e]) => e.type === 'file').map(([p]) => p);
  const ldd = execFileSync('ldd', ['/bin/ls'], { encoding: 'utf8' });
  for (const m of ldd.matchAll(/=> (\S+) \(/g)) assert.ok(files.includes(fs.realpathSync(m[1])), `${m[1]} in closure`);
  assert.ok(files.includes(fs.realpathSync('/lib64/ld-linux-x86-64.so.2')));
});

test('walkPath reports each symlink and returns the canonical path', () => {
  const links: string[] = [];
  const real = walkPath('/lib64/ld-linux-x86-64.so.2', (l) => links.push(l));
  assert.is(real, fs.realpathSync('/lib64/ld-linux-x86-64.so.2'));
  assert.ok(links.length >= 1);
  assert.throws(() => walkPath('/nonexistent/x', () => undefined), /ENOENT/);
});

test.run();
