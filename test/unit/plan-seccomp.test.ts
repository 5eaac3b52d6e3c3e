/*
 * Unit tests of the seccomp and capability plan encoders, plus an end-to-end check of the
 * TypeScript -> plan bytes -> plan.c -> seccomp.c path with a small C driver compiled on the fly
 * (skipped when gcc is missing or we are not root).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { PlanWriter } from '../../shim/src/runtime/plan/writer';
import { Op } from '../../shim/src/runtime/plan/ops';
import { encodeSeccomp, SeccompConfigError } from '../../shim/src/runtime/plan/seccomp';
import {
  allCapabilityNames,
  capMask,
  capNumber,
  capsRecordArgs,
  CAPABILITY_NAMES,
  kernelLastCap,
} from '../../shim/src/runtime/plan/caps';
import type { LinuxSeccomp } from '../../spec/src/config';

/** The repository root (where binding.gyp is), found from the compiled or source location. */
function repoRoot(): string {
  let d = __dirname;
  while (!fs.existsSync(path.join(d, 'binding.gyp'))) {
    const up = path.dirname(d);
    if (up === d) throw new Error('binding.gyp not found');
    d = up;
  }
  return d;
}

test('encodeSeccomp: BEGIN, RULEs, END with normalised arguments', () => {
  const w = new PlanWriter();
  encodeSeccomp(w, {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: 1,
    architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
    flags: ['SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW'],
    syscalls: [
      { names: ['read', 'write'], action: 'SCMP_ACT_ALLOW' },
      { names: ['mkdir'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 },
      {
        names: ['personality'],
        action: 'SCMP_ACT_ALLOW',
        args: [
          { index: 0, value: 0, op: 'SCMP_CMP_EQ' },
          { index: 0, value: 4294967295, valueTwo: 0, op: 'SCMP_CMP_EQ' },
        ],
      },
      { names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 0, valueTwo: 2114060288, op: 'SCMP_CMP_MASKED_EQ' }] },
    ],
  });
  assert.equal(w.ops(), [Op.SECCOMP_BEGIN, Op.SECCOMP_RULE, Op.SECCOMP_RULE, Op.SECCOMP_RULE, Op.SECCOMP_RULE, Op.SECCOMP_END]);
  assert.equal(w.argsOf(Op.SECCOMP_BEGIN)[0], [
    'SCMP_ACT_ERRNO',
    '1',
    'SECCOMP_FILTER_FLAG_LOG,SECCOMP_FILTER_FLAG_SPEC_ALLOW',
    'SCMP_ARCH_X86_64',
    'SCMP_ARCH_X86',
    'SCMP_ARCH_X32',
  ]);
  const rules = w.argsOf(Op.SECCOMP_RULE);
  assert.equal(rules[0], ['SCMP_ACT_ALLOW', '', '0', 'read', 'write']);
  assert.equal(rules[1], ['SCMP_ACT_ERRNO', '38', '0', 'mkdir']);
  assert.equal(rules[2], [
    'SCMP_ACT_ALLOW', '', '2',
    '0', '0', '0', 'SCMP_CMP_EQ',
    '0', '4294967295', '0', 'SCMP_CMP_EQ',
    'personality',
  ]);
  assert.equal(rules[3], ['SCMP_ACT_ALLOW', '', '1', '0', '0', '2114060288', 'SCMP_CMP_MASKED_EQ', 'clone']);
  assert.equal(w.argsOf(Op.SECCOMP_END), [[]]);
  assert.not.ok(w.has(Op.SECCOMP_LISTENER));
});

test('encodeSeccomp: minimal profile, empty flags and archs, no syscalls', () => {
  const w = new PlanWriter();
  encodeSeccomp(w, { defaultAction: 'SCMP_ACT_ALLOW' });
  assert.equal(w.argsOf(Op.SECCOMP_BEGIN), [['SCMP_ACT_ALLOW', '', '']]);
  assert.equal(w.ops(), [Op.SECCOMP_BEGIN, Op.SECCOMP_END]);
});

