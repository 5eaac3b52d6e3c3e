/**
 * TypeScript types for the OCI runtime-spec `config.json` (versions 1.0 through 1.2, plus
 * the Linux additions that landed after 1.2 such as `memoryPolicy`) and for the `state`
 * object of runtime.md. Linux-relevant parts are typed fully; other platforms are loose.
 *
 * Field names follow the JSON exactly. Everything the spec marks OPTIONAL is optional here.
 * 64-bit unsigned values are plain `number`s (JSON.parse loses precision above 2^53, which
 * only matters for "unlimited"-style sentinels that the cgroup code treats as max anyway).
 */

/** Root of config.json. Unknown top-level fields are allowed and ignored by the runtime. */
export interface Spec {
  /** SemVer version of the runtime-spec the bundle complies with, e.g. "1.2.0". */
  ociVersion: string;
  /** The container process. REQUIRED when `start` is called. */
  process?: Process;
  /** The container's root filesystem. */
  root?: Root;
  /** Hostname as seen inside the container (Linux: requires a new UTS namespace). */
  hostname?: string;
  /** NIS domain name as seen inside the container (Linux: requires a new UTS namespace). */
  domainname?: string;
  /** Additional mounts, performed in order after the root filesystem. */
  mounts?: Mount[];
  /** Lifecycle hooks. */
  hooks?: Hooks;
  /** Arbitrary metadata. */
  annotations?: Record<string, string>;
  /** Linux-specific configuration. */
  linux?: Linux;
  /** Solaris-specific configuration (not used by shoal). */
  solaris?: Record<string, unknown>;
  /** Windows-specific configuration (not used by shoal). */
  windows?: Record<string, unknown>;
  /** Virtual-machine-based container configuration (not used by shoal). */
  vm?: Record<string, unknown>;
  /** z/OS-specific configuration (not used by shoal). */
  zos?: Record<string, unknown>;
  /** FreeBSD-specific configuration (not used by shoal). */
  freebsd?: Record<string, unknown>;
}

/** The container's root filesystem. */
export interface Root {
  /** Path to the rootfs, absolute or relative to the bundle directory. */
  path: string;
  /** Mount the rootfs read-only. Defaults to false. */
  readonly?: boolean;
}

/** One uid or gid mapping range (user namespaces and idmapped mounts). */
export interface IDMapping {
  /** First id inside the container (or on the mount). */
  containerID: number;
  /** First id on the host. */
  hostID: number;
  /** Number of ids mapped. */
  size: number;
}

/** A mount performed inside the container. */
export interface Mount {
  /** Target path inside the container; SHOULD be absolute (relative is deprecated, taken relative to "/"). */
  destination: string;
  /** Device name, file or directory (bind mounts: absolute or relative to the bundle). */
  source?: string;
  /** Filesystem type ("proc", "tmpfs", "bind", "none", ...). */
  type?: string;
  /** mount(8) options, e.g. ["nosuid", "rbind", "ro"]. */
  options?: string[];
  /** Idmapped mount: uid mappings (runtime-spec 1.2). */
  uidMappings?: IDMapping[];
  /** Idmapped mount: gid mappings (runtime-spec 1.2). */
  gidMappings?: IDMapping[];
}

/** The user a process runs as. */
export interface User {
  /** User id in the container's user namespace. */
  uid: number;
  /** Group id in the container's user namespace. */
  gid: number;
  /** File mode creation mask (umask(2)). */
  umask?: number;
  /** Supplementary group ids. */
  additionalGids?: number[];
  /** Windows only: user name. */
  username?: string;
}

/** The five Linux capability sets; each entry is a "CAP_*" name. */
export interface LinuxCapabilities {
  bounding?: string[];
  effective?: string[];
  inheritable?: string[];
  permitted?: string[];
  ambient?: string[];
}

/** One POSIX resource limit. */
export interface POSIXRlimit {
  /** "RLIMIT_NOFILE", "RLIMIT_CORE", ... */
  type: string;
  /** Limit enforced by the kernel. */
  soft: number;
  /** Ceiling for the soft limit. */
  hard: number;
}

