/*
 * shoal-init: the single-threaded helper that becomes a container's init.
 *
 * TypeScript (shim/src/runtime/plan/) compiles config.json into a flat "plan": an ordered list of
 * records, each an opcode plus string arguments. The helper only interprets the plan; every
 * decision (flag values, device lists, mount expansion) is made in TypeScript, so this C code
 * stays small and needs no JSON parser.
 *
 * Wire format of the plan (all integers little-endian):
 *   u32 magic 'SHP2' | u32 record count | count x (u32 op | u32 argc) | strings
 *   strings: every record's arguments in order, each UTF-8 and NUL-terminated
 * The plan is read from the sync fd, prefixed by its u32 total byte length. (One block of strings
 * lets the runtime encode the plan with one string write; arguments cannot hold NUL.)
 */
#ifndef SHOAL_HELPER_H
#define SHOAL_HELPER_H

#include <stddef.h>
#include <stdint.h>

#define PLAN_MAGIC 0x32504853u /* "SHP2" */

/* Opcodes. Keep in sync with shim/src/runtime/plan/ops.ts. */
enum plan_op {
  /* --- parent phase: run by the helper before and right after clone --- */
  OP_MODE = 1,          /* "create" | "run": whether the helper stays to wait for the init */
  OP_JOIN_NS = 2,       /* type, path: setns before clone (user first) */
  OP_CLONE_FLAGS = 3,   /* decimal CLONE_NEW* flags for the new namespaces */
  OP_UID_MAP = 4,       /* uid_map text written by the parent */
  OP_GID_MAP = 5,       /* gid_map text written by the parent */
  OP_CGROUP_PROCS = 6,  /* path of a cgroup.procs file: the cgroup the init joins (see init.c,
                           cgroups[]); then "2" for the cgroup2 hierarchy, "1" for a v1 one */
  OP_OOM_SCORE_ADJ = 7, /* value, written by the parent to /proc/<pid>/oom_score_adj */
  OP_RLIMIT = 8,        /* resource number, soft, hard ("-1" = infinity); prlimit by the parent */
  OP_TIME_OFFSETS = 9,  /* text for /proc/self/timens_offsets (time namespace) */
  OP_UNSHARE_CGROUPNS = 10, /* child unshares the cgroup namespace after joining its cgroup */

  /* --- child phase: run by the init inside the new namespaces, in this order --- */
  OP_ROOTFS = 20,            /* absolute host path of the rootfs */
  OP_ROOTFS_PROPAGATION = 21,/* decimal mount flags applied to / (default MS_REC|MS_SLAVE) */
  OP_MOUNT = 22,             /* source, dest (in rootfs), fstype, flags, propagation flags, data,
                                kind: "bind" | "fs" | "remount", then optional (defaults in
                                brackets): recursive MOUNT_ATTR_* to set [0] and to clear [0]
                                (mount_setattr AT_RECURSIVE), idmap index [-1] (OP_IDMAP_MOUNT),
                                tmpcopyup "1" ["0"] */
  OP_DEVICE = 23,            /* path, type (c|b|u|p), major, minor, mode, uid, gid */
  OP_SYMLINK = 24,           /* target, linkpath (in rootfs) */
  OP_HOOK_SYNC = 25,         /* stop, tell the runtime "HOOKS", wait for the state json */
  OP_HOOK = 26,              /* stage, path, timeout secs, nargs, args..., env... */
  OP_PIVOT = 27,             /* "pivot" | "chroot" | "move" */
  OP_READONLY_ROOT = 28,
  OP_MASK = 29,              /* path */
  OP_READONLY_PATH = 30,     /* path */
  OP_SYSCTL = 31,            /* key (dotted), value */
  OP_HOSTNAME = 32,
  OP_DOMAINNAME = 33,
  OP_CONSOLE_SOCKET = 34,    /* host path of the unix socket that receives the pty master, height, width */
  OP_EXEC_FIFO = 35,         /* host path of exec.fifo; "start" releases the init through it */
  OP_PRESERVE_FDS = 36,      /* count of fds from 3 up that stay open across exec */
  OP_CAPS = 37,              /* bounding, effective, inheritable, permitted, ambient (hex u64) */
  OP_NO_NEW_PRIVS = 38,
  OP_SECCOMP_BEGIN = 39,     /* defaultAction, defaultErrnoRet, flags, archs... */
  OP_SECCOMP_RULE = 40,      /* action, errnoRet, nargs, nargs x (index,value,valueTwo,op), names... */
  OP_SECCOMP_END = 41,
  OP_USER = 42,              /* uid, gid, additional gids... */
  OP_UMASK = 43,             /* octal */
  OP_CWD = 44,
  OP_ENV = 45,               /* k=v... */
  OP_ARGS = 46,              /* argv... */
  OP_PERSONALITY = 47,       /* domain */
  OP_MKDIR = 48,             /* path in rootfs, mode */
  OP_SECCOMP_LISTENER = 49,  /* listenerPath, listenerMetadata */
  OP_SETGROUPS_DENY = 50,    /* write "deny" to /proc/<pid>/setgroups before gid_map */
  OP_DEV_CONSOLE = 51,       /* bind the pty slave over /dev/console */
  OP_SELINUX_LABEL = 52,     /* process label */
  OP_APPARMOR = 53,          /* profile */
  OP_JOIN_CGROUPNS = 54,     /* path: the child joins this cgroup namespace after its cgroup (exec) */
  OP_STATE_JSON = 55,        /* container state json (exec): given to the seccomp listener */
  OP_IDMAP_MOUNT = 56,       /* parent phase: index, source, uid_map text, gid_map text,
                                open_tree recursive "0"|"1", idmap recursive "0"|"1" */
  OP_IOPRIO = 57,            /* class (1 RT, 2 BE, 3 IDLE), level 0..7: ioprio_set before exec */
  OP_SCHEDULER = 58,         /* policy, nice, priority, flags, runtime, deadline, period (decimal) */
  OP_CPU_AFFINITY = 59,      /* initial, final: cpu lists "0,1,5" ("" none, "*" all) (exec) */
  OP_START_SYNC = 60,        /* no args: after READY the init waits for 'G' on the sync channel
                                (a foreground run with a terminal or a pid file: the runtime
                                attaches to the pty, or writes the pid file, first) */
  OP_AWAIT_CGROUPS = 63,     /* no args (child phase): wait until the init is in its cgroups
                                (before mounts of the container's cgroup directories) */
  OP_CGROUPS_LATER = 62,     /* no args: only the cgroup2 directory exists at clone; the runtime
                                sends 'K' once the others exist with their limits (see init.c) */
  OP_AWAIT_CGROUP_DIRS = 64, /* no args (child phase, with CGROUPS_LATER): wait until the
                                container's cgroup directories exist (before binds of them); the
                                init joins them later, before hooks and READY */
  OP_REPORT_EXIT = 61,       /* no args (run mode): the helper holds the init's namespaces and
                                reports its exit on the sync channel ("EXIT <code>") before it
                                ends (a foreground run) */
};