test('encodeSeccomp: negative values wrap to u64, bigint/string pass, entries without names skipped', () => {
  const w = new PlanWriter();
  encodeSeccomp(w, {
    defaultAction: 'SCMP_ACT_ALLOW',
    syscalls: [
      { names: [], action: 'SCMP_ACT_ERRNO' },
      {
        names: ['kill'],
        action: 'SCMP_ACT_ERRNO',
        args: [
          { index: 0, value: -1, op: 'SCMP_CMP_EQ' },
          { index: 1, value: 18446744073709551615n as unknown as number, op: 'SCMP_CMP_NE' },
        ],
      },
    ],
  });
  const rules = w.argsOf(Op.SECCOMP_RULE);
  assert.is(rules.length, 1);
  assert.equal(rules[0].slice(3, 11), [
    '0', '18446744073709551615', '0', 'SCMP_CMP_EQ',
    '1', '18446744073709551615', '0', 'SCMP_CMP_NE',
  ]);
});

test('encodeSeccomp: listener record after END', () => {
  const w = new PlanWriter();
  encodeSeccomp(w, {
    defaultAction: 'SCMP_ACT_ALLOW',
    listenerPath: '/run/agent.sock',
    listenerMetadata: 'meta',
    syscalls: [{ names: ['getppid'], action: 'SCMP_ACT_NOTIFY' }],
  });
  assert.equal(w.ops(), [Op.SECCOMP_BEGIN, Op.SECCOMP_RULE, Op.SECCOMP_END, Op.SECCOMP_LISTENER]);
  assert.equal(w.argsOf(Op.SECCOMP_LISTENER), [['/run/agent.sock', 'meta']]);
});

test('encodeSeccomp: rejects fractional values, bad indexes and errnoRet', () => {
  const bad: LinuxSeccomp[] = [
    { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['kill'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: 1.5, op: 'SCMP_CMP_EQ' }] }] },
    { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['kill'], action: 'SCMP_ACT_ERRNO', args: [{ index: 6, value: 1, op: 'SCMP_CMP_EQ' }] }] },
    { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['kill'], action: 'SCMP_ACT_ERRNO', errnoRet: -1 }] },
    { defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 70000 },
  ];
  for (const s of bad) assert.throws(() => encodeSeccomp(new PlanWriter(), s), (e: unknown) => e instanceof SeccompConfigError);
});

test('caps: table numbering', () => {
  assert.is(CAPABILITY_NAMES.length, 41);
  assert.is(capNumber('CAP_CHOWN'), 0);
  assert.is(capNumber('CAP_NET_RAW'), 13);
  assert.is(capNumber('CAP_SYS_ADMIN'), 21);
  assert.is(capNumber('CAP_AUDIT_READ'), 37);
  assert.is(capNumber('CAP_CHECKPOINT_RESTORE'), 40);
  assert.is(capNumber('CAP_NOPE'), undefined);
});

test('capMask: bits, duplicates, undefined, unknown and unavailable names warned', () => {
  assert.is(capMask(undefined), 0n);
  assert.is(capMask(['CAP_CHOWN', 'CAP_NET_RAW', 'CAP_NET_RAW'], undefined, 40), 1n | (1n << 13n));
  const warned: string[] = [];
  const m = capMask(['CAP_KILL', 'CAP_BOGUS', 'CAP_BPF', 'cap_kill'], (n, why) => warned.push(`${n}:${why}`), 38);
  assert.is(m, 1n << 5n);
  assert.equal(warned, ['CAP_BOGUS:unknown', 'CAP_BPF:unavailable', 'cap_kill:unknown']);
});

test('capsRecordArgs: five hex masks in helper order', () => {
  const args = capsRecordArgs(
    {
      bounding: ['CAP_CHOWN', 'CAP_KILL', 'CAP_CHECKPOINT_RESTORE'],
      effective: ['CAP_KILL'],
      permitted: ['CAP_KILL', 'CAP_CHOWN'],
      ambient: ['CAP_NET_BIND_SERVICE'],
    },
    undefined,
    40,
  );
  assert.equal(args, ['10000000021', '20', '0', '21', '400']);
  for (const a of args) assert.is(BigInt('0x' + a).toString(16), a);
});

