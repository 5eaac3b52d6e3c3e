/*
 * shoal-probe: a static, single-file program the conformance suite runs INSIDE a container.
 * It prints ONE JSON object on stdout describing what the container looks like from inside
 * (mounts, namespaces, credentials, capabilities, limits, devices, fds ...), so the runner can
 * compare it with the config.json it wrote. It never changes anything unless an option asks it
 * to (--mkdir, --write-file); --check-* only open() and close().
 *
 * Usage (inside a container):
 *   probe [--read FILE]... [--stat PATH]... [--readlink PATH]... [--ls DIR]...
 *         [--check-read PATH]... [--check-write PATH]... [--mkdir PATH]... [--write-file PATH]...
 *         [--ns-of PATH]... [--dev-dir DIR] [--out FILE] [--sleep SECONDS] [--exit CODE]
 * Host-side helper mode (the console-socket receiver, see recv_console()):
 *   probe --recv-console SOCKET_PATH
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

extern char **environ;

/* ---- minimal JSON writer on stdout (or --out file) ---- */

static FILE *out;
static int need_comma;

static void jraw(const char *s) { fputs(s, out); }

static void jstr(const char *s) {
  if (!s) { jraw("null"); return; }
  fputc('"', out);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    switch (*p) {
    case '"': jraw("\\\""); break;
    case '\\': jraw("\\\\"); break;
    case '\n': jraw("\\n"); break;
    case '\r': jraw("\\r"); break;
    case '\t': jraw("\\t"); break;
    default:
      /* Bytes >= 0x80 pass through: argv/env are normally UTF-8 and the runner compares them. */
      if (*p < 0x20 || *p == 0x7f) fprintf(out, "\\u%04x", *p);
      else fputc(*p, out);
    }
  }
  fputc('"', out);
}

static void sep(void) { if (need_comma) fputc(',', out); need_comma = 1; }
static void jkey(const char *k) { sep(); jstr(k); fputc(':', out); need_comma = 0; }
static void jobj_open(void) { sep(); fputc('{', out); need_comma = 0; }
static void jobj_close(void) { fputc('}', out); need_comma = 1; }
static void jarr_open(void) { sep(); fputc('[', out); need_comma = 0; }
static void jarr_close(void) { fputc(']', out); need_comma = 1; }
static void jval_str(const char *s) { sep(); jstr(s); }
static void jval_num(long long v) { sep(); fprintf(out, "%lld", v); }
static void jval_bool(int b) { sep(); jraw(b ? "true" : "false"); }
static void kv_str(const char *k, const char *v) { jkey(k); jval_str(v); }
static void kv_num(const char *k, long long v) { jkey(k); jval_num(v); }
static void kv_bool(const char *k, int b) { jkey(k); jval_bool(b); }

/* Reads a whole (small) file; returns malloc'd NUL-terminated text or NULL with errno set. */
static char *slurp(const char *path, size_t *lenp) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap + 1);
  for (;;) {
    if (len == cap) { cap *= 2; buf = realloc(buf, cap + 1); }
    ssize_t n = read(fd, buf + len, cap - len);
    if (n < 0) { int e = errno; free(buf); close(fd); errno = e; return NULL; }
    if (n == 0) break;
    len += (size_t)n;
    if (len > (1 << 20)) break;
  }
  close(fd);
  buf[len] = 0;
  if (lenp) *lenp = len;
  return buf;
}

static void chomp(char *s) {
  size_t n = strlen(s);
  while (n && (s[n - 1] == '\n' || s[n - 1] == '\r')) s[--n] = 0;
}

/* ---- sections ---- */

static void emit_ids(void) {
  kv_num("pid", getpid());
  kv_num("ppid", getppid());
  kv_num("uid", getuid());
  kv_num("gid", getgid());
  kv_num("euid", geteuid());
  kv_num("egid", getegid());
  gid_t groups[256];
  int n = getgroups(256, groups);
  jkey("groups"); jarr_open();
  for (int i = 0; i < n; i++) jval_num(groups[i]);
  jarr_close();
  mode_t m = umask(0);
  umask(m);
  kv_num("umask", m);
  char cwd[4096];
  kv_str("cwd", getcwd(cwd, sizeof cwd) ? cwd : NULL);
  jkey("env"); jarr_open();
  for (char **e = environ; e && *e; e++) jval_str(*e);
  jarr_close();
}

