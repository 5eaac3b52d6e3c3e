/*
 * containerd-shim-shoal-v2: the executable containerd runs for runtime io.containerd.shoal.v2.
 *
 * containerd runs `<shim> -namespace NS -address GRPC -publish-binary P -id ID [-debug] start`
 * for every new container, with cwd = the bundle. When the container's group already has a live
 * shim, the answer is just that shim's socket address, and starting Node (~40 ms) for it would be
 * the slowest part of `ctr run`. So this launcher computes the address in C (the group from
 * config.json's annotations, then sha256 of Join(address, ns, group)), connects, and when a shim
 * answers prints `unix://<path>` and exits; with no shim answering it starts the daemon itself
 * (spawn_daemon, one per group). `delete` is answered in C too when the shim already cleaned up
 * (see delete_already_clean). Everything else (a `delete` with work left, -v) execs Node on the
 * shim's JS entry with the same arguments.
 *
 * Environment: SHOAL_NODE (the node binary), SHOAL_SHIM_ENTRY (the JS entry),
 * Default grouping: group annotation, sandbox id, else the namespace. SHOAL_SHIM_GROUPING=namespace
 * forces one shim per namespace; =container falls back to the container id (runc's behaviour).
 * Hidden subcommand `socket-address`: print the computed address without connecting (tests).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "group.h"

#ifndef SHOAL_NODE_BUILD
#define SHOAL_NODE_BUILD ""
#endif

/* The JS entry relative to the directory of this executable (build/Release): the bundle of
 * shim/src/task/bin.ts with its code cache (scripts/bundle.js). */
static const char ENTRY_REL[] = "/../shim.js";

/* The flags this launcher needs; the rest are only passed on to Node. */
struct args {
  const char *ns, *address, *id, *bundle, *action;
  int version;
};

/* Go's flag package: -name value, --name value, -name=value; the first non-flag ends flags. */
static void parse_args(int argc, char **argv, struct args *a) {
  for (int i = 1; i < argc; i++) {
    const char *s = argv[i];
    if (s[0] != '-' || s[1] == 0) {
      a->action = s;
      return;
    }
    if (strcmp(s, "--") == 0) {
      if (i + 1 < argc) a->action = argv[i + 1];
      return;
    }
    s += (s[1] == '-') ? 2 : 1;
    const char *eq = strchr(s, '=');
    size_t len = eq ? (size_t)(eq - s) : strlen(s);
    const char **slot = NULL;
    if (len == 9 && strncmp(s, "namespace", 9) == 0) slot = &a->ns;
    else if (len == 7 && strncmp(s, "address", 7) == 0) slot = &a->address;
    else if (len == 2 && strncmp(s, "id", 2) == 0) slot = &a->id;
    else if (len == 6 && strncmp(s, "bundle", 6) == 0) slot = &a->bundle;
    else if ((len == 1 && s[0] == 'v') || (len == 7 && strncmp(s, "version", 7) == 0)) a->version = 1;
    else if ((len == 5 && strncmp(s, "debug", 5) == 0)) continue; /* boolean */
    else if (eq == NULL && i + 1 < argc && !(len == 1 && s[0] == 'v')) {
      i++; /* another valued flag (-publish-binary, -socket ...): skip its value */
      continue;
    }
    if (slot) *slot = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : "");
  }
}

/* Reads a whole small file (config.json) into a malloc'd buffer. */
static char *read_file(const char *path, size_t *len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  struct stat st;
  char *buf = NULL;
  if (fstat(fd, &st) == 0 && st.st_size < (64 << 20) && (buf = malloc((size_t)st.st_size + 1))) {
    size_t n = 0;
    ssize_t r;
    while (n < (size_t)st.st_size && (r = read(fd, buf + n, (size_t)st.st_size - n)) != 0) {
      if (r < 0) {
        if (errno == EINTR) continue;
        break;
      }
      n += (size_t)r;
    }
    buf[n] = 0;
    *len = n;
  }
  close(fd);
  return buf;
}

/* The socket address for this start, or -1 when the flags do not allow computing it.
 * *ns_group (if given) tells whether the group is the whole namespace. */
