/*
 * Standalone tests for native/helper/seccomp.c and caps.c.
 *
 * Every case runs in a forked child, because loading a seccomp filter or dropping capabilities
 * is irreversible for the process. The child exits 0 on success; on failure it prints why to
 * stderr and exits 1 (or is killed by a signal the case did not expect). Needs root (loading a
 * filter without no_new_privs needs CAP_SYS_ADMIN; the caps cases need CAP_SETPCAP).
 *
 * Build and run: native/test/run.sh
 */
#define _GNU_SOURCE
#include "../helper/helper.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- building plans in memory ---- */

#define MAXRECS 32
static struct rec recs[MAXRECS];
static struct plan plan = {0, recs};

/* Start an empty plan. */
static void plan_reset(void) {
  plan.n = 0;
}

/* Append a record; the string arguments end with NULL. */
static void add(uint32_t op, ...) {
  va_list ap;
  char *tmp[128];
  uint32_t n = 0;
  va_start(ap, op);
  for (const char *s; (s = va_arg(ap, const char *)) != NULL;) tmp[n++] = strdup(s);
  va_end(ap);
  struct rec *r = &recs[plan.n++];
  r->op = op;
  r->argc = n;
  r->argv = calloc(n + 1, sizeof(char *));
  memcpy(r->argv, tmp, n * sizeof(char *));
}

/* ---- child-side checks ---- */

#define CHECK(cond, ...)                                  \
  do {                                                    \
    if (!(cond)) {                                        \
      fprintf(stderr, "    line %d: ", __LINE__);         \
      fprintf(stderr, __VA_ARGS__);                       \
      fprintf(stderr, "\n");                              \
      _exit(1);                                           \
    }                                                     \
  } while (0)

/* Prepare and load the current plan, failing the child on error. */
static void prepare_and_load(void) {
  struct err e = {0};
  CHECK(seccomp_prepare(&plan, &e) == 0, "prepare: %s %s: %s (%s)", e.stage, e.path, e.detail, strerror(e.errnum));
  CHECK(seccomp_load_prepared(&e) == 0, "load: %s %s: %s (%s)", e.stage, e.path, e.detail, strerror(e.errnum));
}

/* A syscall's result as -errno, bypassing libc caches. */
static long sc(long nr, long a, long b) {
  long r = syscall(nr, a, b);
  return r < 0 ? -errno : r;
}

/* Read a hex "CapXxx:" line from /proc/self/status. */
static uint64_t status_caps(const char *key) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  uint64_t v = ~0ULL;
  size_t kl = strlen(key);
  while (f && fgets(line, sizeof line, f))
    if (!strncmp(line, key, kl) && line[kl] == ':') v = strtoull(line + kl + 1, NULL, 16);
  if (f) fclose(f);
  return v;
}

/* ---- the cases ---- */

/* mkdir gets ENOSYS (errnoRet 38) while everything else works. */
static void t_errno_ret(void) {
  add(OP_SECCOMP_BEGIN, "SCMP_ACT_ALLOW", "", "", "SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", NULL);
  add(OP_SECCOMP_RULE, "SCMP_ACT_ERRNO", "38", "0", "mkdir", "mkdirat", NULL);
  add(OP_SECCOMP_END, NULL);
  CHECK(seccomp_present(&plan), "seccomp_present");
  prepare_and_load();
  CHECK(mkdir("/tmp/shoal-seccomp-test-never", 0700) < 0 && errno == ENOSYS, "mkdir: %s", strerror(errno));
  CHECK(sc(SYS_getpid, 0, 0) == getpid(), "getpid");
}

/* ERRNO without errnoRet means EPERM. */
static void t_errno_default_eperm(void) {
  add(OP_SECCOMP_BEGIN, "SCMP_ACT_ALLOW", "", "", NULL);
  add(OP_SECCOMP_RULE, "SCMP_ACT_ERRNO", "", "0", "getppid", NULL);
  add(OP_SECCOMP_END, NULL);
  prepare_and_load();
  CHECK(sc(SYS_getppid, 0, 0) == -EPERM, "getppid: %ld", sc(SYS_getppid, 0, 0));
}