static void emit_uts(void) {
  struct utsname u;
  if (uname(&u) == 0) {
    kv_str("hostname", u.nodename);
    kv_str("domainname", u.domainname);
  }
}

static const char *ns_names[] = {"cgroup", "ipc", "mnt", "net", "pid", "pid_for_children",
                                 "time", "time_for_children", "user", "uts", NULL};

static void emit_namespaces(void) {
  jkey("namespaces"); jobj_open();
  for (int i = 0; ns_names[i]; i++) {
    char p[64];
    struct stat st;
    snprintf(p, sizeof p, "/proc/self/ns/%s", ns_names[i]);
    if (stat(p, &st) == 0) kv_num(ns_names[i], (long long)st.st_ino);
  }
  jobj_close();
}

/* Copies selected "Key:\tvalue" lines of /proc/self/status into the output. */
static void emit_status(void) {
  static const char *keys[] = {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs",
                               "Seccomp", "Seccomp_filters", "Uid", "Gid", "Groups", NULL};
  char *s = slurp("/proc/self/status", NULL);
  jkey("status"); jobj_open();
  for (char *line = s ? strtok(s, "\n") : NULL; line; line = strtok(NULL, "\n")) {
    char *colon = strchr(line, ':');
    if (!colon) continue;
    *colon = 0;
    for (int i = 0; keys[i]; i++) {
      if (strcmp(line, keys[i]) == 0) {
        char *v = colon + 1;
        while (*v == '\t' || *v == ' ') v++;
        kv_str(line, v);
      }
    }
  }
  jobj_close();
  free(s);
}

