/*
 * shoal-init: started by the shoal CLI (or the shim) as `shoal-init <sync-fd>`, single-threaded.
 *
 * The parent half joins the namespaces named by path, clones the container's init into the new
 * namespaces, places it in its cgroups, writes its uid/gid maps, oom_score_adj and rlimits, and
 * reports "PID <host pid>" to the runtime. In "create" mode it then exits, so the init is
 * reparented to the caller's subreaper (containerd's shim); in "run" mode it stays and exits with
 * the init's status (128+signal when killed).
 *
 * The child half interprets the plan in order (mounts, devices, hooks, pivot_root, paths, sysctl,
 * hostname ...), reports "READY", waits on exec.fifo until `start`, then switches user and
 * capabilities, loads seccomp and execs the process.
 *
 * The helper runs from a sealed memfd copy of its binary (CVE-2019-5736): /proc/<init>/exe then
 * names that memfd, never the host's shoal-init, so a container process cannot open the host
 * binary for writing through it. The runtime normally starts it from such a copy (the addon's
 * sealedCopy); otherwise the helper makes one and re-executes itself from it first.
 *
 * Messages to the runtime on the sync fd, one per line:
 *   PID <pid> | HOOKS | READY | ERR <stage>\t<errno>\t<path>\t<detail>
 * The runtime answers HOOKS with 'C' <u32 length> <state json>.
 */

#include "helper.h"
#include "cloexec.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

static int sync_fd = -1;
static struct plan plan;
static char *state_json = NULL;
static size_t state_len = 0;
/* Opened by the parent half before it joins any namespace (host paths), inherited by the init. */
static int fifo_fd = -1, console_sock = -1;
/* The host's /proc and the cgroup files, opened before joining a mount namespace (where those
 * paths would name the container's own view). */
static int proc_fd = -1;
/*
 * How the init joins the cgroup of each hierarchy (one OP_CGROUP_PROCS each). Moving a whole
 * process (a write to cgroup.procs) takes the kernel's global cgroup_threadgroup_rwsem for
 * writing, whose first use after a quiet spell waits for an RCU grace period (5-15 ms). Two ways
 * around it:
 *  - JOIN_SELF (cgroup v1): the init writes "0" to the cgroup's `tasks` file itself, moving only
 *    the calling thread, its only one, which the kernel does without that lock;
 *  - JOIN_CLONE (cgroup v2): clone3(CLONE_INTO_CGROUP) starts the init in the cgroup.
 * JOIN_PARENT, the fallback (no tasks file, no clone3), writes the init's pid to cgroup.procs.
 */
enum { JOIN_PARENT, JOIN_SELF, JOIN_CLONE };
static struct {
  int fd;               /* tasks (JOIN_SELF) or cgroup.procs (JOIN_PARENT, JOIN_CLONE's fallback) */
  int how;
  const char *path;     /* for errors: the plan's cgroup.procs path */
} cgroups[64];
static int n_cgroups = 0;
/* The cgroup2 directory for CLONE_INTO_CGROUP (its cgroups[] entry is JOIN_CLONE), or -1. */
static int clone_cgroup_fd = -1;
/*
 * OP_CGROUPS_LATER: the runtime makes the cgroups while the init is set up. Only the cgroup2
 * directory (CLONE_INTO_CGROUP) exists at clone. The runtime sends 'D' once the other
 * directories exist (the parent passes it on as 'd': the init may bind them, wait_cgroup_dirs)
 * and 'K' once they have their limits; the parent then opens their tasks files and hands them to
 * the init with the 'c' (SCM_RIGHTS). The init makes its mounts, pivot_root included, meanwhile
 * and joins just before it needs to be in them (wait_cgroups: hooks, cgroup namespace, READY).
 */
static int cgroups_later = 0;
/* cgroups[] entries from this index on were opened after the clone (cgroups_later). */
static int late_cgroups = 64;
/* OP_JOIN_CGROUPNS, opened by the parent half before it joins the container's mount namespace. */
static int cgroupns_fd = -1;
/* The seccomp listener (OP_SECCOMP_LISTENER), connected by the parent half (host path). */
static int listener_sock = -1;
/* The init's pid in the runtime's pid namespace, sent to the child with the go byte. */
static pid_t host_pid = 0;
/* Detached idmapped mount trees (OP_IDMAP_MOUNT), made by the parent half on the host. */
static int idmap_fds[256];
static int n_idmap_fds = 0;

extern char **environ;

#ifndef CGROUP_SUPER_MAGIC
#define CGROUP_SUPER_MAGIC 0x27e0eb
#endif
#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif
#define CLONE_INTO_CGROUP_FLAG 0x200000000ULL
#ifndef SYS_clone3
#define SYS_clone3 435
#endif

/* Marker in the environment of the re-executed helper: a second pass must find a sealed memfd. */
#define CLONED_ENV "_SHOAL_INIT_CLONED=1"
#define SELF_SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

static void send_line(const char *s) {
  if (sync_fd >= 0) write_full(sync_fd, s, strlen(s));
}

/* Report e to the runtime and end this process. */
static void die(const struct err *e) {
  char buf[1024];
  snprintf(buf, sizeof buf, "ERR %s\t%d\t%s\t%s\n", e->stage, e->errnum, e->path, e->detail);
  send_line(buf);
  _exit(1);
}

#define CHECK(call) do { if ((call) < 0) die(&e); } while (0)

/*
 * CVE-2019-5736: make sure this process runs from a sealed, anonymous copy of the binary. If
 * /proc/self/exe is already a memfd carrying our seals, return; otherwise copy the binary into a
 * memfd (MFD_CLOEXEC | MFD_ALLOW_SEALING), seal it against any change and fexecve it with the same
 * argv. CLONED_ENV guards against a loop when the kernel would not report the seals. The copy
 * costs well under a millisecond for this ~60 KB static-free binary (see the report in the tests).
 */
static int ensure_sealed_self(char **argv, struct err *e) {
  int self = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  if (self < 0) return fail(e, "clone binary", errno, "/proc/self/exe", "open");
  int seals = fcntl(self, F_GET_SEALS);
  if (seals >= 0 && (seals & SELF_SEALS) == SELF_SEALS) {
    close(self);
    return 0;
  }
  for (char **v = environ; v && *v; v++)
    if (strcmp(*v, CLONED_ENV) == 0) { close(self); return fail(e, "clone binary", 0, "/proc/self/exe", "re-executed copy is not sealed"); }
  struct stat st;
  if (fstat(self, &st) < 0) { close(self); return fail(e, "clone binary", errno, "/proc/self/exe", "stat"); }
  int mfd = memfd_create("shoal-init", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (mfd < 0) { close(self); return fail(e, "clone binary", errno, "", "memfd_create"); }
  off_t off = 0;
  while (off < st.st_size) {
    ssize_t n = sendfile(mfd, self, &off, (size_t)(st.st_size - off));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) { int err = n < 0 ? errno : EIO; close(self); close(mfd); return fail(e, "clone binary", err, "", "copy"); }
  }
  close(self);
  if (fcntl(mfd, F_ADD_SEALS, SELF_SEALS) < 0) { close(mfd); return fail(e, "clone binary", errno, "", "seal"); }
  size_t n = 0;
  while (environ && environ[n]) n++;
  char *env[n + 2];
  for (size_t i = 0; i < n; i++) env[i] = environ[i];
  env[n] = CLONED_ENV;
  env[n + 1] = NULL;
  fexecve(mfd, argv, env);
  int err = errno;
  close(mfd);
  return fail(e, "clone binary", err, "", "fexecve");
}