/* kill is denied only when arg1 == SIGUSR1. */
static void t_arg_condition(void) {
  signal(SIGUSR1, SIG_IGN);
  signal(SIGUSR2, SIG_IGN);
  char sig[8];
  snprintf(sig, sizeof sig, "%d", SIGUSR1);
  add(OP_SECCOMP_BEGIN, "SCMP_ACT_ALLOW", "", "", NULL);
  add(OP_SECCOMP_RULE, "SCMP_ACT_ERRNO", "1", "1", "1", sig, "0", "SCMP_CMP_EQ", "kill", NULL);
  add(OP_SECCOMP_END, NULL);
  prepare_and_load();
  CHECK(sc(SYS_kill, getpid(), SIGUSR1) == -EPERM, "kill USR1 should be denied");
  CHECK(sc(SYS_kill, getpid(), SIGUSR2) == 0, "kill USR2 should pass");
  CHECK(sc(SYS_kill, getpid(), 0) == 0, "kill 0 should pass");
}

/* personality(0xffffffff) (a query) is denied via a 64-bit value; other values pass. */
static void t_arg_condition_u32max(void) {
  add(OP_SECCOMP_BEGIN, "SCMP_ACT_ALLOW", "", "", NULL);
  add(OP_SECCOMP_RULE, "SCMP_ACT_ERRNO", "22", "1", "0", "4294967295", "0", "SCMP_CMP_EQ", "personality", NULL);
  add(OP_SECCOMP_END, NULL);
  prepare_and_load();
  CHECK(sc(SYS_personality, 0xffffffffL, 0) == -EINVAL, "personality(query) should be EINVAL");
  CHECK(sc(SYS_personality, PER_LINUX, 0) >= 0, "personality(PER_LINUX) should pass");
}

/* The same syscall in two rules with different conditions: libseccomp ORs them. */
static void t_same_syscall_two_rules(void) {
  signal(SIGUSR1, SIG_IGN);
  signal(SIGUSR2, SIG_IGN);
  signal(SIGWINCH, SIG_IGN);
  char s1[8], s2[8];
  snprintf(s1, sizeof s1, "%d", SIGUSR1);
  snprintf(s2, sizeof s2, "%d", SIGUSR2);
  add(OP_SECCOMP_BEGIN, "SCMP_ACT_ALLOW", "", "", NULL);
  add(OP_SECCOMP_RULE, "SCMP_ACT_ERRNO", "", "1", "1", s1, "0", "SCMP_CMP_EQ", "kill", NULL);
  add(OP_SECCOMP_RULE, "SCMP_ACT_ERRNO", "", "1", "1", s2, "", "SCMP_CMP_EQ", "kill", NULL);
  add(OP_SECCOMP_END, NULL);
  prepare_and_load();
  CHECK(sc(SYS_kill, getpid(), SIGUSR1) == -EPERM, "USR1 denied");
  CHECK(sc(SYS_kill, getpid(), SIGUSR2) == -EPERM, "USR2 denied");
  CHECK(sc(SYS_kill, getpid(), SIGWINCH) == 0, "WINCH allowed");
}

/* Two conditions on one argument (docker's personality style) are split into ORed rules. */
static void t_same_arg_split(void) {
  add(OP_SECCOMP_BEGIN, "SCMP_ACT_ALLOW", "", "", NULL);
  add(OP_SECCOMP_RULE, "SCMP_ACT_ERRNO", "", "2", "0", "8", "0", "SCMP_CMP_EQ", "0", "131080", "0",
      "SCMP_CMP_EQ", "personality", NULL);
  add(OP_SECCOMP_END, NULL);
  prepare_and_load();
  CHECK(sc(SYS_personality, 8, 0) == -EPERM, "personality(8) denied");
  CHECK(sc(SYS_personality, 131080, 0) == -EPERM, "personality(0x20008) denied");
  CHECK(sc(SYS_personality, 0xffffffffL, 0) >= 0, "personality(query) allowed");
}