test('allCapabilityNames: limited by the kernel', () => {
  assert.equal(allCapabilityNames(37), CAPABILITY_NAMES.slice(0, 38));
  assert.is(allCapabilityNames(63).length, 41);
  const last = kernelLastCap();
  assert.ok(last >= 0 && last < 64);
  assert.is(allCapabilityNames().length, Math.min(last, 40) + 1);
});

/** Compile the plan driver once; undefined when that is not possible here. */
let driver: string | undefined | null = null;
function getDriver(): string | undefined {
  if (driver !== null) return driver;
  driver = undefined;
  if (process.getuid?.() !== 0) return driver;
  const root = repoRoot();
  const h = path.join(root, 'native', 'helper');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-seccomp-'));
  process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
  const out = path.join(tmp, 'driver');
  const r = spawnSync('gcc', [
    '-std=gnu11', '-O2', `-I${h}`, '-o', out,
    path.join(root, 'native', 'test', 'seccomp_plan_driver.c'),
    path.join(h, 'seccomp.c'), path.join(h, 'plan.c'), path.join(h, 'util.c'), '-ldl',
  ], { encoding: 'utf8' });
  if (r.status === 0) driver = out;
  else console.warn(`skipping end-to-end seccomp tests: gcc: ${r.error ?? r.stderr}`);
  return driver;
}

/** Run cmd under the plan's filter via the driver. */
function runUnder(w: PlanWriter, cmd: string[]): { status: number | null; out: string } {
  const r = spawnSync(getDriver()!, cmd, { input: w.encode(), encoding: 'utf8' });
  return { status: r.status, out: (r.stdout ?? '') + (r.stderr ?? '') };
}

/** A profile in the style of a container default: many rules, conditions, several archs. */
function bigProfile(): LinuxSeccomp {
  const obscure = [
    'acct', 'add_key', 'clock_adjtime', 'clock_settime', 'create_module', 'delete_module',
    'finit_module', 'get_kernel_syms', 'init_module', 'ioperm', 'iopl', 'kcmp', 'kexec_file_load',
    'kexec_load', 'keyctl', 'lookup_dcookie', 'mbind', 'move_pages', 'nfsservctl',
    'open_by_handle_at', 'perf_event_open', 'process_vm_readv', 'process_vm_writev',
    'query_module', 'quotactl', 'reboot', 'request_key', 'set_mempolicy', 'settimeofday',
    'swapon', 'swapoff', 'sysfs', '_sysctl', 'uselib', 'userfaultfd', 'ustat', 'vm86', 'vm86old',
    'not_a_real_syscall',
  ];
  return {
    defaultAction: 'SCMP_ACT_ALLOW',
    architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
    flags: ['SECCOMP_FILTER_FLAG_SPEC_ALLOW'],
    syscalls: [
      ...obscure.map((n) => ({ names: [n], action: 'SCMP_ACT_ERRNO' as const })),
      { names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 },
      {
        names: ['personality'],
        action: 'SCMP_ACT_ERRNO',
        args: [
          { index: 0, value: 17, op: 'SCMP_CMP_EQ' },
          { index: 0, value: 34, op: 'SCMP_CMP_EQ' },
        ],
      },
      // clone with CLONE_NEWUSER (0x10000000) denied; plain fork-style clones pass.
      { names: ['clone'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: 0x10000000, valueTwo: 0x10000000, op: 'SCMP_CMP_MASKED_EQ' }] },
    ],
  };
}

