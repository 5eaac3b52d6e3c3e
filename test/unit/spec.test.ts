/**
 * Unit tests for spec/: the precompiled config.json validator, loadConfig's error messages,
 * the semantic checks and the default spec. Run after `npx tsc -p . && node spec/build-validator.js`
 * as `node build/test/unit/spec.test.js`.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { execFileSync } from 'child_process';
import { ShoalError } from '../../shim/src/runtime/errors';
import type { Spec } from '../../spec/src/config';
import { defaultSpec } from '../../spec/src/default-spec';
import { configWarnings, formatSchemaErrors, loadConfig, validateConfig } from '../../spec/src/validate';

/** A minimal valid config. */
function minimal(): any {
  return { ociVersion: '1.2.0', process: { args: ['sh'], cwd: '/' }, root: { path: 'rootfs' } };
}

/** Write `content` (object or raw text) as config.json in a fresh bundle dir. */
function bundle(content: unknown): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-spec-'));
  fs.writeFileSync(path.join(dir, 'config.json'), typeof content === 'string' ? content : JSON.stringify(content));
  return dir;
}

/** loadConfig must throw INVALID_CONFIG; returns the message. */
function loadError(dir: string): string {
  try {
    loadConfig(dir);
  } catch (err) {
    assert.instance(err, ShoalError);
    assert.is((err as ShoalError).code, 'INVALID_CONFIG');
    return (err as ShoalError).message;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return assert.unreachable('loadConfig did not throw') as never;
}

test('the validator is precompiled: ajv itself is never loaded', () => {
  assert.equal(validateConfig(minimal()), []);
  const loaded = Object.keys(require.cache);
  assert.ok(loaded.some((f) => f.endsWith(path.join('build', 'spec', 'validate-config.js'))));
  assert.not.ok(loaded.some((f) => /node_modules[\\/]ajv[\\/]dist[\\/](ajv|core|compile[\\/]index)\.js$/.test(f)));
});

test('default spec (rootful and rootless) validates', () => {
  for (const rootless of [false, true]) {
    const spec = defaultSpec({ rootless });
    assert.equal(validateConfig(spec), [], `rootless=${rootless}`);
    assert.equal(validateConfig(JSON.parse(JSON.stringify(spec))), []);
  }
  const dir = bundle(defaultSpec({}));
  try {
    assert.is(loadConfig(dir).hostname, 'shoal');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('default spec content', () => {
  const s = defaultSpec({});
  assert.is(s.ociVersion, '1.2.0');
  assert.equal(s.process!.args, ['sh']);
  assert.is(s.process!.terminal, true);
  assert.is(s.process!.cwd, '/');
  assert.equal(s.process!.capabilities!.bounding, ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE']);
  assert.equal(s.process!.rlimits, [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }]);
  assert.equal(s.root, { path: 'rootfs', readonly: true });
  assert.equal(
    s.mounts!.map((m) => m.destination),
    ['/proc', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue', '/sys', '/sys/fs/cgroup'],
  );
  assert.equal(
    s.linux!.namespaces!.map((n) => n.type),
    ['pid', 'network', 'ipc', 'uts', 'mount', 'cgroup'],
  );
  assert.ok(s.linux!.maskedPaths!.includes('/proc/kcore'));
  assert.ok(s.linux!.readonlyPaths!.includes('/proc/sysrq-trigger'));

  const r = defaultSpec({ rootless: true, uid: 1000, gid: 1001 });
  const types = r.linux!.namespaces!.map((n) => n.type);
  assert.ok(types.includes('user'));
  assert.not.ok(types.includes('network'));
  assert.equal(r.linux!.uidMappings, [{ containerID: 0, hostID: 1000, size: 1 }]);
  assert.equal(r.linux!.gidMappings, [{ containerID: 0, hostID: 1001, size: 1 }]);
  const sys = r.mounts!.find((m) => m.destination === '/sys')!;
  assert.is(sys.source, '/sys');
  assert.ok(sys.options!.includes('rbind'));
  assert.not.ok(r.mounts!.some((m) => (m.options ?? []).some((o) => o.startsWith('gid='))));
  assert.is(r.linux!.resources, undefined);
  // Each call returns a fresh object.
  s.process!.args!.push('x');
  assert.equal(defaultSpec({}).process!.args, ['sh']);
});

test('default spec matches `runc spec` when runc is installed', () => {
  const runc = ['/usr/sbin/runc', '/usr/bin/runc', '/usr/local/sbin/runc'].find((p) => fs.existsSync(p));
  if (!runc) return;
  for (const rootless of [false, true]) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-runc-spec-'));
    try {
      execFileSync(runc, rootless ? ['spec', '--rootless'] : ['spec'], { cwd: dir, stdio: 'ignore' });
      const theirs = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
      const ours: any = defaultSpec({ rootless, cgroupNamespace: false });
      // Known version differences: ociVersion/hostname by design; older runc also sets
      // ambient caps and does not mask /sys/devices/virtual/tpm; newer runc adds cgroupns.
      theirs.ociVersion = ours.ociVersion;
      theirs.hostname = ours.hostname;
      delete theirs.process.capabilities.ambient;
      theirs.linux.namespaces = theirs.linux.namespaces.filter((n: any) => n.type !== 'cgroup');
      ours.linux.maskedPaths = ours.linux.maskedPaths.filter((p: string) =>
        theirs.linux.maskedPaths.includes(p),
      );
      assert.equal(ours, theirs, `rootless=${rootless}`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
});

test('malformed JSON names the line', () => {
  const msg = loadError(bundle('{\n  "ociVersion": "1.2.0",\n  "process": { "args": [sh] }\n}'));
  assert.match(msg, /^config\.json: invalid JSON: /);
  assert.match(msg, /at line 3 column \d+$/);
  const msg2 = loadError(bundle('{\n "ociVersion": "1.2.0",\n}'));
  assert.match(msg2, /^config\.json: invalid JSON: .* at line 3 column 1$/);
  assert.match(loadError(bundle('')), /^config\.json: invalid JSON: Unexpected end of JSON input/);
});

test('missing or empty process.args', () => {
  const missing = minimal();
  delete missing.process.args;
  assert.is(loadError(bundle(missing)), 'config.json: process.args: must be a non-empty array');
  const empty = minimal();
  empty.process.args = [];
  assert.is(loadError(bundle(empty)), 'config.json: process.args: must be a non-empty array');
  const notArray = minimal();
  notArray.process.args = 'sh';
  assert.equal(validateConfig(notArray), ['process.args: must be a non-empty array']);
  const notStrings = minimal();
  notStrings.process.args = ['sh', 3];
  assert.equal(validateConfig(notStrings), ['process.args[1]: must be a string']);
});

test('missing bundle and missing config.json', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-spec-'));
  try {
    assert.throws(() => loadConfig(dir), (e: any) => e instanceof ShoalError && e.message === `bundle ${dir}: config.json not found`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  assert.throws(
    () => loadConfig('/nonexistent/shoal/bundle'),
    (e: any) => e.code === 'INVALID_CONFIG' && e.message === 'bundle /nonexistent/shoal/bundle: config.json not found',
  );
});

test('schema errors: one line each, dotted paths', () => {
  const c = minimal();
  c.linux = { namespaces: [{ type: 'pid' }, { type: 'mount' }, { type: 'net' }] };
  assert.equal(validateConfig(c), [
    'linux.namespaces[2].type: must be one of pid, network, mount, ipc, uts, user, cgroup, time',
  ]);
  assert.match(loadError(bundle(c)), /^config\.json: linux\.namespaces\[2\]\.type: must be one of pid, network/);

  const d = minimal();
  delete d.ociVersion;
  d.process.cwd = 'relative/dir';
  d.process.user = { uid: -1, gid: 1.5 };
  d.mounts = [{ source: 'tmpfs' }];
  d.hooks = { poststart: [{ path: 'hook', timeout: 0 }, { args: [] }] };
  d.process.rlimits = [{ type: 'NOFILE', soft: 1, hard: 1 }];
  d.annotations = { 'org.example': 5 };
  d.linux = {
    seccomp: {
      defaultAction: 'SCMP_ACT_DENY',
      syscalls: [{ names: ['read'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: 1, op: 'SCMP_CMP_FOO' }] }],
    },
    uidMappings: [{ containerID: 0, hostID: 1000 }],
    namespaces: [{ type: 'user' }],
  };
  const errs = validateConfig(d);
  for (const expected of [
    'ociVersion: is required',
    'process.cwd: must be an absolute path',
    'process.user.uid: must be >= 0',
    'process.user.gid: must be an integer',
    'process.rlimits[0].type: must be an RLIMIT_* name',
    'mounts[0].destination: is required',
    'hooks.poststart[0].path: must be an absolute path',
    'hooks.poststart[0].timeout: must be >= 1',
    'hooks.poststart[1].path: is required',
    'annotations["org.example"]: must be a string',
    'linux.uidMappings[0].size: is required',
  ]) {
    assert.ok(errs.includes(expected), `missing "${expected}" in:\n${errs.join('\n')}`);
  }
  assert.ok(errs.some((e) => e.startsWith('linux.seccomp.defaultAction: must be one of SCMP_ACT_KILL, ')));
  assert.ok(errs.some((e) => e.startsWith('linux.seccomp.syscalls[0].args[0].op: must be one of SCMP_CMP_NE')));
  for (const e of errs) assert.not.match(e, /\n/);
});

test('unknown fields are accepted everywhere', () => {
  const c = minimal();
  c.someFutureField = { x: 1 };
  c.process.futureKnob = true;
  c.process.user = { uid: 0, gid: 0, extra: 'y' };
  c.linux = { namespaces: [{ type: 'pid', flavor: 'new' }], newThing: [1, 2], resources: { cpu: { future: 1 } } };
  c.mounts = [{ destination: '/tmp', type: 'tmpfs', source: 'tmpfs', extra: 1 }];
  assert.equal(validateConfig(c), []);
});

test('1.1/1.2 fields validate', () => {
  const c = defaultSpec({});
  c.process!.ioPriority = { class: 'IOPRIO_CLASS_BE', priority: 4 };
  c.process!.scheduler = { policy: 'SCHED_BATCH', nice: 5 };
  c.process!.execCPUAffinity = { initial: '0', final: '0-3,7' };
  c.process!.user!.umask = 0o22;
  c.mounts!.push({
    destination: '/data',
    source: '/srv/data',
    type: 'bind',
    options: ['rbind', 'idmap'],
    uidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
    gidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
  });
  c.linux!.namespaces!.push({ type: 'time' });
  c.linux!.timeOffsets = { monotonic: { secs: 10, nanosecs: 0 } };
  c.linux!.seccomp = {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: 1,
    architectures: ['SCMP_ARCH_X86_64'],
    flags: ['SECCOMP_FILTER_FLAG_LOG'],
    listenerPath: '/run/agent.sock',
    syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_NOTIFY', args: [{ index: 1, value: 1, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }] }],
  };
  c.linux!.personality = { domain: 'LINUX32' };
  c.linux!.netDevices = { eth1: { name: 'eth0' } };
  c.linux!.resources!.unified = { 'memory.high': '1G' };
  assert.equal(validateConfig(c), []);
  c.process!.scheduler = { policy: 'SCHED_FOO' as any };
  assert.equal(validateConfig(c).length, 1);
});

test('semantic checks', () => {
  const c = minimal();
  c.hostname = 'box';
  c.linux = {
    namespaces: [{ type: 'pid' }, { type: 'mount' }, { type: 'pid' }],
    uidMappings: [{ containerID: 0, hostID: 1000, size: 1 }],
    timeOffsets: { boottime: { secs: 1 } },
    seccomp: { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: [], action: 'SCMP_ACT_ERRNO' }, { names: ['read', ''], action: 'SCMP_ACT_LOG' }] },
  };
  c.process.rlimits = [
    { type: 'RLIMIT_NOFILE', soft: 1024, hard: 1024 },
    { type: 'RLIMIT_CORE', soft: 10, hard: 5 },
    { type: 'RLIMIT_NOFILE', soft: 1, hard: 1 },
  ];
  c.mounts = [{ destination: '/x', source: '/y', options: ['bind'], uidMappings: [{ containerID: 0, hostID: 1, size: 1 }] }];
  const errs = validateConfig(c);
  for (const expected of [
    'linux.namespaces[2].type: duplicate namespace type "pid"',
    'linux.uidMappings: requires a user namespace in linux.namespaces',
    'hostname: cannot be set without a uts namespace in linux.namespaces',
    'linux.timeOffsets: requires a time namespace in linux.namespaces',
    'process.rlimits[2].type: duplicate rlimit RLIMIT_NOFILE (also process.rlimits[0])',
    'process.rlimits[1]: soft limit 10 exceeds hard limit 5',
    'mounts[0]: idmapped mount needs both uidMappings and gidMappings',
    'linux.seccomp.syscalls[0].names: must be a non-empty array of syscall names',
  ]) {
    assert.ok(errs.includes(expected), `missing "${expected}" in:\n${errs.join('\n')}`);
  }
  assert.ok(errs.some((e) => e.startsWith('linux.seccomp.syscalls[1].names[1]: ')));
  assert.is(errs.filter((e) => e.startsWith('linux.seccomp.syscalls[1].names[1]')).length, 1, 'reported once');

  // Joining an existing user namespace by path together with mappings is allowed.
  const ok = minimal();
  ok.linux = {
    namespaces: [{ type: 'user', path: '/proc/1234/ns/user' }, { type: 'uts' }],
    uidMappings: [{ containerID: 0, hostID: 1000, size: 1 }],
    gidMappings: [{ containerID: 0, hostID: 1000, size: 1 }],
  };
  ok.hostname = 'fine';
  assert.equal(validateConfig(ok), []);
});

test('relative mount destinations are deprecated, not invalid', () => {
  const c: Spec = minimal();
  c.mounts = [{ destination: 'data', type: 'tmpfs', source: 'tmpfs' }];
  assert.equal(validateConfig(c), []);
  assert.equal(configWarnings(c).length, 1);
  assert.match(configWarnings(c)[0], /^mounts\[0\]\.destination: /);
});

test('non-object configs are rejected', () => {
  assert.equal(validateConfig([]), ['(root): must be an object']);
  assert.equal(validateConfig(null), ['(root): must be an object']);
  assert.equal(validateConfig({}), ['ociVersion: is required']);
});

test('anyOf/oneOf errors collapse to the most useful branch', () => {
  // Compiling here is fine: this exercises the formatter on real ajv error shapes.
  const Ajv = require('ajv').default;
  const ajv = new Ajv({ allErrors: true, strict: false, messages: false });
  const validate = ajv.compile({
    type: 'object',
    properties: {
      limit: { anyOf: [{ type: 'integer', minimum: -1 }, { type: 'string', pattern: '^max$' }] },
      user: {
        oneOf: [
          { type: 'object', required: ['uid', 'gid'], properties: { uid: { type: 'integer' } } },
          { type: 'string' },
        ],
      },
    },
  });
  assert.not.ok(validate({ limit: -5, user: { uid: 'root', gid: 0 } }));
  assert.equal(formatSchemaErrors(validate.errors), ['limit: must be >= -1', 'user.uid: must be an integer']);
  assert.not.ok(validate({ limit: true }));
  assert.equal(formatSchemaErrors(validate.errors), ['limit: does not match any allowed form']);
});

test.run();