/* Conditions on distinct arguments are ANDed in one rule; MASKED_EQ and NE work. */
static void t_and_conditions(void) {
  signal(SIGUSR1, SIG_IGN);
  char pid[16], sig[8];
  snprintf(pid, sizeof pid, "%d", getpid());
  snprintf(sig, sizeof sig, "%d", SIGUSR1);
  add(OP_SECCOMP_BEGIN, "SCMP_ACT_ALLOW", "", "", NULL);
  add(OP_SECCOMP_RULE, "SCMP_ACT_ERRNO", "", "2", "0", pid, "0", "SCMP_CMP_NE", "1", sig, "0",
      "SCMP_CMP_EQ", "kill", NULL);
  /* umask denied when (arg0 & 0o700) == 0o700 */
  add(OP_SECCOMP_RULE, "SCMP_ACT_ERRNO", "", "1", "0", "448", "448", "SCMP_CMP_MASKED_EQ", "umask", NULL);
  add(OP_SECCOMP_END, NULL);
  prepare_and_load();
  CHECK(sc(SYS_kill, getpid(), SIGUSR1) == 0, "kill self allowed (pid matches)");
  CHECK(sc(SYS_kill, 99999999, SIGUSR1) == -EPERM, "kill other pid denied");
  CHECK(sc(SYS_umask, 0777, 0) == -EPERM, "umask 0777 denied");
  CHECK(sc(SYS_umask, 0077, 0) >= 0, "umask 0077 allowed");
}

/* Default ERRNO with an allow list: only listed syscalls work. */
static void t_default_errno_allowlist(void) {
  add(OP_SECCOMP_BEGIN, "SCMP_ACT_ERRNO", "", "", NULL);
  add(OP_SECCOMP_RULE, "SCMP_ACT_ALLOW", "", "0", "getpid", "write", "exit", "exit_group", "brk",
      "mmap", "munmap", "madvise", "rt_sigreturn", "close", "fcntl", NULL);
  add(OP_SECCOMP_END, NULL);
  prepare_and_load();
  CHECK(sc(SYS_getpid, 0, 0) > 0, "getpid allowed");
  CHECK(sc(SYS_getppid, 0, 0) == -EPERM, "getppid denied by default");
  CHECK(sc(SYS_getuid, 0, 0) == -EPERM, "getuid denied by default");
}

/* A default errnoRet applies to the default action. */
static void t_default_errno_ret(void) {
  add(OP_SECCOMP_BEGIN, "SCMP_ACT_ERRNO", "1234", "", NULL);
  add(OP_SECCOMP_RULE, "SCMP_ACT_ALLOW", "", "0", "getpid", "write", "exit", "exit_group", "brk",
      "mmap", "munmap", "madvise", "rt_sigreturn", "close", "fcntl", NULL);
  add(OP_SECCOMP_END, NULL);
  prepare_and_load();
  CHECK(sc(SYS_getppid, 0, 0) == -1234, "getppid -> %ld", sc(SYS_getppid, 0, 0));
}

/* Unknown syscall names are skipped; the rest of the rule still applies. */
static void t_unknown_syscall_skipped(void) {
  add(OP_SECCOMP_BEGIN, "SCMP_ACT_ALLOW", "", "", NULL);
  add(OP_SECCOMP_RULE, "SCMP_ACT_ERRNO", "", "0", "no_such_syscall_xyz", "getppid", NULL);
  add(OP_SECCOMP_END, NULL);
  prepare_and_load();
  CHECK(sc(SYS_getppid, 0, 0) == -EPERM, "getppid denied");
}