static int ns_flag(const char *type) {
  static const struct { const char *n; int f; } t[] = {
      {"user", CLONE_NEWUSER}, {"mnt", CLONE_NEWNS}, {"mount", CLONE_NEWNS}, {"pid", CLONE_NEWPID},
      {"net", CLONE_NEWNET}, {"network", CLONE_NEWNET}, {"ipc", CLONE_NEWIPC}, {"uts", CLONE_NEWUTS},
      {"cgroup", CLONE_NEWCGROUP}, {"time", CLONE_NEWTIME}};
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
    if (strcmp(t[i].n, type) == 0) return t[i].f;
  return 0;
}

/*
 * setns for every OP_JOIN_NS, the user namespace first (the others are owned by it). Every path
 * is opened before the first setns: after joining a mount namespace, /proc/<pid>/ns/... would be
 * looked up in the container's /proc.
 */
static int join_namespaces(struct err *e) {
  int fds[32], n = 0, rc = 0;
  const struct rec *recs[32];
  for (int pass = 0; pass < 2 && rc == 0; pass++) {
    for (uint32_t i = 0; i < plan.n; i++) {
      const struct rec *r = &plan.recs[i];
      if (r->op != OP_JOIN_NS) continue;
      int is_user = strcmp(r->argv[0], "user") == 0;
      if ((pass == 0) != is_user) continue;
      if (n == 32) { rc = fail(e, "open namespace", E2BIG, r->argv[1], "too many namespaces"); break; }
      int fd = open(r->argv[1], O_RDONLY | O_CLOEXEC);
      if (fd < 0) { rc = fail(e, "open namespace", errno, r->argv[1], r->argv[0]); break; }
      recs[n] = r;
      fds[n++] = fd;
    }
  }
  for (int i = 0; i < n && rc == 0; i++)
    if (setns(fds[i], ns_flag(recs[i]->argv[0])) < 0) rc = fail(e, "setns", errno, recs[i]->argv[1], recs[i]->argv[0]);
  for (int i = 0; i < n; i++) close(fds[i]);
  return rc;
}

/* Parent side, after clone: cgroups, rlimits, oom score, id maps, all on the child's host pid. */
static int proc_write(const char *rel, const char *data) {
  int fd = openat(proc_fd, rel, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = write(fd, data, strlen(data));
  int saved = errno;
  close(fd);
  if (n != (ssize_t)strlen(data)) { errno = n < 0 ? saved : EIO; return -1; }
  return 0;
}

/*
 * Open what the init needs to join its cgroups (see cgroups[] above), from the plan's
 * cgroup.procs paths, while the host's cgroup filesystems are still visible.
 */
enum { CGROUPS_ALL, CGROUPS_V2, CGROUPS_REST };
/* Is the record's hierarchy the cgroup2 one (its second argument, "2")? */
static int procs_is_v2(const struct rec *r) {
  return r->argc > 1 && strcmp(r->argv[1], "2") == 0;
}
static int open_cgroups(struct err *e, int which) {
  for (uint32_t i = 0; i < plan.n; i++) {
    const struct rec *r = &plan.recs[i];
    if (r->op != OP_CGROUP_PROCS) continue;
    if ((which == CGROUPS_V2 && !procs_is_v2(r)) || (which == CGROUPS_REST && procs_is_v2(r))) continue;
    if (n_cgroups == 64) return fail(e, "join cgroup", E2BIG, "", "too many hierarchies");
    const char *procs = r->argv[0];
    const char *slash = strrchr(procs, '/');
    char dir[PATH_MAX];
    int fits = slash && (size_t)(slash - procs) < sizeof dir - 8;
    if (fits) {
      memcpy(dir, procs, (size_t)(slash - procs));
      dir[slash - procs] = 0;
    }
    /* A v1 hierarchy (the plan says "1", or the filesystem says so): the init writes "0" to its
     * tasks file itself. The plan's word saves opening cgroup.procs to ask. */
    int fd = -1, how = JOIN_PARENT;
    int v1 = r->argc > 1 && strcmp(r->argv[1], "1") == 0;
    if (!v1) {
      fd = open(procs, O_WRONLY | O_CLOEXEC);
      if (fd < 0) return fail(e, "join cgroup", errno, procs, "");
      struct statfs sf;
      if (fits && fstatfs(fd, &sf) == 0) {
        if (sf.f_type == CGROUP_SUPER_MAGIC) {
          v1 = 1;
        } else if (sf.f_type == CGROUP2_SUPER_MAGIC && clone_cgroup_fd < 0) {
          clone_cgroup_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
          if (clone_cgroup_fd >= 0) how = JOIN_CLONE;
        }
      }
    }
    if (v1 && fits) {
      strcat(dir, "/tasks");
      int t = open(dir, O_WRONLY | O_CLOEXEC);
      if (t >= 0) {
        if (fd >= 0) close(fd);
        fd = t;
        how = JOIN_SELF;
      }
    }
    if (fd < 0) {
      fd = open(procs, O_WRONLY | O_CLOEXEC); /* no tasks file: the parent writes the pid */
      if (fd < 0) return fail(e, "join cgroup", errno, procs, "");
    }
    cgroups[n_cgroups].fd = fd;
    cgroups[n_cgroups].how = how;
    cgroups[n_cgroups].path = procs;
    n_cgroups++;
  }
  return 0;
}

/*
 * clone(2) of the init with `flags`, into the cgroup2 cgroup when there is one. Where clone3 or
 * CLONE_INTO_CGROUP is refused (kernels before 5.7, or a cgroup the kernel will not start a
 * process in), a plain clone, and the parent writes the pid to cgroup.procs, which reports the
 * cgroup's own error if there is one.
 */
static pid_t clone_init(int flags) {
  if (clone_cgroup_fd >= 0) {
    struct {
      uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup;
    } ca;
    memset(&ca, 0, sizeof ca);
    ca.flags = (uint64_t)(unsigned)flags | CLONE_INTO_CGROUP_FLAG;
    ca.exit_signal = SIGCHLD;
    ca.cgroup = (uint64_t)clone_cgroup_fd;
    pid_t pid = (pid_t)syscall(SYS_clone3, &ca, sizeof ca);
    if (pid >= 0) return pid;
    for (int i = 0; i < n_cgroups; i++)
      if (cgroups[i].how == JOIN_CLONE) cgroups[i].how = JOIN_PARENT;
  }
  return (pid_t)syscall(SYS_clone, (unsigned long)flags | SIGCHLD, NULL, NULL, NULL, NULL);
}

/*
 * The parent's part of placing the init in its cgroups: write its pid where it cannot join by
 * itself (JOIN_PARENT), and close the parent's copies. Runs while the child sets up its mounts;
 * the child waits for the 'c' that follows before anything that depends on its cgroups.
 */
static int join_cgroups(pid_t pid, struct err *e) {
  char buf[32];
  int n = snprintf(buf, sizeof buf, "%d", pid);
  for (int i = 0; i < n_cgroups; i++) {
    int fd = cgroups[i].fd;
    if (cgroups[i].how == JOIN_SELF && i >= late_cgroups) continue; /* sent to the init with the 'c' */
    cgroups[i].fd = -1;
    if (cgroups[i].how != JOIN_PARENT) {
      close(fd);
      continue;
    }
    ssize_t w = write(fd, buf, (size_t)n);
    int err = errno;
    close(fd);
    if (w != n) return fail(e, "join cgroup", w < 0 ? err : EIO, cgroups[i].path, "");
  }
  return 0;
}

/* The child's part: move itself (its only thread) into its cgroup v1 cgroups. */
static int join_cgroups_self(struct err *e) {
  for (int i = 0; i < n_cgroups; i++) {
    if (cgroups[i].how == JOIN_SELF && write(cgroups[i].fd, "0", 1) != 1)
      return fail(e, "join cgroup", errno, cgroups[i].path, "tasks");
    close(cgroups[i].fd);
    cgroups[i].fd = -1;
  }
  return 0;
}

/* Everything else the parent sets on the child before releasing it: rlimits, oom score, id maps. */
static int setup_child_from_parent(pid_t pid, struct err *e) {
  char path[128];
  for (uint32_t i = 0; i < plan.n; i++) {
    const struct rec *r = &plan.recs[i];
    switch (r->op) {
    case OP_OOM_SCORE_ADJ:
      snprintf(path, sizeof path, "%d/oom_score_adj", pid);
      if (proc_write(path, r->argv[0]) < 0) return fail(e, "oom_score_adj", errno, path, r->argv[0]);
      break;
    case OP_RLIMIT: {
      struct rlimit rl;
      int res = atoi(r->argv[0]);
      rl.rlim_cur = strcmp(r->argv[1], "-1") == 0 ? RLIM_INFINITY : strtoull(r->argv[1], NULL, 10);
      rl.rlim_max = strcmp(r->argv[2], "-1") == 0 ? RLIM_INFINITY : strtoull(r->argv[2], NULL, 10);
      if (prlimit(pid, res, &rl, NULL) < 0) return fail(e, "setrlimit", errno, r->argv[0], "");
      break;
    }
    case OP_SETGROUPS_DENY:
      snprintf(path, sizeof path, "%d/setgroups", pid);
      if (proc_write(path, "deny") < 0) return fail(e, "setgroups deny", errno, path, "");
      break;
    case OP_UID_MAP:
    case OP_GID_MAP:
      snprintf(path, sizeof path, "%d/%s", pid, r->op == OP_UID_MAP ? "uid_map" : "gid_map");
      if (proc_write(path, r->argv[0]) < 0) return fail(e, "write id map", errno, path, r->argv[0]);
      break;
    }
  }
  return 0;
}

/* Run a hook from inside the container's namespaces: state json on stdin, bounded by timeout. */
static int run_hook(const struct rec *r, struct err *e) {
  /* args: stage, path, timeout, nargs, args..., env... */
  const char *stage = r->argv[0], *path = r->argv[1];
  int timeout = atoi(r->argv[2]);
  int nargs = atoi(r->argv[3]);
  char **args = &r->argv[4];
  char **env = &r->argv[4 + nargs];
  char *argv_buf[nargs + 2];
  for (int i = 0; i < nargs; i++) argv_buf[i] = args[i];
  if (nargs == 0) { argv_buf[0] = (char *)path; nargs = 1; }
  argv_buf[nargs] = NULL;
  int envc = (int)r->argc - 4 - atoi(r->argv[3]);
  char *env_buf[envc + 1];
  for (int i = 0; i < envc; i++) env_buf[i] = env[i];
  env_buf[envc] = NULL;
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) return fail(e, stage, errno, path, "pipe");
  pid_t pid = fork();
  if (pid < 0) return fail(e, stage, errno, path, "fork");
  if (pid == 0) {
    dup2(p[0], 0);
    /* A hook gets the state on stdin, and stdout and stderr: not the container's fds. */
    cloexec_from(3);
    execve(path, argv_buf, env_buf);
    _exit(127);
  }
  close(p[0]);
  signal(SIGPIPE, SIG_IGN);
  if (state_json) write_full(p[1], state_json, state_len);
  close(p[1]);
  int status;
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (;;) {
    pid_t w = waitpid(pid, &status, timeout > 0 ? WNOHANG : 0);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) return fail(e, stage, errno, path, "wait");
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (timeout > 0 && now.tv_sec - start.tv_sec >= timeout) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      char d[64];
      snprintf(d, sizeof d, "timed out after %ds", timeout);
      return fail(e, stage, 0, path, d);
    }
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
  char d[64];
  if (WIFEXITED(status)) snprintf(d, sizeof d, "exit status %d", WEXITSTATUS(status));
  else snprintf(d, sizeof d, "killed by signal %d", WTERMSIG(status));
  return fail(e, stage, 0, path, d);
}