static int compute_address(const struct args *a, char *out, size_t outsz, int *ns_group) {
  const char *ns = a->ns ? a->ns : getenv("NAMESPACE");
  if (!ns || !*ns || !a->address || !a->id || !*a->id) return -1;
  const char *grouping = getenv("SHOAL_SHIM_GROUPING");
  char *group = NULL;
  if (grouping && strcmp(grouping, "namespace") == 0) {
    group = strdup("shoal-namespace");
  } else {
    char cfg[PATH_MAX];
    snprintf(cfg, sizeof cfg, "%s/config.json", a->bundle ? a->bundle : ".");
    size_t len = 0;
    char *json = read_file(cfg, &len);
    if (json) group = spec_group_id(json, len);
    free(json);
  }
  /* Without a group annotation or sandbox id, the namespace is the group (see address.ts);
   * SHOAL_SHIM_GROUPING=container gives runc's one shim per container. */
  const char *fallback = grouping && strcmp(grouping, "container") == 0 ? a->id : "shoal-namespace";
  const char *g = group ? group : fallback;
  if (ns_group) *ns_group = strcmp(g, "shoal-namespace") == 0;
  int rc = socket_path(a->address, ns, g, out, outsz);
  free(group);
  return rc;
}

/* A socket connected to the unix socket at path, or -1 (a stale socket file: ECONNREFUSED). */
static int connect_unix(const char *path) {
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof sa.sun_path) return -1;
  strcpy(sa.sun_path, path);
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -1;
  int rc;
  do rc = connect(s, (struct sockaddr *)&sa, sizeof sa);
  while (rc < 0 && errno == EINTR);
  if (rc == 0) return s;
  close(s);
  return -1;
}

/* Whether something accepts connections on path. */
static int can_connect(const char *path) {
  int s = connect_unix(path);
  if (s >= 0) close(s);
  return s >= 0;
}

/*
 * Whether a shim serves on path: it answers a ttrpc request (Task.Connect with an empty id). A
 * connect alone is not enough: an idle shim that lingers after its last container (see
 * daemon.ts) may be closing, and the kernel queues a connection until the listener closes.
 * A shim that stops listening drops queued connections unanswered (EOF: not alive); a busy one
 * may answer late (no reply within the timeout, connection still open: alive).
 */
static int shim_alive(const char *path) {
  int s = connect_unix(path);
  if (s < 0) return 0;
  int rc;
  static const char SERVICE[] = "containerd.task.v2.Task", METHOD[] = "Connect";
  unsigned char msg[10 + 2 + sizeof SERVICE + 2 + sizeof METHOD + 2];
  size_t n = 10;
  msg[n++] = 0x0a; /* Request.service */
  msg[n++] = sizeof SERVICE - 1;
  memcpy(msg + n, SERVICE, sizeof SERVICE - 1);
  n += sizeof SERVICE - 1;
  msg[n++] = 0x12; /* Request.method */
  msg[n++] = sizeof METHOD - 1;
  memcpy(msg + n, METHOD, sizeof METHOD - 1);
  n += sizeof METHOD - 1;
  msg[n++] = 0x1a; /* Request.payload: an empty ConnectRequest */
  msg[n++] = 0;
  uint32_t len = (uint32_t)(n - 10);
  unsigned char hdr[10] = {len >> 24, len >> 16, len >> 8, len, 0, 0, 0, 1, 1 /* request */, 0};
  memcpy(msg, hdr, sizeof hdr);
  int alive = send(s, msg, n, MSG_NOSIGNAL) == (ssize_t)n;
  if (alive) {
    struct pollfd p = {s, POLLIN, 0};
    do rc = poll(&p, 1, 5000);
    while (rc < 0 && errno == EINTR);
    if (rc > 0) {
      unsigned char got[10];
      ssize_t r;
      do r = recv(s, got, sizeof got, MSG_WAITALL);
      while (r < 0 && errno == EINTR);
      alive = r == (ssize_t)sizeof got && got[8] == 2; /* a response frame */
    }
  }
  close(s);
  return alive;
}

/*
 * The bundle's `address` file (cwd), written atomically as the runc shim's WriteAddress does:
 * containerd reads it to reconnect to the shim after a restart, and `delete` to find its socket.
 */
static int write_address(const char *address) {
  static const char tmp[] = ".address";
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  size_t len = strlen(address), off = 0;
  while (off < len) {
    ssize_t n = write(fd, address + off, len - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      close(fd);
      unlink(tmp);
      return -1;
    }
    off += (size_t)n;
  }
  if (close(fd) < 0 || rename(tmp, "address") < 0) {
    unlink(tmp);
    return -1;
  }
  return 0;
}