/* A rule with the default action is skipped instead of making libseccomp fail. */
static void t_redundant_rule(void) {
  add(OP_SECCOMP_BEGIN, "SCMP_ACT_ALLOW", "", "", NULL);
  add(OP_SECCOMP_RULE, "SCMP_ACT_ALLOW", "", "0", "getpid", NULL);
  add(OP_SECCOMP_RULE, "SCMP_ACT_ERRNO", "", "0", "getppid", NULL);
  add(OP_SECCOMP_END, NULL);
  prepare_and_load();
  CHECK(sc(SYS_getpid, 0, 0) > 0, "getpid");
  CHECK(sc(SYS_getppid, 0, 0) == -EPERM, "getppid denied");
}

/* Flags LOG and SPEC_ALLOW and TSYNC are accepted. */
static void t_flags(void) {
  add(OP_SECCOMP_BEGIN, "SCMP_ACT_ALLOW", "", "SECCOMP_FILTER_FLAG_TSYNC,SECCOMP_FILTER_FLAG_LOG,SECCOMP_FILTER_FLAG_SPEC_ALLOW", NULL);
  add(OP_SECCOMP_RULE, "SCMP_ACT_ERRNO", "", "0", "getppid", NULL);
  add(OP_SECCOMP_END, NULL);
  prepare_and_load();
  CHECK(sc(SYS_getppid, 0, 0) == -EPERM, "getppid denied");
}

/* Expect seccomp_prepare to fail with a detail containing `want` and path `path`. */
static void expect_prepare_error(const char *want, const char *path) {
  struct err e = {0};
  CHECK(seccomp_prepare(&plan, &e) == -1, "prepare should fail");
  CHECK(strstr(e.detail, want) != NULL, "detail '%s' lacks '%s'", e.detail, want);
  CHECK(!path || !strcmp(e.path, path), "path '%s' != '%s'", e.path, path);
  CHECK(!strcmp(e.stage, "seccomp"), "stage '%s'", e.stage);
  CHECK(seccomp_load_prepared(&e) == 0, "nothing prepared -> load is a no-op");
}

/* Unknown rule action: a clear error naming the action. */
static void t_unknown_action(void) {
  add(OP_SECCOMP_BEGIN, "SCMP_ACT_ALLOW", "", "", NULL);
  add(OP_SECCOMP_RULE, "SCMP_ACT_FROBNICATE", "", "0", "getppid", NULL);
  add(OP_SECCOMP_END, NULL);
  expect_prepare_error("unknown seccomp action", "SCMP_ACT_FROBNICATE");
}

/* Unknown default action, architecture, flag, operator. */
static void t_other_errors(void) {
  add(OP_SECCOMP_BEGIN, "SCMP_ACT_NOPE", "", "", NULL);
  add(OP_SECCOMP_END, NULL);
  expect_prepare_error("unknown seccomp action", "SCMP_ACT_NOPE");
  plan_reset();
  add(OP_SECCOMP_BEGIN, "SCMP_ACT_ALLOW", "", "", "SCMP_ARCH_X86_64", "SCMP_ARCH_PDP11", NULL);
  add(OP_SECCOMP_END, NULL);
  expect_prepare_error("unknown seccomp architecture", "SCMP_ARCH_PDP11");
  plan_reset();
  add(OP_SECCOMP_BEGIN, "SCMP_ACT_ALLOW", "", "SECCOMP_FILTER_FLAG_LOG,SECCOMP_FILTER_FLAG_BOGUS", NULL);
  add(OP_SECCOMP_END, NULL);
  expect_prepare_error("unknown seccomp flag", "SECCOMP_FILTER_FLAG_BOGUS");
  plan_reset();
  add(OP_SECCOMP_BEGIN, "SCMP_ACT_ALLOW", "", "", NULL);
  add(OP_SECCOMP_RULE, "SCMP_ACT_ERRNO", "", "1", "0", "1", "0", "SCMP_CMP_ABOUT", "kill", NULL);
  add(OP_SECCOMP_END, NULL);
  expect_prepare_error("unknown seccomp operator", "SCMP_CMP_ABOUT");
  plan_reset();
  add(OP_SECCOMP_BEGIN, "SCMP_ACT_ALLOW", "", "", NULL);
  add(OP_SECCOMP_RULE, "SCMP_ACT_ERRNO", "", "1", "6", "1", "0", "SCMP_CMP_EQ", "kill", NULL);
  add(OP_SECCOMP_END, NULL);
  expect_prepare_error("argument index", "6");
  plan_reset();
  add(OP_SECCOMP_BEGIN, "SCMP_ACT_NOTIFY", "", "", NULL);
  add(OP_SECCOMP_END, NULL);
  expect_prepare_error("default action", NULL);
  plan_reset();
  add(OP_SECCOMP_BEGIN, "SCMP_ACT_ALLOW", "", "", NULL);
  add(OP_SECCOMP_RULE, "SCMP_ACT_NOTIFY", "", "0", "read", "write", NULL);
  add(OP_SECCOMP_END, NULL);
  expect_prepare_error("write syscall", "write");
  plan_reset();
  CHECK(!seccomp_present(&plan), "empty plan has no seccomp");
  struct err e = {0};
  CHECK(seccomp_prepare(&plan, &e) == 0, "no seccomp section -> prepare is a no-op");
}