/** Size of the console window (when `terminal` is true). */
export interface ConsoleSize {
  height: number;
  width: number;
}

/** I/O scheduling class and priority (ioprio_set(2)), runtime-spec 1.2. */
export interface LinuxIOPriority {
  class: 'IOPRIO_CLASS_RT' | 'IOPRIO_CLASS_BE' | 'IOPRIO_CLASS_IDLE';
  /** 0 (highest) to 7 (lowest). */
  priority: number;
}

/** Scheduling policy and parameters (sched_setattr(2)), runtime-spec 1.2. */
export interface Scheduler {
  policy:
    | 'SCHED_OTHER'
    | 'SCHED_FIFO'
    | 'SCHED_RR'
    | 'SCHED_BATCH'
    | 'SCHED_ISO'
    | 'SCHED_IDLE'
    | 'SCHED_DEADLINE';
  nice?: number;
  priority?: number;
  flags?: string[];
  runtime?: number;
  deadline?: number;
  period?: number;
}

/** CPU affinity applied while (`initial`) and after (`final`) joining the container, e.g. "0-3,7". */
export interface CPUAffinity {
  initial?: string;
  final?: string;
}

/** The process run in the container (init, or one started with `exec`). */
export interface Process {
  /** Attach a terminal (pty) to the process. Defaults to false. */
  terminal?: boolean;
  /** Console size when `terminal` is true. */
  consoleSize?: ConsoleSize;
  /** User to run as. */
  user?: User;
  /** argv; the first element is the executable (looked up in $PATH if relative). */
  args?: string[];
  /** Windows only: full command line (alternative to args). */
  commandLine?: string;
  /** Environment, "KEY=value" entries. */
  env?: string[];
  /** Absolute working directory inside the container. */
  cwd: string;
  /** Linux capability sets. */
  capabilities?: LinuxCapabilities;
  /** Resource limits; duplicate types are an error. */
  rlimits?: POSIXRlimit[];
  /** Set PR_SET_NO_NEW_PRIVS. */
  noNewPrivileges?: boolean;
  /** AppArmor profile name. */
  apparmorProfile?: string;
  /** /proc/self/oom_score_adj value (-1000..1000). */
  oomScoreAdj?: number;
  /** SELinux process label. */
  selinuxLabel?: string;
  /** I/O priority. */
  ioPriority?: LinuxIOPriority;
  /** Scheduler policy. */
  scheduler?: Scheduler;
  /** CPU affinity for `exec`. */
  execCPUAffinity?: CPUAffinity;
}

/** One hook command. */
export interface Hook {
  /** Absolute path of the executable. */
  path: string;
  /** argv, including argv[0]. */
  args?: string[];
  /** Environment, "KEY=value" entries. */
  env?: string[];
  /** Seconds before the hook is aborted (>= 1). */
  timeout?: number;
}

/** Lifecycle hooks; every list runs in order. */
export interface Hooks {
  /** Deprecated: runs in the runtime namespace after the container is created. */
  prestart?: Hook[];
  /** Runs in the runtime namespace during `create`, after the environment is set up. */
  createRuntime?: Hook[];
  /** Runs in the container namespace during `create`, before pivot_root. */
  createContainer?: Hook[];
  /** Runs in the container namespace during `start`, before the user process. */
  startContainer?: Hook[];
  /** Runs in the runtime namespace after the user process started. */
  poststart?: Hook[];
  /** Runs in the runtime namespace after the container is deleted. */
  poststop?: Hook[];
}

/** Linux namespace kinds. */
export type LinuxNamespaceType = 'pid' | 'network' | 'mount' | 'ipc' | 'uts' | 'user' | 'cgroup' | 'time';

/** A namespace to create (no `path`) or join (`path` to an nsfs file). */
export interface LinuxNamespace {
  type: LinuxNamespaceType;
  /** Absolute path of a namespace file to join. */
  path?: string;
}

/** Offset of one clock in a new time namespace. */
export interface LinuxTimeOffset {
  secs?: number;
  nanosecs?: number;
}