/* containerd writes the runtime options to stdin; drain them so its writer never sees EPIPE. */
static void drain_stdin(void) {
  if (isatty(0)) return;
  char buf[4096];
  struct pollfd p = {0, POLLIN, 0};
  while (poll(&p, 1, 200) > 0) {
    ssize_t n = read(0, buf, sizeof buf);
    if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) return;
  }
}

static int executable(const char *p) {
  return access(p, X_OK) == 0;
}

/* Node: $SHOAL_NODE, then PATH, then the node that configured the build, then common places. */
static const char *find_node(char *buf, size_t bufsz) {
  const char *env = getenv("SHOAL_NODE");
  if (env && *env) return env;
  const char *path = getenv("PATH");
  if (path) {
    const char *p = path;
    while (*p) {
      const char *e = strchr(p, ':');
      size_t len = e ? (size_t)(e - p) : strlen(p);
      if (len > 0 && len + 6 < bufsz) {
        memcpy(buf, p, len);
        strcpy(buf + len, "/node");
        if (executable(buf)) return buf;
      }
      if (!e) break;
      p = e + 1;
    }
  }
  static const char *const fallbacks[] = {SHOAL_NODE_BUILD, "/usr/local/bin/node", "/usr/bin/node", "/opt/node/bin/node"};
  for (size_t i = 0; i < sizeof fallbacks / sizeof *fallbacks; i++)
    if (fallbacks[i][0] && executable(fallbacks[i])) return fallbacks[i];
  return NULL;
}

/* The JS entry: $SHOAL_SHIM_ENTRY, else ENTRY_REL next to this executable. */
static int resolve_entry(char *entry, size_t size) {
  const char *e = getenv("SHOAL_SHIM_ENTRY");
  if (e && *e) {
    snprintf(entry, size, "%s", e);
    return 0;
  }
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n < 0) {
    fprintf(stderr, "containerd-shim-shoal-v2: readlink /proc/self/exe: %s\n", strerror(errno));
    return -1;
  }
  self[n] = 0;
  char *slash = strrchr(self, '/');
  if (slash) *slash = 0;
  if (strlen(self) + sizeof ENTRY_REL > size) return -1;
  memcpy(entry, self, strlen(self));
  memcpy(entry + strlen(self), ENTRY_REL, sizeof ENTRY_REL);
  return 0;
}

static const char *node_or_complain(char *buf, size_t size) {
  const char *node = find_node(buf, size);
  if (!node) fprintf(stderr, "containerd-shim-shoal-v2: node not found (set SHOAL_NODE, or put node on PATH)\n");
  return node;
}

static int exec_node(int argc, char **argv) {
  char entry[PATH_MAX], nodebuf[PATH_MAX];
  const char *node = node_or_complain(nodebuf, sizeof nodebuf);
  if (!node || resolve_entry(entry, sizeof entry) < 0) return 1;
  char **nargv = calloc((size_t)argc + 2, sizeof *nargv);
  if (!nargv) return 1;
  nargv[0] = (char *)node;
  nargv[1] = entry;
  for (int i = 1; i < argc; i++) nargv[i + 1] = argv[i];
  execv(node, nargv);
  fprintf(stderr, "containerd-shim-shoal-v2: exec %s: %s\n", node, strerror(errno));
  return 1;
}