/* KILL_PROCESS: the child dies of SIGSYS (checked by the parent). */
static void t_kill_process(void) {
  add(OP_SECCOMP_BEGIN, "SCMP_ACT_ALLOW", "", "", NULL);
  add(OP_SECCOMP_RULE, "SCMP_ACT_KILL_PROCESS", "", "0", "getppid", NULL);
  add(OP_SECCOMP_END, NULL);
  prepare_and_load();
  sc(SYS_getppid, 0, 0);
  CHECK(0, "still alive after getppid");
}

/* KILL (= KILL_THREAD) on the only thread also ends the process with SIGSYS. */
static void t_kill_thread(void) {
  add(OP_SECCOMP_BEGIN, "SCMP_ACT_ALLOW", "", "", NULL);
  add(OP_SECCOMP_RULE, "SCMP_ACT_KILL", "", "0", "getppid", NULL);
  add(OP_SECCOMP_END, NULL);
  prepare_and_load();
  sc(SYS_getppid, 0, 0);
  CHECK(0, "still alive after getppid");
}

/* TRAP: SIGSYS delivered; with the default disposition the process dies of it. */
static void t_trap(void) {
  add(OP_SECCOMP_BEGIN, "SCMP_ACT_ALLOW", "", "", NULL);
  add(OP_SECCOMP_RULE, "SCMP_ACT_TRAP", "", "0", "getppid", NULL);
  add(OP_SECCOMP_END, NULL);
  prepare_and_load();
  sc(SYS_getppid, 0, 0);
  CHECK(0, "still alive after getppid");
}

/* LOG allows the call. */
static void t_log(void) {
  add(OP_SECCOMP_BEGIN, "SCMP_ACT_ALLOW", "", "", NULL);
  add(OP_SECCOMP_RULE, "SCMP_ACT_LOG", "", "0", "getppid", NULL);
  add(OP_SECCOMP_END, NULL);
  prepare_and_load();
  CHECK(sc(SYS_getppid, 0, 0) == getppid(), "getppid allowed");
}

/* NOTIFY: loading yields a listener fd (not exercised further: the agent is init.c's job). */
static void t_notify_fd(void) {
  CHECK(seccomp_notify_fd_get() == -1, "no fd before load");
  add(OP_SECCOMP_BEGIN, "SCMP_ACT_ALLOW", "", "", NULL);
  add(OP_SECCOMP_RULE, "SCMP_ACT_NOTIFY", "", "0", "getppid", NULL);
  add(OP_SECCOMP_END, NULL);
  prepare_and_load();
  int fd = seccomp_notify_fd_get();
  CHECK(fd >= 0 && fcntl(fd, F_GETFD) >= 0, "notify fd %d invalid", fd);
  CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC, "notify fd should be close-on-exec");
}