/** A device node created in the container. */
export interface LinuxDevice {
  /** Absolute path inside the container. */
  path: string;
  /** "c", "b", "u" or "p". */
  type: string;
  major?: number;
  minor?: number;
  /** Permission bits (0..0777). */
  fileMode?: number;
  uid?: number;
  gid?: number;
}

/** A device cgroup rule. */
export interface LinuxDeviceCgroup {
  allow: boolean;
  /** "a" (all), "c" or "b". */
  type?: string;
  /** Omitted or -1 means any. */
  major?: number;
  minor?: number;
  /** Any of "r", "w", "m". */
  access?: string;
}

/** Memory cgroup settings (bytes; -1 = unlimited where meaningful). */
export interface LinuxMemory {
  limit?: number;
  reservation?: number;
  swap?: number;
  /** Deprecated (kernel memory accounting). */
  kernel?: number;
  kernelTCP?: number;
  swappiness?: number;
  disableOOMKiller?: boolean;
  useHierarchy?: boolean;
  checkBeforeUpdate?: boolean;
}

/** CPU cgroup settings. */
export interface LinuxCPU {
  shares?: number;
  quota?: number;
  burst?: number;
  period?: number;
  realtimeRuntime?: number;
  realtimePeriod?: number;
  /** cpuset list, e.g. "0-3". */
  cpus?: string;
  /** memory-node list, e.g. "0-1". */
  mems?: string;
  /** cgroup v2 cpu.idle. */
  idle?: number;
}

/** pids cgroup settings. */
export interface LinuxPids {
  /** Maximum number of tasks; <= 0 means unlimited. */
  limit: number;
}

/** A per-device weight. */
export interface LinuxWeightDevice {
  major: number;
  minor: number;
  weight?: number;
  leafWeight?: number;
}

/** A per-device throttle rate (bytes or IO operations per second). */
export interface LinuxThrottleDevice {
  major: number;
  minor: number;
  rate: number;
}

/** blkio / io cgroup settings. */
export interface LinuxBlockIO {
  weight?: number;
  leafWeight?: number;
  weightDevice?: LinuxWeightDevice[];
  throttleReadBpsDevice?: LinuxThrottleDevice[];
  throttleWriteBpsDevice?: LinuxThrottleDevice[];
  throttleReadIOPSDevice?: LinuxThrottleDevice[];
  throttleWriteIOPSDevice?: LinuxThrottleDevice[];
}

/** A hugetlb limit for one page size. */
export interface LinuxHugepageLimit {
  /** e.g. "2MB", "1GB". */
  pageSize: string;
  limit: number;
}

/** Priority of the container's traffic on one interface. */
export interface LinuxInterfacePriority {
  name: string;
  priority: number;
}

/** net_cls / net_prio settings. */
export interface LinuxNetwork {
  classID?: number;
  priorities?: LinuxInterfacePriority[];
}

/** RDMA cgroup limits for one device. */
export interface LinuxRdma {
  hcaHandles?: number;
  hcaObjects?: number;
}

/** cgroup resource limits (`linux.resources`, also the payload of `update`). */
export interface LinuxResources {
  devices?: LinuxDeviceCgroup[];
  memory?: LinuxMemory;
  cpu?: LinuxCPU;
  pids?: LinuxPids;
  blockIO?: LinuxBlockIO;
  hugepageLimits?: LinuxHugepageLimit[];
  network?: LinuxNetwork;
  /** Keyed by RDMA device name. */
  rdma?: Record<string, LinuxRdma>;
  /** cgroup v2 files written verbatim, e.g. {"memory.high": "1G"}. */
  unified?: Record<string, string>;
}

/** Seccomp actions. */
export type LinuxSeccompAction =
  | 'SCMP_ACT_KILL'
  | 'SCMP_ACT_KILL_PROCESS'
  | 'SCMP_ACT_KILL_THREAD'
  | 'SCMP_ACT_TRAP'
  | 'SCMP_ACT_ERRNO'
  | 'SCMP_ACT_TRACE'
  | 'SCMP_ACT_ALLOW'
  | 'SCMP_ACT_LOG'
  | 'SCMP_ACT_NOTIFY';