static void emit_rlimits(void) {
  static const struct { const char *name; int res; } lim[] = {
      {"RLIMIT_CPU", RLIMIT_CPU},         {"RLIMIT_FSIZE", RLIMIT_FSIZE},
      {"RLIMIT_DATA", RLIMIT_DATA},       {"RLIMIT_STACK", RLIMIT_STACK},
      {"RLIMIT_CORE", RLIMIT_CORE},       {"RLIMIT_RSS", RLIMIT_RSS},
      {"RLIMIT_NPROC", RLIMIT_NPROC},     {"RLIMIT_NOFILE", RLIMIT_NOFILE},
      {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK}, {"RLIMIT_AS", RLIMIT_AS},
      {"RLIMIT_LOCKS", RLIMIT_LOCKS},     {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
      {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE}, {"RLIMIT_NICE", RLIMIT_NICE},
      {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},   {"RLIMIT_RTTIME", RLIMIT_RTTIME},
  };
  jkey("rlimits"); jobj_open();
  for (size_t i = 0; i < sizeof lim / sizeof lim[0]; i++) {
    struct rlimit r;
    if (getrlimit(lim[i].res, &r) != 0) continue;
    /* RLIM_INFINITY does not fit a JSON double exactly: report it as -1. */
    jkey(lim[i].name); jarr_open();
    jval_num(r.rlim_cur == RLIM_INFINITY ? -1 : (long long)r.rlim_cur);
    jval_num(r.rlim_max == RLIM_INFINITY ? -1 : (long long)r.rlim_max);
    jarr_close();
  }
  jobj_close();
}

/* Unescapes the octal escapes (\040 etc.) mountinfo uses in paths, in place. */
static void unoctal(char *s) {
  char *w = s;
  for (char *r = s; *r;) {
    if (r[0] == '\\' && r[1] >= '0' && r[1] <= '7' && r[2] && r[3]) {
      *w++ = (char)(((r[1] - '0') << 6) | ((r[2] - '0') << 3) | (r[3] - '0'));
      r += 4;
    } else {
      *w++ = *r++;
    }
  }
  *w = 0;
}

static void emit_mounts(void) {
  char *s = slurp("/proc/self/mountinfo", NULL);
  jkey("mounts"); jarr_open();
  char *save = NULL;
  for (char *line = s ? strtok_r(s, "\n", &save) : NULL; line; line = strtok_r(NULL, "\n", &save)) {
    /* id parent maj:min root mountpoint options [optional fields...] - fstype source superopts */
    char *f[64];
    int nf = 0;
    char *save2 = NULL;
    for (char *t = strtok_r(line, " ", &save2); t && nf < 64; t = strtok_r(NULL, " ", &save2)) f[nf++] = t;
    if (nf < 7) continue;
    int dash = -1;
    for (int i = 6; i < nf; i++) if (strcmp(f[i], "-") == 0) { dash = i; break; }
    if (dash < 0 || dash + 3 > nf) continue;
    unoctal(f[3]);
    unoctal(f[4]);
    const char *prop = "private";
    char peer[64] = "";
    for (int i = 6; i < dash; i++) {
      if (strncmp(f[i], "shared:", 7) == 0) prop = "shared";
      else if (strncmp(f[i], "master:", 7) == 0 && strcmp(prop, "shared") != 0) prop = "slave";
      else if (strcmp(f[i], "unbindable") == 0) prop = "unbindable";
      if (peer[0]) strncat(peer, " ", sizeof peer - strlen(peer) - 1);
      strncat(peer, f[i], sizeof peer - strlen(peer) - 1);
    }
    jobj_open();
    kv_num("id", atoll(f[0]));
    kv_num("parent", atoll(f[1]));
    kv_str("root", f[3]);
    kv_str("destination", f[4]);
    kv_str("options", f[5]);
    kv_str("propagation", prop);
    kv_str("optional", peer);
    kv_str("fstype", f[dash + 1]);
    kv_str("source", f[dash + 2]);
    kv_str("superOptions", dash + 3 < nf ? f[dash + 3] : "");
    jobj_close();
  }
  jarr_close();
  free(s);
}

static void emit_file_lines(const char *key, const char *path) {
  char *s = slurp(path, NULL);
  jkey(key);
  if (!s) { jraw("null"); need_comma = 1; return; }
  jarr_open();
  for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n")) jval_str(line);
  jarr_close();
  free(s);
}

static void emit_file_value(const char *key, const char *path) {
  char *s = slurp(path, NULL);
  if (s) chomp(s);
  kv_str(key, s);
  free(s);
}

static void stat_fields(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0) { kv_num("errno", errno); return; }
  const char *type = S_ISCHR(st.st_mode) ? "c" : S_ISBLK(st.st_mode) ? "b" : S_ISDIR(st.st_mode) ? "d"
                   : S_ISLNK(st.st_mode) ? "l" : S_ISFIFO(st.st_mode) ? "p" : S_ISSOCK(st.st_mode) ? "s" : "f";
  kv_str("type", type);
  kv_num("mode", st.st_mode & 07777);
  kv_num("uid", st.st_uid);
  kv_num("gid", st.st_gid);
  kv_num("size", (long long)st.st_size);
  kv_num("ino", (long long)st.st_ino);
  if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
    kv_num("major", major(st.st_rdev));
    kv_num("minor", minor(st.st_rdev));
  }
  if (S_ISLNK(st.st_mode)) {
    char buf[4096];
    ssize_t n = readlink(path, buf, sizeof buf - 1);
    if (n >= 0) { buf[n] = 0; kv_str("target", buf); }
  }
}

/* Every entry of a directory (not recursive), lstat'ed: used for /dev. */
static void emit_dir_stats(const char *key, const char *dir) {
  jkey(key); jobj_open();
  DIR *d = opendir(dir);
  struct dirent *de;
  while (d && (de = readdir(d))) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
    jkey(de->d_name); jobj_open(); stat_fields(p); jobj_close();
  }
  if (d) closedir(d);
  jobj_close();
}

static void emit_fds(void) {
  /* Open the directory first so its own fd can be left out of the list. */
  int dfd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
  jkey("fds"); jobj_open();
  struct dirent *de;
  while (d && (de = readdir(d))) {
    if (de->d_name[0] == '.') continue;
    int fd = atoi(de->d_name);
    if (fd == dfd) continue;
    if (out != stdout && fd == fileno(out)) continue;
    char buf[4096];
    ssize_t n = readlinkat(dfd, de->d_name, buf, sizeof buf - 1);
    buf[n < 0 ? 0 : n] = 0;
    kv_str(de->d_name, buf);
  }
  if (d) closedir(d);
  jobj_close();
  jkey("tty"); jobj_open();
  for (int i = 0; i < 3; i++) {
    char k[8];
    snprintf(k, sizeof k, "%d", i);
    kv_bool(k, isatty(i));
  }
  jobj_close();
  struct winsize ws;
  if (ioctl(0, TIOCGWINSZ, &ws) == 0) {
    jkey("winsize"); jarr_open(); jval_num(ws.ws_row); jval_num(ws.ws_col); jarr_close();
  }
  char tn[256];
  if (ttyname_r(0, tn, sizeof tn) == 0) kv_str("ttyname", tn);
}