/* ---- capabilities ---- */

#define CAP_BIT(n) (1ULL << (n))

/* Hex string of a mask. */
static const char *hx(uint64_t v) {
  static char bufs[8][20];
  static int i;
  char *b = bufs[i++ % 8];
  snprintf(b, 20, "%llx", (unsigned long long)v);
  return b;
}

/* Drop CAP_NET_RAW from the bounding set and CAP_SYS_ADMIN from the effective set. */
static void t_caps_bounding(void) {
  uint64_t prm = status_caps("CapPrm");
  uint64_t bnd = status_caps("CapBnd") & ~CAP_BIT(13);
  uint64_t eff = prm & bnd & ~CAP_BIT(21);
  add(OP_CAPS, hx(bnd), hx(eff), "0", hx(prm & bnd), "0", NULL);
  struct err e = {0};
  CHECK(caps_apply(&recs[0], &e) == 0, "caps_apply: %s %s (%s)", e.path, e.detail, strerror(e.errnum));
  CHECK(status_caps("CapBnd") == bnd, "CapBnd %llx != %llx", (unsigned long long)status_caps("CapBnd"), (unsigned long long)bnd);
  CHECK(!(status_caps("CapBnd") & CAP_BIT(13)), "NET_RAW still bounding");
  CHECK(status_caps("CapEff") == eff, "CapEff %llx", (unsigned long long)status_caps("CapEff"));
  CHECK(status_caps("CapPrm") == (prm & bnd), "CapPrm %llx", (unsigned long long)status_caps("CapPrm"));
  CHECK(prctl(PR_CAPBSET_READ, 13, 0, 0, 0) == 0, "PR_CAPBSET_READ NET_RAW");
}

/* Ambient raise: NET_BIND_SERVICE in inheritable+permitted+ambient shows up in CapAmb. */
static void t_caps_ambient(void) {
  uint64_t keep = CAP_BIT(10) | CAP_BIT(5) | CAP_BIT(8); /* NET_BIND_SERVICE, KILL, SETPCAP */
  add(OP_CAPS, hx(keep), hx(keep), hx(CAP_BIT(10)), hx(keep), hx(CAP_BIT(10)), NULL);
  struct err e = {0};
  CHECK(caps_apply(&recs[0], &e) == 0, "caps_apply: %s %s (%s)", e.path, e.detail, strerror(e.errnum));
  CHECK(status_caps("CapAmb") == CAP_BIT(10), "CapAmb %llx", (unsigned long long)status_caps("CapAmb"));
  CHECK(status_caps("CapInh") == CAP_BIT(10), "CapInh %llx", (unsigned long long)status_caps("CapInh"));
  CHECK(status_caps("CapBnd") == keep, "CapBnd %llx", (unsigned long long)status_caps("CapBnd"));
}

/* The non-root path: keep caps, setresuid, then apply; effective regained, ambient survives exec. */
static void t_caps_after_setuid(void) {
  uint64_t keep = CAP_BIT(10) | CAP_BIT(5);
  add(OP_CAPS, hx(keep), hx(keep), hx(keep), hx(keep), hx(CAP_BIT(10)), NULL);
  CHECK(caps_keep_for_setuid() == 0, "keepcaps");
  CHECK(setresgid(1000, 1000, 1000) == 0 && setresuid(1000, 1000, 1000) == 0, "setresuid");
  CHECK(status_caps("CapEff") == 0, "effective should be empty right after setuid");
  struct err e = {0};
  CHECK(caps_apply(&recs[0], &e) == 0, "caps_apply: %s %s (%s)", e.path, e.detail, strerror(e.errnum));
  CHECK(status_caps("CapEff") == keep, "CapEff %llx", (unsigned long long)status_caps("CapEff"));
  CHECK(status_caps("CapBnd") == keep, "CapBnd %llx", (unsigned long long)status_caps("CapBnd"));
  CHECK(status_caps("CapAmb") == CAP_BIT(10), "CapAmb %llx", (unsigned long long)status_caps("CapAmb"));
  /* After execve a non-root process keeps exactly its ambient caps. */
  execl("/bin/sh", "sh", "-c", "grep -q '^CapEff:.*0000000000000400$' /proc/self/status", (char *)NULL);
  CHECK(0, "exec: %s", strerror(errno));
}