/** Seccomp argument comparison operators. */
export type LinuxSeccompOperator =
  | 'SCMP_CMP_NE'
  | 'SCMP_CMP_LT'
  | 'SCMP_CMP_LE'
  | 'SCMP_CMP_EQ'
  | 'SCMP_CMP_GE'
  | 'SCMP_CMP_GT'
  | 'SCMP_CMP_MASKED_EQ';

/** A condition on one syscall argument. */
export interface LinuxSeccompArg {
  index: number;
  value: number;
  valueTwo?: number;
  op: LinuxSeccompOperator;
}

/** A seccomp rule for a set of syscalls. */
export interface LinuxSyscall {
  names: string[];
  action: LinuxSeccompAction;
  /** errno returned for SCMP_ACT_ERRNO (default EPERM). */
  errnoRet?: number;
  args?: LinuxSeccompArg[];
}

/** The seccomp filter. */
export interface LinuxSeccomp {
  defaultAction: LinuxSeccompAction;
  defaultErrnoRet?: number;
  /** "SCMP_ARCH_X86_64", ... */
  architectures?: string[];
  /** "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", ... */
  flags?: string[];
  /** Unix socket that receives the seccomp notify fd. */
  listenerPath?: string;
  /** Opaque data passed to the listener. */
  listenerMetadata?: string;
  syscalls?: LinuxSyscall[];
}

/** Intel RDT (resctrl) settings. */
export interface LinuxIntelRdt {
  closID?: string;
  l3CacheSchema?: string;
  memBwSchema?: string;
  schemata?: string[];
  enableCMT?: boolean;
  enableMBM?: boolean;
}

/** personality(2) settings. */
export interface LinuxPersonality {
  domain: 'LINUX' | 'LINUX32';
  flags?: string[];
}

/** NUMA memory policy (set_mempolicy(2)). */
export interface LinuxMemoryPolicy {
  mode:
    | 'MPOL_DEFAULT'
    | 'MPOL_BIND'
    | 'MPOL_INTERLEAVE'
    | 'MPOL_WEIGHTED_INTERLEAVE'
    | 'MPOL_PREFERRED'
    | 'MPOL_PREFERRED_MANY'
    | 'MPOL_LOCAL';
  /** Node list, e.g. "0-3,7". */
  nodes?: string;
  flags?: string[];
}

/** A host network device moved into the container's network namespace. */
export interface LinuxNetDevice {
  /** Name inside the container (defaults to the host name). */
  name?: string;
}

/** Mount propagation of the rootfs. */
export type RootfsPropagation = 'private' | 'shared' | 'slave' | 'unbindable' | 'rprivate' | 'rshared' | 'rslave' | 'runbindable';

/** Linux-specific configuration (`linux`). */
export interface Linux {
  namespaces?: LinuxNamespace[];
  uidMappings?: IDMapping[];
  gidMappings?: IDMapping[];
  /** Keyed by clock: "monotonic" or "boottime". */
  timeOffsets?: Record<string, LinuxTimeOffset>;
  devices?: LinuxDevice[];
  cgroupsPath?: string;
  resources?: LinuxResources;
  rootfsPropagation?: RootfsPropagation;
  seccomp?: LinuxSeccomp;
  sysctl?: Record<string, string>;
  maskedPaths?: string[];
  readonlyPaths?: string[];
  mountLabel?: string;
  intelRdt?: LinuxIntelRdt;
  personality?: LinuxPersonality;
  memoryPolicy?: LinuxMemoryPolicy;
  /** Keyed by host interface name. */
  netDevices?: Record<string, LinuxNetDevice>;
}

/** Container status values of runtime.md. */
export type ContainerStatus = 'creating' | 'created' | 'running' | 'stopped';

/** The state object printed by `state` and passed to hooks on stdin (runtime.md). */
export interface State {
  ociVersion: string;
  id: string;
  status: ContainerStatus;
  /** Host pid of the container process; present while created or running. */
  pid?: number;
  /** Absolute path of the bundle directory. */
  bundle: string;
  annotations?: Record<string, string>;
}