struct rec {
  uint32_t op;
  uint32_t argc;
  char **argv; /* NUL-terminated, into the plan's block of strings */
};

struct plan {
  uint32_t n;
  struct rec *recs;
};

/*
 * A setup failure: the stage that failed, the errno and the path. It is sent to the runtime as
 * "ERR <stage>\t<errno>\t<path>\t<detail>\n" and turned into e.g.
 * "mount proc on <rootfs>/proc: EPERM".
 */
struct err {
  char stage[64];
  int errnum;
  char path[512];
  char detail[256];
};

int plan_read(int fd, struct plan *p);
const struct rec *plan_find(const struct plan *p, uint32_t op);

/* Set *e and return -1. errnum 0 means "no errno" (a logical failure, detail says why). */
int fail(struct err *e, const char *stage, int errnum, const char *path, const char *detail);

/* util.c */
int write_file(const char *path, const char *data, size_t len);
/* s as a JSON string literal (quotes included), malloc'd; NULL when out of memory. */
char *json_quote(const char *s);
int read_full(int fd, void *buf, size_t len);
int write_full(int fd, const void *buf, size_t len);
/* One sendmsg of `data` with `nfd` (at most 64) fds as SCM_RIGHTS, no SIGPIPE; 0 or -1 with errno. */
int send_fds(int sock, const void *data, size_t len, const int *fds, int nfd);
uint64_t parse_u64(const char *s);

/* mounts.c: everything between clone and pivot_root, and the masked/readonly paths after it. */
int mounts_prepare_root(const struct plan *p, struct err *e);
int mounts_apply(const struct rec *r, const char *rootfs, int userns, struct err *e);
int device_create(const struct rec *r, const char *rootfs, int userns, struct err *e);
int symlink_create(const struct rec *r, const char *rootfs, struct err *e);
int mkdir_in_root(const struct rec *r, const char *rootfs, struct err *e);
/* Detached idmapped mount trees made by the parent half (OP_IDMAP_MOUNT), by index. */
void mounts_set_idmap_fds(const int *fds, int n);
/* Close the rootfs descriptor the mount functions share (mounts.c). */
void mounts_forget_root(void);
/* tmpcopyup: copy the tree under sfd (a directory) into dfd (recursive, keeps owner and mode). */
int copy_tree(int sfd, int dfd);
int do_pivot(const char *rootfs, const char *how, struct err *e);
int readonly_root(struct err *e);
int mask_path(const char *path, struct err *e);
int readonly_path(const char *path, struct err *e);

/* seccomp.c: libseccomp is loaded with dlopen; the filter is built before pivot_root (while the
 * host's library is reachable) and loaded right before execve. */
int seccomp_prepare(const struct plan *p, struct err *e);
int seccomp_load_prepared(struct err *e);
int seccomp_present(const struct plan *p);

/* --- seccomp.c / caps.c additions (owned by the seccomp/caps work) --- */
/* Listener fd from a filter with SCMP_ACT_NOTIFY rules after seccomp_load_prepared, or -1. */
int seccomp_notify_fd_get(void);
/* caps.c: OP_CAPS (bounding, effective, inheritable, permitted, ambient as hex u64). */
int caps_apply(const struct rec *r, struct err *e);
/* prctl(PR_SET_KEEPCAPS, 1): call before setresuid so the permitted set survives. */
int caps_keep_for_setuid(void);
/* --- end seccomp.c / caps.c additions --- */

#endif