/* Malformed records are rejected. */
static void t_caps_malformed(void) {
  add(OP_CAPS, "zz", "0", "0", "0", "0", NULL);
  add(OP_CAPS, "0", "0", NULL);
  struct err e = {0};
  CHECK(caps_apply(&recs[0], &e) == -1 && strstr(e.detail, "malformed"), "bad hex accepted");
  CHECK(caps_apply(&recs[1], &e) == -1 && strstr(e.detail, "malformed"), "short record accepted");
}

/* ---- runner ---- */

static int passed, failed;

/* Run fn in a child; expect exit 0, or death by `sig` when sig != 0. */
static void run(const char *name, void (*fn)(void), int sig) {
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    plan_reset();
    fn();
    _exit(0);
  }
  int st;
  waitpid(pid, &st, 0);
  int ok = sig ? (WIFSIGNALED(st) && WTERMSIG(st) == sig) : (WIFEXITED(st) && WEXITSTATUS(st) == 0);
  if (ok) passed++;
  else failed++;
  printf("%s %s", ok ? "ok  " : "FAIL", name);
  if (!ok) {
    if (WIFSIGNALED(st)) printf(" (killed by signal %d)", WTERMSIG(st));
    else printf(" (exit %d)", WEXITSTATUS(st));
  }
  printf("\n");
}

int main(void) {
  if (geteuid() != 0) {
    printf("seccomp_caps_test needs root\n0 passed, 1 failed\n");
    return 1;
  }
  run("seccomp: errnoRet 38 on mkdir, getpid works", t_errno_ret, 0);
  run("seccomp: ERRNO defaults to EPERM", t_errno_default_eperm, 0);
  run("seccomp: arg condition (kill arg1 == SIGUSR1)", t_arg_condition, 0);
  run("seccomp: arg condition with 0xffffffff (personality)", t_arg_condition_u32max, 0);
  run("seccomp: same syscall in two conditional rules", t_same_syscall_two_rules, 0);
  run("seccomp: two conditions on one argument are split", t_same_arg_split, 0);
  run("seccomp: conditions on distinct args are ANDed, NE/MASKED_EQ", t_and_conditions, 0);
  run("seccomp: default ERRNO with allow list", t_default_errno_allowlist, 0);
  run("seccomp: defaultErrnoRet", t_default_errno_ret, 0);
  run("seccomp: unknown syscall name skipped", t_unknown_syscall_skipped, 0);
  run("seccomp: rule equal to default action skipped", t_redundant_rule, 0);
  run("seccomp: flags TSYNC/LOG/SPEC_ALLOW", t_flags, 0);
  run("seccomp: unknown action rejected", t_unknown_action, 0);
  run("seccomp: unknown arch/flag/op/index, notify misuse rejected", t_other_errors, 0);
  run("seccomp: KILL_PROCESS -> SIGSYS", t_kill_process, SIGSYS);
  run("seccomp: KILL -> SIGSYS", t_kill_thread, SIGSYS);
  run("seccomp: TRAP -> SIGSYS", t_trap, SIGSYS);
  run("seccomp: LOG allows", t_log, 0);
  run("seccomp: NOTIFY yields a listener fd", t_notify_fd, 0);
  run("caps: bounding drop of NET_RAW, effective narrowed", t_caps_bounding, 0);
  run("caps: ambient raise", t_caps_ambient, 0);
  run("caps: keepcaps + setresuid + apply, ambient survives exec", t_caps_after_setuid, 0);
  run("caps: malformed records rejected", t_caps_malformed, 0);
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