test('end to end: TS plan -> plan.c -> seccomp.c filter denies mkdir with ENOSYS', () => {
  if (!getDriver()) return;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-seccomp-e2e-'));
  try {
    const w = new PlanWriter();
    encodeSeccomp(w, bigProfile());
    const ok = runUnder(w, ['sh', '-c', 'echo hello; exit 3']);
    assert.is(ok.status, 3, ok.out);
    assert.match(ok.out, 'hello');
    const r = runUnder(w, ['mkdir', path.join(dir, 'x')]);
    assert.is.not(r.status, 0, r.out);
    assert.match(r.out, /Function not implemented/);
    assert.not.ok(fs.existsSync(path.join(dir, 'x')));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('end to end: an unknown action is rejected with its name', () => {
  if (!getDriver()) return;
  const w = new PlanWriter();
  encodeSeccomp(w, { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['getppid'], action: 'SCMP_ACT_BOGUS' as never }] });
  const r = runUnder(w, ['true']);
  assert.is(r.status, 120, r.out);
  assert.match(r.out, 'SCMP_ACT_BOGUS');
  assert.match(r.out, 'unknown seccomp action');
});

/** The driver run on raw plan bytes. */
function readPlan(bytes: Buffer, args: string[] = ['--dump']): { status: number | null; out: string } {
  const r = spawnSync(getDriver()!, args, { input: bytes, encoding: 'utf8' });
  return { status: r.status, out: (r.stdout ?? '') + (r.stderr ?? '') };
}

test('plan wire format: what PlanWriter encodes, plan.c decodes record by record', () => {
  if (!getDriver()) return;
  const w = new PlanWriter();
  w.add(Op.MODE, 'run');
  w.add(Op.START_SYNC);
  w.add(Op.ARGS, 'sh', '-c', 'echo "a b" > /tmp/x', '');
  w.add(Op.ENV, 'LANG=C.UTF-8', 'GREETING=grüß dich ☃', 'EMPTY=');
  w.add(Op.RLIMIT, 7, 1024n, -1);
  for (let i = 0; i < 200; i++) w.add(Op.MASK, `/proc/path-${i}`);
  const r = readPlan(w.encode());
  assert.is(r.status, 0, r.out);
  const lines = r.out.trimEnd().split('\n');
  assert.is(lines.length, 205);
  assert.is(lines[0], `${Op.MODE} 1 [run]`);
  assert.is(lines[1], `${Op.START_SYNC} 0`);
  assert.is(lines[2], `${Op.ARGS} 4 [sh] [-c] [echo "a b" > /tmp/x] []`);
  assert.is(lines[3], `${Op.ENV} 3 [LANG=C.UTF-8] [GREETING=grüß dich ☃] [EMPTY=]`);
  assert.is(lines[4], `${Op.RLIMIT} 3 [7] [1024] [-1]`);
  assert.is(lines[204], `${Op.MASK} 1 [/proc/path-199]`);
});

test('plan wire format: truncated, padded or miscounted plans are refused', () => {
  if (!getDriver()) return;
  const w = new PlanWriter();
  w.add(Op.MODE, 'create');
  w.add(Op.ARGS, 'true', 'x');
  const good = w.encode();
  assert.is(readPlan(good).status, 0);
  /** The plan with its body replaced (the length prefix follows). */
  const withBody = (body: Buffer): Buffer => {
    const len = Buffer.alloc(4);
    len.writeUInt32LE(body.length, 0);
    return Buffer.concat([len, body]);
  };
  const body = good.subarray(4);
  const cases: [string, Buffer][] = [
    ['last string without its NUL', withBody(body.subarray(0, body.length - 1))],
    ['a byte after the last string', withBody(Buffer.concat([body, Buffer.from('z')]))],
    ['one string missing', withBody(body.subarray(0, body.length - 2))],
    ['a record count beyond the headers', withBody(Buffer.concat([body.subarray(0, 4), Buffer.from([0xff, 0xff, 0, 0]), body.subarray(8)]))],
    ['an argc beyond the strings', (() => { const b = Buffer.from(body); b.writeUInt32LE(1000, 12); return withBody(b); })()],
    ['the old format magic', (() => { const b = Buffer.from(body); b.writeUInt32LE(0x4c504853, 0); return withBody(b); })()],
  ];
  for (const [what, bytes] of cases) {
    const r = readPlan(bytes);
    assert.is(r.status, 120, `${what}: ${r.out}`);
    assert.match(r.out, 'plan_read: Invalid argument', what);
  }
});

test('PlanWriter: an argument holding NUL is refused, as config.json error', () => {
  const w = new PlanWriter();
  try {
    w.add(Op.ENV, 'A=1', 'B=x\u0000y');
    assert.unreachable('NUL accepted');
  } catch (e) {
    assert.is((e as { code?: string }).code, 'INVALID_CONFIG');
    assert.match((e as Error).message, 'NUL');
  }
});

test.run();