static void emit_sched(void) {
  int pol = sched_getscheduler(0);
  struct sched_param sp;
  kv_num("schedPolicy", pol);
  kv_num("schedPriority", sched_getparam(0, &sp) == 0 ? sp.sched_priority : -1);
  /* ioprio_get(IOPRIO_WHO_PROCESS, 0): class in bits 13+, level in the low bits. */
  long io = syscall(SYS_ioprio_get, 1, 0);
  kv_num("ioprioClass", io < 0 ? -1 : (io >> 13));
  kv_num("ioprioLevel", io < 0 ? -1 : (io & 0x1fff));
  errno = 0;
  kv_num("nice", getpriority(PRIO_PROCESS, 0));
  kv_num("personality", syscall(SYS_personality, 0xffffffffUL));
  cpu_set_t set;
  CPU_ZERO(&set);
  jkey("cpuAffinity"); jarr_open();
  if (sched_getaffinity(0, sizeof set, &set) == 0)
    for (int i = 0; i < CPU_SETSIZE; i++) if (CPU_ISSET(i, &set)) jval_num(i);
  jarr_close();
}

/* ---- per-argument checks ---- */

static void check_open(const char *op, const char *path, int flags) {
  jobj_open();
  kv_str("op", op);
  kv_str("path", path);
  int fd = open(path, flags | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  int e = errno;
  kv_bool("ok", fd >= 0);
  kv_num("errno", fd >= 0 ? 0 : e);
  if (fd >= 0) {
    if ((flags & O_ACCMODE) == O_RDONLY) {
      char buf[256];
      ssize_t n = read(fd, buf, sizeof buf - 1);
      kv_num("readErrno", n < 0 ? errno : 0);
      kv_num("readBytes", n < 0 ? 0 : n);
    }
    close(fd);
  }
  jobj_close();
}

static void check_simple(const char *op, const char *path) {
  jobj_open();
  kv_str("op", op);
  kv_str("path", path);
  if (strcmp(op, "stat") == 0) {
    stat_fields(path);
  } else if (strcmp(op, "readlink") == 0) {
    char buf[4096];
    ssize_t n = readlink(path, buf, sizeof buf - 1);
    if (n >= 0) { buf[n] = 0; kv_str("target", buf); } else kv_num("errno", errno);
  } else if (strcmp(op, "read") == 0) {
    size_t len = 0;
    char *s = slurp(path, &len);
    if (s) kv_str("content", s); else kv_num("errno", errno);
    free(s);
  } else if (strcmp(op, "ls") == 0) {
    DIR *d = opendir(path);
    if (!d) kv_num("errno", errno);
    else {
      jkey("entries"); jarr_open();
      struct dirent *de;
      while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) jval_str(de->d_name);
      jarr_close();
      closedir(d);
    }
  } else if (strcmp(op, "mkdir") == 0) {
    int r = mkdir(path, 0755);
    kv_bool("ok", r == 0);
    kv_num("errno", r == 0 ? 0 : errno);
    if (r == 0) rmdir(path);
  } else if (strcmp(op, "write-file") == 0) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int e = errno;
    if (fd >= 0) { if (write(fd, "probe\n", 6) != 6) e = errno; close(fd); }
    kv_bool("ok", fd >= 0);
    kv_num("errno", fd >= 0 ? 0 : e);
  } else if (strcmp(op, "ns-of") == 0) {
    struct stat st;
    if (stat(path, &st) == 0) kv_num("ino", (long long)st.st_ino); else kv_num("errno", errno);
  }
  jobj_close();
}

/* ---- host-side console-socket receiver ----
 * Listens on a unix socket, accepts ONE connection, receives one message whose data is the pty
 * name and whose SCM_RIGHTS carries the pty master. Prints "console-name: NAME" on stderr, then
 * copies everything the container writes to its terminal to stdout until the slave side is gone.
 */