/* Ask the runtime to run its own hooks (prestart, createRuntime), and receive the state json. */
static int hook_sync(struct err *e) {
  send_line("HOOKS\n");
  unsigned char h[5];
  if (read_full(sync_fd, h, 5) < 0 || h[0] != 'C') return fail(e, "hook sync", errno, "", "runtime went away");
  uint32_t len = (uint32_t)h[1] | ((uint32_t)h[2] << 8) | ((uint32_t)h[3] << 16) | ((uint32_t)h[4] << 24);
  if (len > (16u << 20)) return fail(e, "hook sync", EINVAL, "", "state too large");
  free(state_json);
  state_json = malloc(len + 1);
  if (!state_json || read_full(sync_fd, state_json, len) < 0) return fail(e, "hook sync", errno, "", "");
  state_json[len] = 0;
  state_len = len;
  return 0;
}

/* Connect to a unix socket by host path (console socket, seccomp listener): before any
 * namespace is joined. stage names the socket in errors. */
static int unix_connect(const char *path, const char *stage, struct err *e) {
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return fail(e, stage, errno, path, "");
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof a.sun_path) { close(s); return fail(e, stage, ENAMETOOLONG, path, ""); }
  strcpy(a.sun_path, path);
  if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) { int err = errno; close(s); return fail(e, stage, err, path, "connect"); }
  return s;
}

/* Connect to the console socket (host path, so before pivot_root). */
static int console_connect(const char *path, struct err *e) {
  return unix_connect(path, "console socket", e);
}

/*
 * A user namespace carrying the given uid_map/gid_map text, as an fd of /proc/<pid>/ns/user: a
 * short-lived child is cloned into a new user namespace, the maps are written from here, the
 * namespace is opened and the child is released and reaped.
 */
static int userns_fd_for(const char *uid_map, const char *gid_map, struct err *e) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) return fail(e, "idmap user namespace", errno, "", "pipe");
  pid_t pid = (pid_t)syscall(SYS_clone, (unsigned long)CLONE_NEWUSER | SIGCHLD, NULL, NULL, NULL, NULL);
  if (pid < 0) { int err = errno; close(p[0]); close(p[1]); return fail(e, "idmap user namespace", err, "", "clone"); }
  if (pid == 0) {
    char c;
    close(p[1]);
    while (read(p[0], &c, 1) < 0 && errno == EINTR) {}
    _exit(0);
  }
  close(p[0]);
  char path[64];
  int fd = -1, rc = 0;
  snprintf(path, sizeof path, "%d/uid_map", pid);
  if (proc_write(path, uid_map) < 0) rc = fail(e, "idmap user namespace", errno, path, uid_map);
  snprintf(path, sizeof path, "%d/gid_map", pid);
  if (rc == 0 && proc_write(path, gid_map) < 0) rc = fail(e, "idmap user namespace", errno, path, gid_map);
  snprintf(path, sizeof path, "%d/ns/user", pid);
  if (rc == 0 && (fd = openat(proc_fd, path, O_RDONLY | O_CLOEXEC)) < 0) rc = fail(e, "idmap user namespace", errno, path, "");
  close(p[1]);
  while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
  return rc < 0 ? -1 : fd;
}

/*
 * OP_IDMAP_MOUNT: index, source, uid_map, gid_map, recursive tree, recursive idmap. Made on the
 * host (the caller needs CAP_SYS_ADMIN over the source's superblock, which a container user
 * namespace lacks): open_tree(OPEN_TREE_CLONE) detaches a copy of the source, and
 * mount_setattr(MOUNT_ATTR_IDMAP) maps it; the init later move_mount()s it into place.
 */
