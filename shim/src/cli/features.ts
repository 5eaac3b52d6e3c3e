import type { Context } from './context';
import { parseArgs } from './args';
import { knownMountOptions } from '../runtime/plan/mount-options';
import { allCapabilityNames } from '../runtime/plan/caps';
import { NAMESPACE_FLAGS, apparmorEnabled, selinuxEnabled } from '../runtime/plan/build';
import { SPEC_VERSION, VERSION } from '../version';
import { stdout } from '../runtime/fdwrite';

/** The runtime-spec features.md document for this build. */
export function features(): Record<string, unknown> {
  return {
    ociVersionMin: '1.0.0',
    ociVersionMax: SPEC_VERSION,
    hooks: ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'],
    mountOptions: knownMountOptions(),
    linux: {
      namespaces: Object.keys(NAMESPACE_FLAGS),
      capabilities: allCapabilityNames(),
      cgroup: { v1: true, v2: true, systemd: false, systemdUser: false, rdma: false },
      seccomp: {
        enabled: true,
        actions: ['SCMP_ACT_ALLOW', 'SCMP_ACT_ERRNO', 'SCMP_ACT_KILL', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_KILL_THREAD', 'SCMP_ACT_LOG', 'SCMP_ACT_NOTIFY', 'SCMP_ACT_TRACE', 'SCMP_ACT_TRAP'],
        operators: ['SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', 'SCMP_CMP_LE', 'SCMP_CMP_LT', 'SCMP_CMP_MASKED_EQ', 'SCMP_CMP_NE'],
        archs: ['SCMP_ARCH_X86', 'SCMP_ARCH_X86_64', 'SCMP_ARCH_X32', 'SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM'],
        knownFlags: ['SECCOMP_FILTER_FLAG_TSYNC', 'SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW'],
        supportedFlags: ['SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW'],
      },
      apparmor: { enabled: apparmorEnabled() },
      selinux: { enabled: selinuxEnabled() },
      intelRdt: { enabled: false },
      mountExtensions: { idmap: { enabled: true } },
    },
    annotations: { 'org.shoal.version': VERSION, 'io.github.seccomp.libseccomp.version': '2.5' },
  };
}

/** `shoal features`. */
export async function run(_ctx: Context, argv: string[]): Promise<number> {
  parseArgs(argv, []);
  stdout(JSON.stringify(features(), null, 2) + '\n');
  return 0;
}