static int recv_console(const char *sock_path) {
  int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (ls < 0 || strlen(sock_path) >= sizeof sa.sun_path) { perror("socket"); return 2; }
  strcpy(sa.sun_path, sock_path);
  unlink(sock_path);
  if (bind(ls, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(ls, 1) < 0) { perror("bind"); return 2; }
  fprintf(stderr, "console-listening\n");
  int c = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
  if (c < 0) { perror("accept"); return 2; }
  char name[4096] = "";
  char cbuf[CMSG_SPACE(sizeof(int) * 4)];
  struct iovec iov = {.iov_base = name, .iov_len = sizeof name - 1};
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
  ssize_t n = recvmsg(c, &mh, MSG_CMSG_CLOEXEC);
  if (n < 0) { perror("recvmsg"); return 2; }
  name[n] = 0;
  int master = -1;
  for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
    if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) memcpy(&master, CMSG_DATA(cm), sizeof(int));
  close(c);
  close(ls);
  unlink(sock_path);
  struct stat st;
  int is_tty = master >= 0 && isatty(master);
  fprintf(stderr, "console-name: %s\nconsole-fd: %d\nconsole-isatty: %d\n", name, master, is_tty);
  if (master >= 0 && fstat(master, &st) == 0)
    fprintf(stderr, "console-rdev: %u:%u\n", major(st.st_rdev), minor(st.st_rdev));
  fflush(stderr);
  if (master < 0) return 3;
  char buf[4096];
  for (;;) {
    ssize_t r = read(master, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break; /* EIO once the last slave fd is closed */
    if (write(1, buf, (size_t)r) < 0) break;
  }
  return 0;
}

/* ---- main ---- */

struct check { const char *op; const char *path; };

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "--recv-console") == 0) return recv_console(argv[2]);

  static struct check checks[256];
  int nchecks = 0, sleep_s = 0, exit_code = 0;
  const char *out_path = NULL, *dev_dir = "/dev";
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v) { fprintf(stderr, "probe: %s needs an argument\n", a); return 2; }
    i++;
    if (strcmp(a, "--out") == 0) out_path = v;
    else if (strcmp(a, "--sleep") == 0) sleep_s = atoi(v);
    else if (strcmp(a, "--exit") == 0) exit_code = atoi(v);
    else if (strcmp(a, "--dev-dir") == 0) dev_dir = v;
    else if (nchecks < 256 && strncmp(a, "--", 2) == 0) {
      const char *op = a + 2;
      if (strncmp(op, "check-", 6) == 0 || !strcmp(op, "stat") || !strcmp(op, "readlink") || !strcmp(op, "read") ||
          !strcmp(op, "ls") || !strcmp(op, "mkdir") || !strcmp(op, "write-file") || !strcmp(op, "ns-of")) {
        checks[nchecks].op = op;
        checks[nchecks].path = v;
        nchecks++;
      } else { fprintf(stderr, "probe: unknown option %s\n", a); return 2; }
    } else { fprintf(stderr, "probe: unexpected argument %s\n", a); return 2; }
  }

  out = stdout;
  if (out_path && !(out = fopen(out_path, "we"))) { perror(out_path); return 2; }

  jobj_open();
  jkey("args"); jarr_open();
  for (int i = 0; i < argc; i++) jval_str(argv[i]);
  jarr_close();
  emit_ids();
  emit_uts();
  emit_namespaces();
  emit_status();
  emit_rlimits();
  emit_sched();
  emit_file_value("oomScoreAdj", "/proc/self/oom_score_adj");
  emit_file_lines("uidMap", "/proc/self/uid_map");
  emit_file_lines("gidMap", "/proc/self/gid_map");
  emit_file_lines("setgroups", "/proc/self/setgroups");
  emit_file_lines("cgroup", "/proc/self/cgroup");
  emit_fds();
  emit_mounts();
  emit_dir_stats("dev", dev_dir);
  jkey("checks"); jarr_open();
  for (int i = 0; i < nchecks; i++) {
    const char *op = checks[i].op;
    if (strcmp(op, "check-read") == 0) check_open("check-read", checks[i].path, O_RDONLY);
    else if (strcmp(op, "check-write") == 0) check_open("check-write", checks[i].path, O_WRONLY);
    else check_simple(op, checks[i].path);
  }
  jarr_close();
  jobj_close();
  fputc('\n', out);
  fflush(out);
  if (out != stdout) fclose(out);
  if (sleep_s > 0) sleep((unsigned)sleep_s);
  return exit_code;
}