static int idmap_mount_prepare(const struct rec *r, struct err *e) {
  if (r->argc < 6) return fail(e, "idmap mount", EINVAL, "", "short record");
  int idx = atoi(r->argv[0]);
  if (idx != n_idmap_fds || idx >= 256) return fail(e, "idmap mount", EINVAL, r->argv[1], "bad index");
  int ns = userns_fd_for(r->argv[2], r->argv[3], e);
  if (ns < 0) return -1;
  unsigned flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (strcmp(r->argv[4], "1") == 0 ? AT_RECURSIVE : 0);
  int t = open_tree(AT_FDCWD, r->argv[1], flags);
  if (t < 0) { int err = errno; close(ns); return fail(e, "idmap mount", err, r->argv[1], "open_tree"); }
  struct mount_attr a = {.attr_set = MOUNT_ATTR_IDMAP, .userns_fd = (uint64_t)ns};
  unsigned at = AT_EMPTY_PATH | (strcmp(r->argv[5], "1") == 0 ? AT_RECURSIVE : 0);
  int rc = mount_setattr(t, "", at, &a, sizeof a);
  int err = errno;
  close(ns);
  if (rc < 0) { close(t); return fail(e, "idmap mount", err, r->argv[1], "mount_setattr MOUNT_ATTR_IDMAP"); }
  idmap_fds[n_idmap_fds++] = t;
  return 0;
}

/* A cpu list "0,1,5" ("*": every cpu) as a cpu_set_t. */
static int parse_cpus(const char *list, cpu_set_t *set) {
  CPU_ZERO(set);
  if (strcmp(list, "*") == 0) {
    for (int i = 0; i < CPU_SETSIZE; i++) CPU_SET(i, set);
    return 0;
  }
  for (const char *p = list; *p;) {
    char *end;
    unsigned long c = strtoul(p, &end, 10);
    if (end == p || c >= CPU_SETSIZE) { errno = EINVAL; return -1; }
    CPU_SET(c, set);
    p = *end == ',' ? end + 1 : end;
    if (*end && *end != ',') { errno = EINVAL; return -1; }
  }
  return 0;
}

/* sched_setaffinity(0) to a cpu list; "" leaves the affinity alone. */
static int set_affinity(const char *list, const char *which, struct err *e) {
  if (!list[0]) return 0;
  cpu_set_t set;
  if (parse_cpus(list, &set) < 0) return fail(e, "cpu affinity", EINVAL, list, which);
  if (sched_setaffinity(0, sizeof set, &set) < 0) return fail(e, "cpu affinity", errno, list, which);
  return 0;
}

/* struct sched_attr of sched_setattr(2) (glibc has no wrapper). */
struct shoal_sched_attr {
  uint32_t size, sched_policy;
  uint64_t sched_flags;
  int32_t sched_nice;
  uint32_t sched_priority;
  uint64_t sched_runtime, sched_deadline, sched_period;
};

/* OP_SCHEDULER: policy, nice, priority, flags, runtime, deadline, period. */
static int apply_scheduler(const struct rec *r, struct err *e) {
  if (r->argc < 7) return fail(e, "scheduler", EINVAL, "", "short record");
  struct shoal_sched_attr a = {
      .size = sizeof a,
      .sched_policy = (uint32_t)strtoul(r->argv[0], NULL, 10),
      .sched_nice = (int32_t)strtol(r->argv[1], NULL, 10),
      .sched_priority = (uint32_t)strtoul(r->argv[2], NULL, 10),
      .sched_flags = strtoull(r->argv[3], NULL, 10),
      .sched_runtime = strtoull(r->argv[4], NULL, 10),
      .sched_deadline = strtoull(r->argv[5], NULL, 10),
      .sched_period = strtoull(r->argv[6], NULL, 10),
  };
  if (syscall(SYS_sched_setattr, 0, &a, 0) < 0) return fail(e, "sched_setattr", errno, "", "process.scheduler");
  return 0;
}

/* OP_IOPRIO: class, level -> ioprio_set(IOPRIO_WHO_PROCESS, 0, class << 13 | level). */
static int apply_ioprio(const struct rec *r, struct err *e) {
  if (r->argc < 2) return fail(e, "ioprio", EINVAL, "", "short record");
  int prio = (atoi(r->argv[0]) << 13) | atoi(r->argv[1]);
  if (syscall(SYS_ioprio_set, 1 /* IOPRIO_WHO_PROCESS */, 0, prio) < 0) return fail(e, "ioprio_set", errno, "", "process.ioPriority");
  return 0;
}

/* Write an LSM attribute of this thread for the next exec (AppArmor, SELinux). */
static int lsm_exec_attr(const char *modern, const char *legacy, const char *value, const char *stage, struct err *e) {
  const char *path = modern && access(modern, F_OK) == 0 ? modern : legacy;
  if (write_file(path, value, strlen(value)) < 0) return fail(e, stage, errno, path, value);
  return 0;
}

/*
 * Seccomp notify: send the container process state (runtime-spec config-linux.md "The Container
 * Process State") with fds ["seccompFd"] and the listener fd as SCM_RIGHTS over the listener
 * socket, then close both. A filter without notify rules sends nothing, as runc.
 */
static int send_seccomp_listener(const char *metadata, struct err *e) {
  int nfd = seccomp_notify_fd_get();
  if (listener_sock < 0 || nfd < 0) {
    if (listener_sock >= 0) close(listener_sock);
    listener_sock = -1;
    return 0;
  }
  char *meta = json_quote(metadata ? metadata : "");
  char fallback[128];
  snprintf(fallback, sizeof fallback, "{\"ociVersion\":\"1.2.0\",\"id\":\"\",\"status\":\"creating\",\"pid\":%d}", (int)host_pid);
  const char *state = state_json && state_len ? state_json : fallback;
  size_t cap = strlen(state) + (meta ? strlen(meta) : 2) + 160;
  char *msg = malloc(cap);
  if (!meta || !msg) { free(meta); free(msg); return fail(e, "seccomp listener", ENOMEM, "", ""); }
  int len = snprintf(msg, cap, "{\"ociVersion\":\"1.2.0\",\"fds\":[\"seccompFd\"],\"pid\":%d,\"metadata\":%s,\"state\":%s}",
                     (int)host_pid, meta, state);
  free(meta);
  int rc = send_fds(listener_sock, msg, (size_t)len, &nfd, 1);
  int err = errno;
  free(msg);
  close(listener_sock);
  listener_sock = -1;
  close(nfd);
  if (rc < 0) return fail(e, "seccomp listener", err, "", "send the notify fd");
  return 0;
}

/* Create the pty from the container's devpts, make it the stdio and controlling terminal, bind
 * the slave over /dev/console, and send the master (with the pty name) over the console socket. */
