/**
 * Encoding of linux.seccomp into the helper plan. The helper (native/helper/seccomp.c) builds the
 * filter with libseccomp; this side only flattens the JSON into records, normalising numbers:
 *
 *   OP_SECCOMP_BEGIN     defaultAction, defaultErrnoRet ("" = EPERM), flags (comma-separated),
 *                        architectures...
 *   OP_SECCOMP_RULE      action, errnoRet ("" = EPERM), nargs,
 *                        nargs x (index, value, valueTwo, op), syscall names...   (one per entry)
 *   OP_SECCOMP_END
 *   OP_SECCOMP_LISTENER  listenerPath, listenerMetadata        (only when listenerPath is set)
 *
 * Argument values are unsigned 64-bit decimal strings. Name checking (actions, operators,
 * architectures, flags) is left to the helper, which reports the offending name, so the rules for
 * what is accepted live in one place; unknown syscall names are skipped there, as runc does.
 */
import type { LinuxSeccomp } from '../../../../spec/src/config';
import { Op } from './ops';
import { PlanWriter } from './writer';

/** An error in the seccomp section of config.json that the helper could not report better. */
export class SeccompConfigError extends Error {}

/**
 * A syscall argument value as an unsigned 64-bit decimal string. JSON numbers arrive as
 * doubles: negative values are taken modulo 2^64 (so -1 means all ones, as a C cast would),
 * fractions are rejected. Bigints and decimal strings (from a lossless parser) pass through.
 */
function u64(v: unknown, what: string): string {
  let b: bigint;
  if (typeof v === 'bigint') b = v;
  else if (typeof v === 'number' && Number.isInteger(v)) b = BigInt(v);
  else if (typeof v === 'string' && /^-?\d+$/.test(v)) b = BigInt(v);
  else throw new SeccompConfigError(`linux.seccomp: ${what} must be an integer, got ${JSON.stringify(v)}`);
  return BigInt.asUintN(64, b).toString();
}

/** An errnoRet as decimal, or "" when unset (the helper then uses EPERM). */
function errnoArg(v: number | undefined, what: string): string {
  if (v === undefined || v === null) return '';
  if (!Number.isInteger(v) || v < 0 || v > 0xffff)
    throw new SeccompConfigError(`linux.seccomp: ${what} must be an integer in 0..65535, got ${JSON.stringify(v)}`);
  return String(v);
}

/**
 * Append the records for `s` to `w`: BEGIN, one RULE per syscalls[] entry (entries without names
 * add nothing), END, then LISTENER when a listener path is configured.
 */
export function encodeSeccomp(w: PlanWriter, s: LinuxSeccomp): void {
  w.add(
    Op.SECCOMP_BEGIN,
    s.defaultAction,
    errnoArg(s.defaultErrnoRet, 'defaultErrnoRet'),
    (s.flags ?? []).join(','),
    ...(s.architectures ?? []),
  );
  (s.syscalls ?? []).forEach((call, i) => {
    const names = call.names ?? [];
    if (names.length === 0) return;
    const args = call.args ?? [];
    const quads: string[] = [];
    args.forEach((a, j) => {
      const where = `syscalls[${i}].args[${j}]`;
      if (!Number.isInteger(a.index) || a.index < 0 || a.index > 5)
        throw new SeccompConfigError(`linux.seccomp: ${where}.index must be 0..5, got ${JSON.stringify(a.index)}`);
      quads.push(String(a.index), u64(a.value, `${where}.value`), u64(a.valueTwo ?? 0, `${where}.valueTwo`), a.op);
    });
    w.add(Op.SECCOMP_RULE, call.action, errnoArg(call.errnoRet, `syscalls[${i}].errnoRet`), args.length, ...quads, ...names);
  });
  w.add(Op.SECCOMP_END);
  if (s.listenerPath) w.add(Op.SECCOMP_LISTENER, s.listenerPath, s.listenerMetadata ?? '');
}

/** Actions the helper accepts (for the `features` command's linux.seccomp.actions). */
export const SECCOMP_ACTIONS: readonly string[] = [
  'SCMP_ACT_ALLOW', 'SCMP_ACT_ERRNO', 'SCMP_ACT_KILL', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_KILL_THREAD',
  'SCMP_ACT_LOG', 'SCMP_ACT_NOTIFY', 'SCMP_ACT_TRACE', 'SCMP_ACT_TRAP',
];

/** Argument operators the helper accepts (features: linux.seccomp.operators). */
export const SECCOMP_OPERATORS: readonly string[] = [
  'SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', 'SCMP_CMP_LE', 'SCMP_CMP_LT', 'SCMP_CMP_MASKED_EQ', 'SCMP_CMP_NE',
];

/** Filter flags the helper accepts (features: linux.seccomp.knownFlags / supportedFlags). */
export const SECCOMP_FLAGS: readonly string[] = [
  'SECCOMP_FILTER_FLAG_TSYNC', 'SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW',
];

/** Architectures libseccomp 2.5 knows (features: linux.seccomp.archs). */
export const SECCOMP_ARCHS: readonly string[] = [
  'SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM', 'SCMP_ARCH_MIPS', 'SCMP_ARCH_MIPS64', 'SCMP_ARCH_MIPS64N32',
  'SCMP_ARCH_MIPSEL', 'SCMP_ARCH_MIPSEL64', 'SCMP_ARCH_MIPSEL64N32', 'SCMP_ARCH_PARISC', 'SCMP_ARCH_PARISC64',
  'SCMP_ARCH_PPC', 'SCMP_ARCH_PPC64', 'SCMP_ARCH_PPC64LE', 'SCMP_ARCH_RISCV64', 'SCMP_ARCH_S390', 'SCMP_ARCH_S390X',
  'SCMP_ARCH_X32', 'SCMP_ARCH_X86', 'SCMP_ARCH_X86_64',
];