/* All of stdin (containerd's runtime options or bootstrap params), unless it is a terminal. */
static unsigned char *read_stdin(size_t *len) {
  *len = 0;
  size_t cap = 4096;
  unsigned char *buf = malloc(cap);
  if (!buf || isatty(0)) return buf;
  for (;;) {
    if (*len == cap && !(buf = realloc(buf, cap *= 2))) return NULL;
    ssize_t n = read(0, buf + *len, cap - *len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return buf;
    *len += (size_t)n;
  }
}

static char *base64(const unsigned char *in, size_t len) {
  static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  char *out = malloc(4 * ((len + 2) / 3) + 1), *o = out;
  if (!out) return NULL;
  for (size_t i = 0; i < len; i += 3) {
    unsigned v = (unsigned)in[i] << 16 | (i + 1 < len ? (unsigned)in[i + 1] << 8 : 0) | (i + 2 < len ? in[i + 2] : 0);
    *o++ = tbl[v >> 18 & 63];
    *o++ = tbl[v >> 12 & 63];
    *o++ = i + 1 < len ? tbl[v >> 6 & 63] : '=';
    *o++ = i + 2 < len ? tbl[v & 63] : '=';
  }
  *o = 0;
  return out;
}

/* The shim log: $SHOAL_SHIM_LOG or the bundle's `log` fifo (containerd reads it), else -1. */
static int open_log(void) {
  const char *p = getenv("SHOAL_SHIM_LOG");
  if (!p || !*p) p = "log";
  struct stat st;
  if (stat(p, &st) < 0) return -1;
  /* O_NONBLOCK: a fifo without a reader fails with ENXIO instead of hanging `start`. */
  return open(p, S_ISFIFO(st.st_mode) ? O_WRONLY | O_NONBLOCK | O_CLOEXEC : O_WRONLY | O_APPEND | O_CLOEXEC);
}

/*
 * The daemon's node flags: $SHOAL_SHIM_NODE_FLAGS, else shim-daemon.flags next to the JS entry's
 * directory (written at build time from shim/src/task/daemon-flags.ts). Space-separated.
 */
static int daemon_flags(const char *entry, char **out, int max) {
  const char *env = getenv("SHOAL_SHIM_NODE_FLAGS");
  char *text = NULL;
  if (env) {
    text = strdup(env);
  } else {
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s", entry);
    char *slash = strrchr(p, '/');
    if (slash) snprintf(slash + 1, sizeof p - (size_t)(slash + 1 - p), "shim-daemon.flags");
    size_t len;
    text = read_file(p, &len);
  }
  int n = 0;
  for (char *save = NULL, *tok = text ? strtok_r(text, " \t\n", &save) : NULL; tok && n < max; tok = strtok_r(NULL, " \t\n", &save)) out[n++] = tok;
  return n;
}

/*
 * `start` with no live shim for the group: spawn the daemon (`node <flags> <entry> <the same
 * flags> -socket <sock> serve`, in its own session, stdio /dev/null and the log, fd 3 a pipe it
 * reports on) and wait for its "ok". 0 when a daemon serves the group; otherwise it says why on
 * stderr and returns non-zero.
 */
static int spawn_daemon(int argc, char **argv, const char *sock, int ns_group) {
  char entry[PATH_MAX], nodebuf[PATH_MAX];
  const char *node = node_or_complain(nodebuf, sizeof nodebuf);
  if (!node || resolve_entry(entry, sizeof entry) < 0) return -1;
  size_t olen;
  unsigned char *opts = read_stdin(&olen);
  char *b64 = opts ? base64(opts, olen) : NULL;
  free(opts);
  if (!b64) {
    fprintf(stderr, "containerd-shim-shoal-v2: read the options on stdin: %s\n", strerror(errno));
    return -1;
  }
  char *nargv[96];
  int k = 0;
  nargv[k++] = (char *)node;
  k += daemon_flags(entry, nargv + k, 32);
  nargv[k++] = entry;
  for (int i = 1; i < argc && k < 90; i++) {
    if (strcmp(argv[i], "start") == 0) break; /* the action ends the flags */
    nargv[k++] = argv[i];
  }
  nargv[k++] = "-socket";
  nargv[k++] = (char *)sock;
  nargv[k++] = "serve";
  nargv[k] = NULL;
  int ready[2];
  if (pipe2(ready, O_CLOEXEC) < 0) {
    fprintf(stderr, "containerd-shim-shoal-v2: pipe: %s\n", strerror(errno));
    return -1;
  }
  int log = open_log();
  pid_t pid = fork();
  if (pid < 0) {
    fprintf(stderr, "containerd-shim-shoal-v2: fork: %s\n", strerror(errno));
    return -1;
  }
  if (pid == 0) {
    setsid();
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    dup2(null, 1);
    dup2(log >= 0 ? log : null, 2);
    dup2(ready[1], 3);
    syscall(SYS_close_range, 4, ~0U, 0);
    if (!getenv("UV_THREADPOOL_SIZE")) setenv("UV_THREADPOOL_SIZE", "2", 1);
    setenv("SHOAL_SHIM_OPTIONS", b64, 1);
    /* Only a namespace's shim lingers when idle: a sandbox's group never comes back. */
    if (ns_group) setenv("SHOAL_SHIM_NAMESPACE_GROUP", "1", 1);
    else unsetenv("SHOAL_SHIM_NAMESPACE_GROUP");
    execv(node, nargv);
    dprintf(2, "containerd-shim-shoal-v2: exec %s: %s\n", node, strerror(errno));
    _exit(127);
  }
  free(b64);
  close(ready[1]);
  if (log >= 0) close(log);
  char report[512];
  size_t got = 0;
  struct pollfd p = {ready[0], POLLIN, 0};
  while (got < sizeof report - 1) {
    int r = poll(&p, 1, 20000);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    ssize_t n = read(ready[0], report + got, sizeof report - 1 - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += (size_t)n;
  }
  close(ready[0]);
  while (got && (report[got - 1] == '\n' || report[got - 1] == ' ')) got--;
  report[got] = 0;
  /* "in use": a concurrent start for the same group won; its shim serves this container too. */
  if (strcmp(report, "ok") == 0 || (strcmp(report, "in use") == 0 && shim_alive(sock))) return 0;
  fprintf(stderr, "containerd-shim-shoal-v2: shim daemon did not start: %s\n", got ? report : "exited");
  return 1;
}

/* Appends a protobuf varint. */
static size_t put_varint(unsigned char *o, unsigned long long v) {
  size_t n = 0;
  do {
    o[n++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
    v >>= 7;
  } while (v);
  return n;
}

/* Whether path is the root of a mount (the rootfs containerd's mounts were put on). */
static int is_mount_root(const char *path) {
  struct statx sx;
  if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &sx) < 0) return errno == ENOENT ? 0 : -1;
  if (!(sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT)) return -1;
  return (sx.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0;
}

/*
 * The start lock of a group's socket (`<socket>.lock`), held (flock) by whoever starts that
 * group's daemon or removes its dead socket, so that a `delete` after a killed shim never removes
 * the socket of the daemon a concurrent `start` has just brought up. The file may be unlinked
 * (by a holder, or by the daemon at its exit, under the lock): a locker whose file is no longer
 * the one at the path locks again. The fd (close releases the lock), or -1.
 */
static int lock_group(const char *sock) {
  char lp[PATH_MAX];
  if ((size_t)snprintf(lp, sizeof lp, "%s.lock", sock) >= sizeof lp) return -1;
  for (;;) {
    int fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return -1;
    while (flock(fd, LOCK_EX) < 0 && errno == EINTR) {}
    struct stat held, now;
    if (fstat(fd, &held) == 0 && stat(lp, &now) == 0 && held.st_ino == now.st_ino && held.st_dev == now.st_dev) return fd;
    close(fd);
  }
}

/*
 * Removes the socket of a group whose daemon is gone (nothing accepts on it), and its start lock,
 * under that lock. 1 when no dead socket is left (removed, or a live daemon serves there).
 */
static int remove_dead_socket(const char *sock) {
  int fd = lock_group(sock);
  if (fd < 0) return 0;
  int ok = 1;
  if (!can_connect(sock)) {
    char lp[PATH_MAX];
    snprintf(lp, sizeof lp, "%s.lock", sock);
    ok = unlink(sock) == 0 || errno == ENOENT;
    unlink(lp);
  }
  close(fd);
  return ok;
}

/* The dead socket of the shim a bundle's `address` names, removed (remove_dead_socket); 1 when none is left. */
static int clear_dead_socket(const char *bundle) {
  char p[PATH_MAX];
  snprintf(p, sizeof p, "%s/address", bundle);
  size_t len = 0;
  char *addr = read_file(p, &len);
  if (!addr) return 1;
  while (len && (addr[len - 1] == '\n' || addr[len - 1] == ' ')) addr[--len] = 0;
  const char *sock = strncmp(addr, "unix://", 7) == 0 ? addr + 7 : addr;
  int ok = sock[0] == '/' && remove_dead_socket(sock);
  free(addr);
  return ok;
}

/*
 * `delete` when there is nothing left to clean. containerd 1.6 runs `<shim> delete` whenever a
 * task's ttrpc connection closes, after every normal Delete too, and starting Node for it was
 * most of a warm `ctr run --rm`. If the shim already cleaned up (no init.pid or state-root file
 * in the bundle, no runtime state directory, the rootfs not a mount), print the DeleteResponse
 * the full cleanup would (no pid, 128+SIGKILL, now) and return 1; return 0 to leave everything
 * else to Node's cleanup.
 */
static int delete_already_clean(const struct args *a) {
  const char *ns = a->ns ? a->ns : getenv("NAMESPACE");
  if (!ns || !*ns || strchr(ns, '/') || !a->id || !*a->id || strchr(a->id, '/')) return 0;
  const char *b = a->bundle && *a->bundle ? a->bundle : ".";
  const char *base = getenv("SHOAL_SHIM_STATE_ROOT");
  if (!base || !*base) base = "/run/containerd/shoal";
  char p[PATH_MAX];
  struct stat st;
  static const char *const leftovers[] = {"init.pid", "shoal-state-root"};
  for (size_t i = 0; i < 2; i++) {
    snprintf(p, sizeof p, "%s/%s", b, leftovers[i]);
    if (lstat(p, &st) == 0) return 0;
  }
  if ((size_t)snprintf(p, sizeof p, "%s/%s/%s", base, ns, a->id) >= sizeof p || lstat(p, &st) == 0) return 0;
  snprintf(p, sizeof p, "%s/rootfs", b);
  if (is_mount_root(p) != 0) return 0;
  /* DeleteResponse{exit_status 2: 137, exited_at 3: Timestamp{seconds 1, nanos 2}}. */
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  unsigned char ts[32], out[48];
  size_t t = 0, o = 0;
  ts[t++] = 0x08;
  t += put_varint(ts + t, (unsigned long long)now.tv_sec);
  ts[t++] = 0x10;
  t += put_varint(ts + t, (unsigned long long)(now.tv_nsec / 1000000) * 1000000ULL);
  out[o++] = 0x10;
  o += put_varint(out + o, 128 + 9);
  out[o++] = 0x1a;
  out[o++] = (unsigned char)t;
  memcpy(out + o, ts, t);
  o += t;
  return fwrite(out, 1, o, stdout) == o && fflush(stdout) == 0 ? 1 : 0;
}

/* With SHOAL_TRACE=/abs/file, a line "pid CLOCK_MONOTONIC-ms launcher: what" (runtime/trace.ts). */
static void trace(const char *what) {
  const char *dest = getenv("SHOAL_TRACE");
  if (!dest || dest[0] != '/') return;
  int fd = open(dest, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return;
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  dprintf(fd, "%d %.2f launcher: %s\n", (int)getpid(), (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6, what);
  close(fd);
}

int main(int argc, char **argv) {
  struct args a = {0};
  parse_args(argc, argv, &a);
  trace(a.action ? a.action : "-");
  if (!a.version && a.action && strcmp(a.action, "socket-address") == 0) {
    char path[256];
    if (compute_address(&a, path, sizeof path, NULL) < 0) {
      fprintf(stderr, "containerd-shim-shoal-v2: need -namespace, -address and -id\n");
      return 1;
    }
    printf("unix://%s\n", path);
    return 0;
  }
  if (!a.version && a.action && strcmp(a.action, "start") == 0) {
    char path[256];
    int ns_group = 0;
    if (compute_address(&a, path, sizeof path, &ns_group) < 0) {
      fprintf(stderr, "containerd-shim-shoal-v2: start needs -namespace (or $NAMESPACE), -address and -id\n");
      return 1;
    }
    if (!shim_alive(path)) {
      /* One daemon per group: concurrent starts (a burst of `ctr run`) queue on a lock next to
       * the socket, and all but the first find the daemon the first one started. Closing the fd
       * releases the lock; the daemon removes the file (under the lock) when it exits. */
      mkdir("/run/containerd", 0711);
      mkdir("/run/containerd/s", 0700);
      int lock = lock_group(path);
      int rc = lock >= 0 && shim_alive(path) ? 0 : (trace("spawn daemon"), spawn_daemon(argc, argv, path, ns_group));
      if (lock >= 0) close(lock);
      if (rc != 0) return 1;
    }
    char address[sizeof path + 8];
    snprintf(address, sizeof address, "unix://%s", path);
    drain_stdin();
    if (write_address(address) < 0) {
      fprintf(stderr, "containerd-shim-shoal-v2: write address file: %s\n", strerror(errno));
      return 1;
    }
    /* No newline: containerd trims the output, and runc's shim prints none either. */
    fputs(address, stdout);
    return fflush(stdout) == 0 ? 0 : 1;
  }

  /* A dead shim's socket goes here, under its start lock, before anything else (not in Node's
   * cleanup); a live group shim keeps it (the last container's Shutdown ends the daemon). */
  if (!a.version && a.action && strcmp(a.action, "delete") == 0 && clear_dead_socket(a.bundle && *a.bundle ? a.bundle : ".") && delete_already_clean(&a)) return 0;
  trace("exec node");
  return exec_node(argc, argv);
}