static int setup_console(int sock, int bind_console, struct err *e) {
  int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) return fail(e, "open /dev/ptmx", errno, "/dev/ptmx", "");
  int unlock = 0, n = 0;
  if (ioctl(master, TIOCSPTLCK, &unlock) < 0) return fail(e, "unlockpt", errno, "/dev/ptmx", "");
  if (ioctl(master, TIOCGPTN, &n) < 0) return fail(e, "ptsname", errno, "/dev/ptmx", "");
  /* process.consoleSize: OP_CONSOLE_SOCKET's optional height and width. */
  const struct rec *cs = plan_find(&plan, OP_CONSOLE_SOCKET);
  if (cs && cs->argc >= 3) {
    struct winsize ws = {.ws_row = (unsigned short)atoi(cs->argv[1]), .ws_col = (unsigned short)atoi(cs->argv[2])};
    if ((ws.ws_row || ws.ws_col) && ioctl(master, TIOCSWINSZ, &ws) < 0) return fail(e, "set console size", errno, "/dev/ptmx", "");
  }
  char name[64];
  snprintf(name, sizeof name, "/dev/pts/%d", n);
  int slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0) return fail(e, "open pty slave", errno, name, "");
  if (bind_console) {
    int c = open("/dev/console", O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (c >= 0) close(c);
    if (mount(name, "/dev/console", NULL, MS_BIND, NULL) < 0) return fail(e, "bind /dev/console", errno, name, "");
  }
  if (send_fds(sock, name, strlen(name), &master, 1) < 0) return fail(e, "send console", errno, "", "");
  close(master);
  close(sock);
  for (int fd = 0; fd < 3; fd++)
    if (dup2(slave, fd) < 0) return fail(e, "dup2 pty", errno, name, "");
  if (ioctl(0, TIOCSCTTY, 0) < 0) return fail(e, "set controlling tty", errno, name, "");
  if (slave > 2) close(slave);
  return 0;
}

/* Find args[0] on the container's PATH (from its env), as execvp would, before start. */
static int resolve_exec(char **args, char **env, char *out, size_t outlen, struct err *e) {
  if (!args || !args[0]) return fail(e, "exec", EINVAL, "", "no process args");
  if (strchr(args[0], '/')) {
    snprintf(out, outlen, "%s", args[0]);
    if (access(out, X_OK) < 0) return fail(e, "exec", errno, out, "");
    return 0;
  }
  const char *path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (char **p = env; p && *p; p++)
    if (strncmp(*p, "PATH=", 5) == 0) path = *p + 5;
  const char *s = path;
  while (*s) {
    const char *end = strchr(s, ':');
    size_t l = end ? (size_t)(end - s) : strlen(s);
    snprintf(out, outlen, "%.*s/%s", (int)l, l ? s : ".", args[0]);
    struct stat st;
    if (stat(out, &st) == 0 && S_ISREG(st.st_mode) && access(out, X_OK) == 0) return 0;
    if (!end) break;
    s = end + 1;
  }
  return fail(e, "exec", ENOENT, args[0], "executable file not found in $PATH");
}

/* Reset what Node and the helper changed and what execve would keep: dispositions, mask. */
static void reset_signals(void) {
  /* Through the raw syscall: glibc's sigaction refuses its internal signals (32 and 33), which
   * the runtime's posix_spawn leaves ignored, and ignored dispositions survive execve. */
  struct {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)(void);
    uint64_t mask;
  } dfl = {SIG_DFL, 0, NULL, 0};
  for (int s = 1; s < NSIG; s++)
    if (s != SIGKILL && s != SIGSTOP) syscall(SYS_rt_sigaction, s, &dfl, NULL, sizeof dfl.mask);
  sigset_t set;
  sigemptyset(&set);
  sigprocmask(SIG_SETMASK, &set, NULL);
}

static int set_user(const struct rec *r, const struct rec *caps, struct err *e) {
  uid_t uid = r ? (uid_t)strtoul(r->argv[0], NULL, 10) : 0;
  gid_t gid = r ? (gid_t)strtoul(r->argv[1], NULL, 10) : 0;
  int ngroups = r ? (int)r->argc - 2 : 0;
  gid_t groups[ngroups > 0 ? ngroups : 1];
  for (int i = 0; i < ngroups; i++) groups[i] = (gid_t)strtoul(r->argv[2 + i], NULL, 10);
  if (setgroups((size_t)ngroups, groups) < 0 && !(errno == EPERM && ngroups == 0))
    return fail(e, "setgroups", errno, "", "");
  if (caps_keep_for_setuid() < 0) return fail(e, "keep capabilities", errno, "", "");
  if (setresgid(gid, gid, gid) < 0) return fail(e, "setgid", errno, r ? r->argv[1] : "0", "");
  if (setresuid(uid, uid, uid) < 0) return fail(e, "setuid", errno, r ? r->argv[0] : "0", "");
  prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
  /* caps_apply regains the kept permitted set, drops the bounding set, then capset + ambient. */
  if (caps && caps_apply(caps, e) < 0) return -1;
  return 0;
}

/* The child's end of the release channel: 'g' + pid, then 'c' once it is in its cgroups. */
static int go_fd = -1;

/*
 * The parent's 'c' to the init: its cgroups are ready. With cgroups_later it carries the tasks
 * files the init joins itself (JOIN_SELF entries opened after the clone), each with its index.
 */
static int send_cgroups_go(int fd) {
  unsigned char msg[1 + 64] = {'c'};
  int fds[64], nfd = 0;
  for (int i = late_cgroups; i < n_cgroups && nfd < 64; i++) {
    if (cgroups[i].how != JOIN_SELF || cgroups[i].fd < 0) continue;
    msg[1 + nfd] = (unsigned char)i;
    fds[nfd++] = cgroups[i].fd;
  }
  int rc = send_fds(fd, msg, (size_t)(1 + nfd), fds, nfd);
  for (int i = 0; i < nfd; i++) {
    close(fds[i]);
    cgroups[msg[1 + i]].fd = -1; /* the init has its own copy now */
  }
  return rc;
}

/*
 * In the init: the plan's cgroup.procs path of the parent's cgroups[k], an entry it opened after
 * the clone. Those follow the ones opened before (all this copy of cgroups[] has), one per
 * non-cgroup2 OP_CGROUP_PROCS record, in plan order.
 */
static const char *late_procs_path(int k) {
  int j = k - n_cgroups;
  for (uint32_t i = 0; i < plan.n && j >= 0; i++) {
    const struct rec *r = &plan.recs[i];
    if (r->op != OP_CGROUP_PROCS || procs_is_v2(r)) continue;
    if (j-- == 0) return r->argv[0];
  }
  return "";
}

/* With cgroups_later: whether the parent's 'd' (the cgroup directories exist) was read. */
static int dirs_seen = 0;

/*
 * Wait until the container's cgroup directories exist (the parent's 'd', after the runtime's
 * 'D'): a bind of them can be made before the runtime has set the limits and the init joins.
 */
static void wait_cgroup_dirs(void) {
  if (go_fd < 0 || !cgroups_later || dirs_seen) return;
  unsigned char c;
  /* EOF: the parent failed (it reports the error) and kills us. */
  if (read_full(go_fd, &c, 1) < 0 || c != 'd') _exit(1);
  dirs_seen = 1;
}

/*
 * Wait until the parent has placed us in our cgroups (its 'c'), then apply what depends on them:
 * execCPUAffinity.final (joining a cpuset resets the affinity). Called before the cgroup
 * namespace, cgroup mounts that need the join, hooks, the scheduler and READY; a no-op after the
 * first call.
 */
static void wait_cgroups(void) {
  if (go_fd < 0) return;
  wait_cgroup_dirs();
  struct err e = {0};
  /* 'c', then for each tasks file passed along (cgroups_later) the index of its cgroups[] entry. */
  unsigned char msg[1 + 64];
  union { struct cmsghdr h; char buf[CMSG_SPACE(64 * sizeof(int))]; } ctl;
  struct iovec iov = {msg, sizeof msg};
  struct msghdr mh = {0};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = ctl.buf;
  mh.msg_controllen = sizeof ctl.buf;
  ssize_t got;
  do got = recvmsg(go_fd, &mh, MSG_CMSG_CLOEXEC); while (got < 0 && errno == EINTR);
  /* EOF: the parent failed (it reports the error) and kills us. */
  if (got < 1 || msg[0] != 'c') _exit(1);
  struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
  int nfd = cm && cm->cmsg_type == SCM_RIGHTS ? (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int)) : 0;
  int fds[64];
  if (nfd > 0) memcpy(fds, CMSG_DATA(cm), (size_t)nfd * sizeof(int));
  for (int i = 0; i < nfd; i++) {
    if (write(fds[i], "0", 1) != 1) {
      fail(&e, "join cgroup", errno, i + 1 < got ? late_procs_path(msg[i + 1]) : "", "tasks");
      die(&e);
    }
    close(fds[i]);
  }
  close(go_fd);
  go_fd = -1;
  const struct rec *aff = plan_find(&plan, OP_CPU_AFFINITY);
  if (aff && aff->argc >= 2) CHECK(set_affinity(aff->argv[1], "final", &e));
}

/* A mount that shows the cgroup hierarchy as seen from the process's own cgroup (namespace). */
static int is_cgroup_mount(const struct rec *r) {
  return r->argc > 2 && (strcmp(r->argv[2], "cgroup") == 0 || strcmp(r->argv[2], "cgroup2") == 0);
}

static void child(int fd, int clone_flags) {
  struct err e = {0};
  unsigned char go[5];
  go_fd = fd;
  /* Wait until the parent has set our id maps and rlimits; it sends 'g' and our pid in its pid
   * namespace. If it failed instead, it reports the error and kills us. */
  if (read_full(go_fd, go, sizeof go) < 0 || go[0] != 'g') _exit(1);
  host_pid = (pid_t)((uint32_t)go[1] | ((uint32_t)go[2] << 8) | ((uint32_t)go[3] << 16) | ((uint32_t)go[4] << 24));
  prctl(PR_SET_NAME, "shoal:[init]", 0, 0, 0);
  if (clone_cgroup_fd >= 0) close(clone_cgroup_fd);
  CHECK(join_cgroups_self(&e));
  if (setsid() < 0) { fail(&e, "setsid", errno, "", ""); die(&e); }
  const struct rec *sj = plan_find(&plan, OP_STATE_JSON);
  if (sj && sj->argc >= 1) {
    state_json = strdup(sj->argv[0]);
    state_len = state_json ? strlen(state_json) : 0;
  }
  int userns = (clone_flags & CLONE_NEWUSER) != 0;
  if (userns) {
    if (setresgid(0, 0, 0) < 0) { fail(&e, "setgid 0 in user namespace", errno, "", ""); die(&e); }
    if (setresuid(0, 0, 0) < 0) { fail(&e, "setuid 0 in user namespace", errno, "", ""); die(&e); }
  }
  const struct rec *jc = plan_find(&plan, OP_JOIN_CGROUPNS);
  /* A cgroup namespace is rooted at the cgroup we are in when it is made. */
  if (jc || plan_find(&plan, OP_UNSHARE_CGROUPNS)) wait_cgroups();
  if (jc) {
    if (setns(cgroupns_fd, CLONE_NEWCGROUP) < 0) { fail(&e, "join cgroup namespace", errno, jc->argv[0], ""); die(&e); }
    close(cgroupns_fd);
    cgroupns_fd = -1;
  }
  if (plan_find(&plan, OP_UNSHARE_CGROUPNS) && unshare(CLONE_NEWCGROUP) < 0) {
    fail(&e, "unshare cgroup namespace", errno, "", "");
    die(&e);
  }
  /* A joined user namespace (by path) also means no mknod. */
  for (uint32_t i = 0; i < plan.n; i++)
    if (plan.recs[i].op == OP_JOIN_NS && strcmp(plan.recs[i].argv[0], "user") == 0) userns = 1;

  const struct rec *rr = plan_find(&plan, OP_ROOTFS);
  const char *rootfs = rr ? rr->argv[0] : NULL;
  int preserve = 0;
  const struct rec *user = NULL, *caps = NULL, *args = NULL, *envr = NULL, *cwd = NULL, *umaskr = NULL;
  const struct rec *ioprio = NULL, *sched = NULL, *apparmor = NULL, *selinux = NULL, *listener = NULL;
  int nnp = 0, seccomp = 0;

  if (rootfs) CHECK(mounts_prepare_root(&plan, &e));
  for (uint32_t i = 0; i < plan.n; i++) {
    const struct rec *r = &plan.recs[i];
    switch (r->op) {
    case OP_SECCOMP_BEGIN: seccomp = 1; break; /* prepared by the parent half */
    case OP_MOUNT:
      if (is_cgroup_mount(r)) wait_cgroups();
      CHECK(mounts_apply(r, rootfs, userns, &e));
      break;
    case OP_AWAIT_CGROUPS: wait_cgroups(); break;
    case OP_AWAIT_CGROUP_DIRS: wait_cgroup_dirs(); break;
    case OP_DEVICE: CHECK(device_create(r, rootfs, userns, &e)); break;
    case OP_SYMLINK: CHECK(symlink_create(r, rootfs, &e)); break;
    case OP_MKDIR: CHECK(mkdir_in_root(r, rootfs, &e)); break;
    /* Hooks see (and their processes join) the container's cgroups. */
    case OP_HOOK_SYNC: wait_cgroups(); CHECK(hook_sync(&e)); break;
    case OP_HOOK: if (strcmp(r->argv[0], "startContainer") != 0) { wait_cgroups(); CHECK(run_hook(r, &e)); } break;
    case OP_PIVOT: {
      CHECK(do_pivot(rootfs, r->argv[0], &e));
      /* A shared rootfsPropagation is applied to the new / (as runc does after pivot_root): the
       * rootfs was bound under a private parent, so it starts private. */
      const struct rec *pr = plan_find(&plan, OP_ROOTFS_PROPAGATION);
      unsigned long prop = pr ? strtoul(pr->argv[0], NULL, 0) : 0;
      if ((prop & MS_SHARED) && mount(NULL, "/", NULL, prop, NULL) < 0) { fail(&e, "rootfs propagation", errno, "/", "after pivot_root"); die(&e); }
      break;
    }
    case OP_DEV_CONSOLE: if (console_sock >= 0) { CHECK(setup_console(console_sock, 1, &e)); console_sock = -1; } break;
    case OP_READONLY_ROOT: CHECK(readonly_root(&e)); break;
    case OP_MASK: CHECK(mask_path(r->argv[0], &e)); break;
    case OP_READONLY_PATH: CHECK(readonly_path(r->argv[0], &e)); break;
    case OP_SYSCTL: {
      char p[PATH_MAX];
      int n = snprintf(p, sizeof p, "/proc/sys/");
      for (const char *k = r->argv[0]; *k && n < (int)sizeof p - 1; k++) p[n++] = *k == '.' ? '/' : *k;
      p[n] = 0;
      if (write_file(p, r->argv[1], strlen(r->argv[1])) < 0) { fail(&e, "sysctl", errno, p, r->argv[1]); die(&e); }
      break;
    }
    case OP_HOSTNAME:
      if (sethostname(r->argv[0], strlen(r->argv[0])) < 0) { fail(&e, "sethostname", errno, r->argv[0], ""); die(&e); }
      break;
    case OP_DOMAINNAME:
      if (setdomainname(r->argv[0], strlen(r->argv[0])) < 0) { fail(&e, "setdomainname", errno, r->argv[0], ""); die(&e); }
      break;
    case OP_PERSONALITY:
      if (personality(strtoul(r->argv[0], NULL, 0)) < 0) { fail(&e, "personality", errno, r->argv[0], ""); die(&e); }
      break;
    case OP_PRESERVE_FDS: preserve = atoi(r->argv[0]); break;
    case OP_USER: user = r; break;
    case OP_CAPS: caps = r; break;
    case OP_NO_NEW_PRIVS: nnp = 1; break;
    case OP_ARGS: args = r; break;
    case OP_ENV: envr = r; break;
    case OP_CWD: cwd = r; break;
    case OP_UMASK: umaskr = r; break;
    case OP_IOPRIO: ioprio = r; break;
    case OP_SCHEDULER: sched = r; break;
    case OP_APPARMOR: apparmor = r; break;
    case OP_SELINUX_LABEL: selinux = r; break;
    case OP_SECCOMP_LISTENER: listener = r; break;
    }
  }
  const char *metadata = listener && listener->argc > 1 ? listener->argv[1] : "";
  /* exec: a pty from the container's devpts, no /dev/console. */
  if (console_sock >= 0) CHECK(setup_console(console_sock, 0, &e));

  char **envp = envr ? envr->argv : (char *[]){NULL};
  char exe[PATH_MAX];
  CHECK(resolve_exec(args ? args->argv : NULL, envp, exe, sizeof exe, &e));
  /* From here on the process must be in its cgroups (an RT scheduler class is checked against
   * its cpu cgroup; READY tells the runtime the container is fully created). */
  wait_cgroups();
  /* Process attributes that may need privileges the process will not keep (RT classes). */
  if (ioprio) CHECK(apply_ioprio(ioprio, &e));
  if (sched) CHECK(apply_scheduler(sched, &e));
  /* LSM labels take effect at execve; written through the container's /proc as runc does. */
  if (apparmor && apparmor->argc > 0 && apparmor->argv[0][0]) {
    char v[512];
    snprintf(v, sizeof v, "exec %s", apparmor->argv[0]);
    CHECK(lsm_exec_attr("/proc/thread-self/attr/apparmor/exec", "/proc/thread-self/attr/exec", v, "apparmor profile", &e));
  }
  if (selinux && selinux->argc > 0 && selinux->argv[0][0])
    CHECK(lsm_exec_attr(NULL, "/proc/thread-self/attr/exec", selinux->argv[0], "selinux label", &e));
  /* Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load it while we still have it. */
  if (seccomp && !nnp) {
    CHECK(seccomp_load_prepared(&e));
    CHECK(send_seccomp_listener(metadata, &e));
  }
  CHECK(set_user(user, caps, &e));
  if (cwd && chdir(cwd->argv[0]) < 0) { fail(&e, "chdir", errno, cwd->argv[0], "cwd"); die(&e); }
  umask(umaskr ? (mode_t)strtoul(umaskr->argv[0], NULL, 8) : 022);

  /* Everything that can fail at create has been done: tell the runtime, then wait for start
   * (exec.fifo, or 'G'; a foreground run without a terminal goes on at once). */
  send_line("READY\n");
  if (plan_find(&plan, OP_START_SYNC)) {
    /* A foreground run with a terminal or a pid file: the runtime attaches to the pty or writes
     * the pid file, then lets it go ('G'); EOF means the runtime died, and the process must not
     * run. */
    char go;
    if (read_full(sync_fd, &go, 1) < 0 || go != 'G') _exit(1);
  }
  close(sync_fd);
  sync_fd = -1;
  if (fifo_fd >= 0) {
    char p[64];
    snprintf(p, sizeof p, "/proc/self/fd/%d", fifo_fd);
    int w = open(p, O_WRONLY | O_CLOEXEC);
    if (w < 0) { dprintf(2, "shoal-init: open exec fifo: %s\n", strerror(errno)); _exit(1); }
    if (write(w, "0", 1) != 1) _exit(1);
    close(w);
    close(fifo_fd);
  }
  for (uint32_t i = 0; i < plan.n; i++) {
    const struct rec *r = &plan.recs[i];
    if (r->op == OP_HOOK && strcmp(r->argv[0], "startContainer") == 0 && run_hook(r, &e) < 0) {
      dprintf(2, "shoal-init: %s hook %s: %s\n", e.stage, e.path, e.detail);
      _exit(1);
    }
  }
  if (nnp && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) { dprintf(2, "shoal-init: no_new_privs: %s\n", strerror(errno)); _exit(1); }
  if (seccomp && nnp && (seccomp_load_prepared(&e) < 0 || send_seccomp_listener(metadata, &e) < 0)) {
    dprintf(2, "shoal-init: %s: %s %s\n", e.stage, strerror(e.errnum), e.detail);
    _exit(1);
  }
  if (listener_sock >= 0) close(listener_sock);
  for (int fd = 0; fd < 3; fd++) {
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0 && (fl & O_NONBLOCK)) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
  }
  /* Only stdio and the preserved fds reach the process (CVE-2024-21626). */
  cloexec_from(3 + preserve);
  reset_signals();
  execve(exe, args->argv, envp);
  dprintf(2, "shoal-init: exec %s: %s\n", exe, strerror(errno));
  _exit(127);
}

/* A setup failure in the parent half: the init goes with it, reaped here (never left a zombie). */
static void kill_init(pid_t pid) {
  kill(pid, SIGKILL);
  while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
  }
}

int main(int argc, char **argv) {
  struct err e = {0};
  /* Started from the runtime's memfd (/proc/self/fd/N) the kernel names us "N": say what we are
   * (the shim's orphan reaper leaves a helper's zombie to the runtime that watches it). */
  prctl(PR_SET_NAME, "shoal-init", 0, 0, 0);
  if (argc < 2) {
    dprintf(2, "usage: shoal-init <sync-fd> (started by shoal, not by hand)\n");
    return 2;
  }
  sync_fd = atoi(argv[1]);
  int fl = fcntl(sync_fd, F_GETFL);
  if (fl < 0) { dprintf(2, "shoal-init: bad sync fd\n"); return 2; }
  /* First of all: run from a sealed memfd copy (CVE-2019-5736). Returns only on failure or when
   * this already is the copy; the sync fd (no CLOEXEC yet) and stdio survive the fexecve. */
  if (ensure_sealed_self(argv, &e) < 0) die(&e);
  prctl(PR_SET_NAME, "shoal:[parent]", 0, 0, 0);
  fcntl(sync_fd, F_SETFL, fl & ~O_NONBLOCK);
  fcntl(sync_fd, F_SETFD, FD_CLOEXEC);
  /* Die with the runtime while we are still its helper. */
  prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  signal(SIGPIPE, SIG_DFL);
  /* "net": a new network namespace is the slowest one to make (about 1.5 ms here), so it is made
   * now, while the runtime still builds the plan, and the init inherits it. Best effort: the
   * plan decides below, and the clone makes one as usual if this failed. */
  int host_net = -1;
  if (argc > 2 && strcmp(argv[2], "net") == 0) {
    host_net = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    if (host_net >= 0 && unshare(CLONE_NEWNET) < 0) {
      close(host_net);
      host_net = -1;
    }
  }
  if (plan_read(sync_fd, &plan) < 0) { fail(&e, "read plan", errno, "", ""); die(&e); }

  const struct rec *mode = plan_find(&plan, OP_MODE);
  int run_mode = mode && strcmp(mode->argv[0], "run") == 0;
  const struct rec *cf = plan_find(&plan, OP_CLONE_FLAGS);
  int flags = cf ? (int)strtol(cf->argv[0], NULL, 0) : 0;
  if (host_net >= 0) {
    /* Inherited by the init when it wants a new one owned by the host's user namespace; otherwise
     * back to the host's before anything else (a path to join, or the host's own). */
    if ((flags & CLONE_NEWNET) && !(flags & CLONE_NEWUSER)) flags &= ~CLONE_NEWNET;
    else if (setns(host_net, CLONE_NEWNET) < 0) { fail(&e, "setns", errno, "/proc/self/ns/net", "back to the host network namespace"); die(&e); }
    close(host_net);
  }

  /* Host paths first: the fifo and the console socket, before any namespace is joined. */
  const struct rec *fr = plan_find(&plan, OP_EXEC_FIFO);
  if (fr) {
    if (mkfifo(fr->argv[0], 0622) < 0 && errno != EEXIST) { fail(&e, "mkfifo", errno, fr->argv[0], ""); die(&e); }
    /* Past the umask: the init may be an unprivileged host uid (user namespace) and must write it. */
    if (chmod(fr->argv[0], 0622) < 0) { fail(&e, "chmod exec fifo", errno, fr->argv[0], ""); die(&e); }
    fifo_fd = open(fr->argv[0], O_PATH | O_CLOEXEC);
    if (fifo_fd < 0) { fail(&e, "open exec fifo", errno, fr->argv[0], ""); die(&e); }
  }
  const struct rec *cs = plan_find(&plan, OP_CONSOLE_SOCKET);
  if (cs) { console_sock = console_connect(cs->argv[0], &e); CHECK(console_sock); }
  const struct rec *ls = plan_find(&plan, OP_SECCOMP_LISTENER);
  if (ls && ls->argc > 0 && ls->argv[0][0]) { listener_sock = unix_connect(ls->argv[0], "seccomp listener", &e); CHECK(listener_sock); }
  /* execCPUAffinity.initial: this process and so the init run there until they join the cgroup. */
  const struct rec *aff = plan_find(&plan, OP_CPU_AFFINITY);
  if (aff && aff->argc >= 1) CHECK(set_affinity(aff->argv[0], "initial", &e));
  proc_fd = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (proc_fd < 0) { fail(&e, "open /proc", errno, "/proc", ""); die(&e); }
  cgroups_later = plan_find(&plan, OP_CGROUPS_LATER) != NULL;
  CHECK(open_cgroups(&e, cgroups_later ? CGROUPS_V2 : CGROUPS_ALL));
  const struct rec *jcn = plan_find(&plan, OP_JOIN_CGROUPNS);
  if (jcn) {
    cgroupns_fd = open(jcn->argv[0], O_RDONLY | O_CLOEXEC);
    if (cgroupns_fd < 0) { fail(&e, "join cgroup namespace", errno, jcn->argv[0], "open"); die(&e); }
  }
  /* Idmapped mounts are prepared on the host, before joining a user or mount namespace. */
  for (uint32_t i = 0; i < plan.n; i++)
    if (plan.recs[i].op == OP_IDMAP_MOUNT) CHECK(idmap_mount_prepare(&plan.recs[i], &e));
  mounts_set_idmap_fds(idmap_fds, n_idmap_fds);
  /* The seccomp filter is built here, while the host's libseccomp is reachable (exec joins the
   * container's mount namespace next); the init inherits the prepared context. */
  if (seccomp_present(&plan)) CHECK(seccomp_prepare(&plan, &e));
  CHECK(join_namespaces(&e));
  /* A time namespace only applies to children, and its offsets must be set before any process
   * lives in it: unshare here, write the offsets, and let clone put the init inside. */
  if (flags & CLONE_NEWTIME) {
    if (unshare(CLONE_NEWTIME) < 0) { fail(&e, "unshare time namespace", errno, "", ""); die(&e); }
    const struct rec *to = plan_find(&plan, OP_TIME_OFFSETS);
    if (to && write_file("/proc/self/timens_offsets", to->argv[0], strlen(to->argv[0])) < 0) {
      fail(&e, "timens_offsets", errno, "/proc/self/timens_offsets", to->argv[0]);
      die(&e);
    }
    flags &= ~CLONE_NEWTIME;
  }

  int go[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, go) < 0) { fail(&e, "socketpair", errno, "", ""); die(&e); }
  pid_t pid = clone_init(flags);
  if (pid < 0) { fail(&e, "clone", errno, "", "new namespaces"); die(&e); }
  if (pid == 0) {
    close(go[0]);
    child(go[1], flags);
  }
  close(go[1]);
  if (clone_cgroup_fd >= 0) close(clone_cgroup_fd);
  if (setup_child_from_parent(pid, &e) < 0) {
    kill_init(pid);
    die(&e);
  }
  /* Release the child, then join it to its cgroups while it sets up its mounts. */
  unsigned char gob[5] = {'g', (unsigned char)pid, (unsigned char)(pid >> 8), (unsigned char)(pid >> 16), (unsigned char)(pid >> 24)};
  if (write_full(go[0], gob, sizeof gob) < 0) { fail(&e, "release init", errno, "", ""); kill_init(pid); die(&e); }
  if (cgroups_later) {
    /* The runtime's 'D': the cgroup directories exist (the init may bind them: 'd'); then its
     * 'K': they have their limits. */
    char k;
    if (read_full(sync_fd, &k, 1) < 0 || k != 'D') { fail(&e, "wait for cgroups", errno, "", "the runtime did not make them"); kill_init(pid); die(&e); }
    if (write_full(go[0], "d", 1) < 0) { fail(&e, "release init", errno, "", "cgroup directories"); kill_init(pid); die(&e); }
    if (read_full(sync_fd, &k, 1) < 0 || k != 'K') { fail(&e, "wait for cgroups", errno, "", "the runtime did not make them"); kill_init(pid); die(&e); }
    late_cgroups = n_cgroups;
    if (open_cgroups(&e, CGROUPS_REST) < 0) { kill_init(pid); die(&e); }
  }
  if (join_cgroups(pid, &e) < 0) {
    kill_init(pid);
    die(&e);
  }
  char buf[64];
  snprintf(buf, sizeof buf, "PID %d\n", pid);
  send_line(buf);
  if (send_cgroups_go(go[0]) < 0) { fail(&e, "release init", errno, "", "cgroups joined"); kill_init(pid); die(&e); }
  close(go[0]);
  /* The parent's copies: the init has its own (inherited at clone). */
  for (int i = 0; i < n_idmap_fds; i++) close(idmap_fds[i]);
  if (listener_sock >= 0) close(listener_sock);
  if (console_sock >= 0) close(console_sock);
  if (fifo_fd >= 0) close(fifo_fd);
  if (cgroupns_fd >= 0) close(cgroupns_fd);
  if (!run_mode) return 0;
  /*
   * run: stay as the init's parent and pass its exit status on. A foreground run (REPORT_EXIT)
   * also gets it on the sync channel ("EXIT <code>") before this process ends, and this process
   * holds the init's namespaces until then: the last reference to a namespace tears it down (its
   * mounts unmounted, its proc and mqueue instances with an RCU grace period), and that work,
   * done at the init's exit, came before its parent learnt of it. Held here, it happens at this
   * process's exit, while the runtime already removes the container.
   */
  int report = plan_find(&plan, OP_REPORT_EXIT) != NULL;
  if (report) {
    static const char *const kinds[] = {"mnt", "pid", "net", "ipc", "uts", "cgroup"};
    char rel[64];
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
      snprintf(rel, sizeof rel, "%d/ns/%s", pid, kinds[i]);
      openat(proc_fd, rel, O_RDONLY | O_CLOEXEC); /* best effort; closed by exit */
    }
  } else {
    close(sync_fd);
  }
  prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return 255;
  int code = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
  if (report) {
    char line[32];
    int n = snprintf(line, sizeof line, "EXIT %d\n", code);
    send(sync_fd, line, (size_t)n, MSG_NOSIGNAL); /* the runtime may be gone: no SIGPIPE */
  }
  return code;
}
