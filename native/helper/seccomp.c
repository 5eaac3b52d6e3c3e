/*
 * seccomp.c: build the container's seccomp filter from the plan with libseccomp, loaded at run
 * time.
 *
 * Why dlopen: the build host has libseccomp.so.2 but no development headers, and the helper must
 * keep working (without seccomp) on hosts that lack the library entirely. The few prototypes and
 * constants we need are declared below; their values are those of libseccomp 2.5's public header
 * (seccomp.h), which are part of its stable ABI.
 *
 * Order of use (driven by init.c):
 *   1. seccomp_prepare()       before pivot_root, while the host's /usr/lib is still reachable:
 *                              dlopen, create the filter context, add archs, flags and rules.
 *   2. seccomp_load_prepared() right before execve (or before setuid/capset when no_new_privs is
 *                              off): load the filter into the kernel, keep the notify fd if any
 *                              rule uses SCMP_ACT_NOTIFY, release the context.
 *
 * Semantics follow runc (libcontainer/seccomp/seccomp_linux.go):
 *   - unknown syscall names are skipped silently (the profile may name syscalls this libseccomp
 *     or architecture does not know);
 *   - a rule whose action equals the default action is skipped (libseccomp would reject it);
 *   - a rule with several conditions on the same argument is split into one rule per condition
 *     (libseccomp refuses several comparisons of one argument in a single rule);
 *   - SECCOMP_FILTER_FLAG_TSYNC is accepted and ignored (this process is single-threaded),
 *     _LOG and _SPEC_ALLOW map to filter attributes, any other flag is an error;
 *   - SCMP_ACT_NOTIFY is refused as the default action and for the write syscall;
 *   - no_new_privs is NOT set by libseccomp: init.c sets it itself when the config asks.
 * The whole process is single-threaded after clone, so malloc is fine; nothing here uses stdio.
 */
#include "helper.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the slice of libseccomp 2.5's ABI we use (values from its seccomp.h) ---- */

typedef void *scmp_filter_ctx;

/* enum scmp_filter_attr */
#define SCMP_FLTATR_CTL_NNP 3
#define SCMP_FLTATR_CTL_TSYNC 4
#define SCMP_FLTATR_CTL_LOG 6
#define SCMP_FLTATR_CTL_SSB 7
#define SCMP_FLTATR_CTL_OPTIMIZE 8

/* enum scmp_compare */
#define SCMP_CMP_NE 1
#define SCMP_CMP_LT 2
#define SCMP_CMP_LE 3
#define SCMP_CMP_EQ 4
#define SCMP_CMP_GE 5
#define SCMP_CMP_GT 6
#define SCMP_CMP_MASKED_EQ 7

/* Actions. ERRNO and TRACE carry a 16-bit value in the low bits. */
#define SCMP_ACT_KILL_PROCESS 0x80000000U
#define SCMP_ACT_KILL_THREAD 0x00000000U
#define SCMP_ACT_TRAP 0x00030000U
#define SCMP_ACT_NOTIFY 0x7fc00000U
#define SCMP_ACT_ERRNO(x) (0x00050000U | ((uint32_t)(x)&0x0000ffffU))
#define SCMP_ACT_TRACE(x) (0x7ff00000U | ((uint32_t)(x)&0x0000ffffU))
#define SCMP_ACT_LOG 0x7ffc0000U
#define SCMP_ACT_ALLOW 0x7fff0000U

/* seccomp_syscall_resolve_name's failure value (__NR_SCMP_ERROR). */
#define NR_SCMP_ERROR (-1)

/* struct scmp_arg_cmp: the enum member has int size on every ABI libseccomp supports. */
struct scmp_arg_cmp {
  unsigned int arg;
  int op;
  uint64_t datum_a;
  uint64_t datum_b;
};

/* Function table filled by dlsym. */
static struct {
  void *lib;
  scmp_filter_ctx (*init)(uint32_t def_action);
  void (*release)(scmp_filter_ctx ctx);
  int (*rule_add_array)(scmp_filter_ctx ctx, uint32_t action, int syscall, unsigned int arg_cnt,
                        const struct scmp_arg_cmp *arg_array);
  int (*arch_add)(scmp_filter_ctx ctx, uint32_t arch_token);
  uint32_t (*arch_resolve_name)(const char *arch_name);
  int (*syscall_resolve_name)(const char *name);
  int (*attr_set)(scmp_filter_ctx ctx, int attr, uint32_t value);
  int (*load)(scmp_filter_ctx ctx);
  int (*notify_fd)(scmp_filter_ctx ctx); /* optional: absent before libseccomp 2.5 */
} lib;

/* State carried from seccomp_prepare to seccomp_load_prepared. */
static scmp_filter_ctx prepared;
static int prepared_uses_notify;
static int notify_fd = -1;

/* Plan-level errors are reported under this stage name. */
#define STAGE "seccomp"

/* Whether the plan carries a seccomp filter at all (init.c skips all seccomp work otherwise). */
int seccomp_present(const struct plan *p) {
  for (uint32_t i = 0; i < p->n; i++)
    if (p->recs[i].op == OP_SECCOMP_BEGIN) return 1;
  return 0;
}

/* The listener fd produced by loading a filter with SCMP_ACT_NOTIFY rules, or -1. init.c sends
 * it to listenerPath (OP_SECCOMP_LISTENER) after seccomp_load_prepared and closes it. */
int seccomp_notify_fd_get(void) {
  return notify_fd;
}

/* dlopen libseccomp and resolve the symbols. Idempotent. */
static int load_library(struct err *e) {
  if (lib.lib) return 0;
  void *h = dlopen("libseccomp.so.2", RTLD_NOW | RTLD_LOCAL);
  if (!h) return fail(e, STAGE, ENOENT, "libseccomp.so.2", "cannot load libseccomp (is it installed?)");
#define SYM(field, name)                                                          \
  do {                                                                            \
    *(void **)&lib.field = dlsym(h, name);                                        \
    if (!lib.field) {                                                             \
      dlclose(h);                                                                 \
      return fail(e, STAGE, ENOSYS, name, "symbol missing from libseccomp.so.2"); \
    }                                                                             \
  } while (0)
  SYM(init, "seccomp_init");
  SYM(release, "seccomp_release");
  SYM(rule_add_array, "seccomp_rule_add_array");
  SYM(arch_add, "seccomp_arch_add");
  SYM(arch_resolve_name, "seccomp_arch_resolve_name");
  SYM(syscall_resolve_name, "seccomp_syscall_resolve_name");
  SYM(attr_set, "seccomp_attr_set");
  SYM(load, "seccomp_load");
#undef SYM
  *(void **)&lib.notify_fd = dlsym(h, "seccomp_notify_fd");
  lib.lib = h;
  return 0;
}

/* Decimal (or 0x-prefixed hex) u64. Returns -1 on garbage so a corrupt plan is not silently
 * turned into 0. Base 10 rather than base 0 so "010" is ten, as JSON meant it. */
static int parse_num(const char *s, uint64_t *out) {
  if (!s || !*s) return -1;
  int base = 10;
  if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) { base = 16; s += 2; }
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, base);
  if (errno || *end || end == s) return -1;
  *out = v;
  return 0;
}

/*
 * Map an action name to its libseccomp value. errno_ret is the rule's errnoRet ("" = unset),
 * applied to ERRNO and TRACE (runc defaults both to EPERM). Returns 0 or -1 via fail().
 */
static int parse_action(const char *name, const char *errno_ret, uint32_t *out, struct err *e) {
  uint64_t ret = EPERM;
  if (errno_ret && *errno_ret && parse_num(errno_ret, &ret) < 0)
    return fail(e, STAGE, EINVAL, errno_ret, "invalid errnoRet");
  if (!strcmp(name, "SCMP_ACT_KILL") || !strcmp(name, "SCMP_ACT_KILL_THREAD")) *out = SCMP_ACT_KILL_THREAD;
  else if (!strcmp(name, "SCMP_ACT_KILL_PROCESS")) *out = SCMP_ACT_KILL_PROCESS;
  else if (!strcmp(name, "SCMP_ACT_TRAP")) *out = SCMP_ACT_TRAP;
  else if (!strcmp(name, "SCMP_ACT_ERRNO")) *out = SCMP_ACT_ERRNO(ret);
  else if (!strcmp(name, "SCMP_ACT_TRACE")) *out = SCMP_ACT_TRACE(ret);
  else if (!strcmp(name, "SCMP_ACT_ALLOW")) *out = SCMP_ACT_ALLOW;
  else if (!strcmp(name, "SCMP_ACT_LOG")) *out = SCMP_ACT_LOG;
  else if (!strcmp(name, "SCMP_ACT_NOTIFY")) *out = SCMP_ACT_NOTIFY;
  else return fail(e, STAGE, EINVAL, name, "unknown seccomp action");
  return 0;
}

/* Map an operator name (SCMP_CMP_*) to its libseccomp value, or -1. */
static int parse_op(const char *name) {
  static const struct { const char *n; int v; } ops[] = {
    {"SCMP_CMP_NE", SCMP_CMP_NE}, {"SCMP_CMP_LT", SCMP_CMP_LT},
    {"SCMP_CMP_LE", SCMP_CMP_LE}, {"SCMP_CMP_EQ", SCMP_CMP_EQ},
    {"SCMP_CMP_GE", SCMP_CMP_GE}, {"SCMP_CMP_GT", SCMP_CMP_GT},
    {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ},
  };
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
    if (!strcmp(name, ops[i].n)) return ops[i].v;
  return -1;
}

/*
 * Resolve "SCMP_ARCH_X86_64" to libseccomp's token. libseccomp names its architectures in lower
 * case without the prefix ("x86_64", "aarch64", "mipsel64n32"), so strip and lower-case.
 * Returns 0 when unknown (libseccomp's own failure value).
 */
static uint32_t resolve_arch(const char *name) {
  const char *pfx = "SCMP_ARCH_";
  if (strncmp(name, pfx, strlen(pfx)) == 0) name += strlen(pfx);
  char buf[32];
  size_t n = strlen(name);
  if (n == 0 || n >= sizeof buf) return 0;
  for (size_t i = 0; i <= n; i++) {
    char c = name[i];
    buf[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
  }
  return lib.arch_resolve_name(buf);
}

/*
 * Apply the comma-separated SECCOMP_FILTER_FLAG_* list. TSYNC is meaningless for a
 * single-threaded process (runc ignores it too); unknown flags are errors so a profile asking
 * for e.g. WAIT_KILLABLE_RECV does not silently get weaker semantics.
 */
static int apply_flags(scmp_filter_ctx ctx, const char *flags, struct err *e) {
  const char *s = flags;
  while (s && *s) {
    const char *comma = strchr(s, ',');
    size_t len = comma ? (size_t)(comma - s) : strlen(s);
    char f[64];
    if (len >= sizeof f) return fail(e, STAGE, EINVAL, s, "unknown seccomp flag");
    memcpy(f, s, len);
    f[len] = 0;
    s = comma ? comma + 1 : NULL;
    if (len == 0 || !strcmp(f, "SECCOMP_FILTER_FLAG_TSYNC")) continue;
    int attr;
    if (!strcmp(f, "SECCOMP_FILTER_FLAG_LOG")) attr = SCMP_FLTATR_CTL_LOG;
    else if (!strcmp(f, "SECCOMP_FILTER_FLAG_SPEC_ALLOW")) attr = SCMP_FLTATR_CTL_SSB;
    else return fail(e, STAGE, EINVAL, f, "unknown seccomp flag");
    int rc = lib.attr_set(ctx, attr, 1);
    if (rc < 0) return fail(e, STAGE, -rc, f, "cannot set seccomp flag (libseccomp or kernel too old?)");
  }
  return 0;
}

/*
 * Add one OP_SECCOMP_RULE record: action, errnoRet, nargs, nargs x (index,value,valueTwo,op),
 * syscall names... Each name gets the same conditions.
 */
static int add_rule(scmp_filter_ctx ctx, const struct rec *r, uint32_t def_action, struct err *e) {
  if (r->argc < 3) return fail(e, STAGE, EINVAL, "", "malformed seccomp rule record");
  uint32_t action;
  if (parse_action(r->argv[0], r->argv[1], &action, e) < 0) return -1;
  uint64_t nargs;
  if (parse_num(r->argv[2], &nargs) < 0 || nargs > 64 || 3 + 4 * nargs > r->argc)
    return fail(e, STAGE, EINVAL, r->argv[2], "malformed seccomp rule record (argument count)");
  uint32_t first_name = 3 + 4 * (uint32_t)nargs;

  if (action == SCMP_ACT_NOTIFY) {
    for (uint32_t i = first_name; i < r->argc; i++)
      if (!strcmp(r->argv[i], "write"))
        return fail(e, STAGE, EINVAL, "write",
                    "SCMP_ACT_NOTIFY cannot be used for the write syscall");
    prepared_uses_notify = 1;
  }
  /* Same action as the default: redundant, and libseccomp would refuse it. */
  if (action == def_action) return 0;

  struct scmp_arg_cmp conds[64];
  unsigned per_index[6] = {0};
  int split = 0;
  for (uint32_t c = 0; c < nargs; c++) {
    char **q = &r->argv[3 + 4 * c];
    uint64_t idx, a, b = 0;
    if (parse_num(q[0], &idx) < 0 || idx >= 6)
      return fail(e, STAGE, EINVAL, q[0], "invalid seccomp argument index (must be 0..5)");
    if (parse_num(q[1], &a) < 0) return fail(e, STAGE, EINVAL, q[1], "invalid seccomp argument value");
    if (*q[2] && parse_num(q[2], &b) < 0)
      return fail(e, STAGE, EINVAL, q[2], "invalid seccomp argument valueTwo");
    int op = parse_op(q[3]);
    if (op < 0) return fail(e, STAGE, EINVAL, q[3], "unknown seccomp operator");
    conds[c] = (struct scmp_arg_cmp){.arg = (unsigned)idx, .op = op, .datum_a = a, .datum_b = b};
    if (++per_index[idx] > 1) split = 1;
  }

  for (uint32_t i = first_name; i < r->argc; i++) {
    const char *name = r->argv[i];
    if (!*name) return fail(e, STAGE, EINVAL, "", "empty syscall name in seccomp rule");
    int nr = lib.syscall_resolve_name(name);
    if (nr == NR_SCMP_ERROR) continue; /* unknown to this libseccomp/arch: skip, as runc does */
    int rc;
    if (!split) {
      /* Conditions on distinct arguments: one rule, conditions ANDed. */
      rc = lib.rule_add_array(ctx, action, nr, (unsigned)nargs, nargs ? conds : NULL);
    } else {
      /* Several conditions on one argument: one rule per condition (ORed), runc's behaviour. */
      rc = 0;
      for (uint32_t c = 0; c < nargs && rc >= 0; c++)
        rc = lib.rule_add_array(ctx, action, nr, 1, &conds[c]);
    }
    if (rc < 0) return fail(e, STAGE, -rc, name, "cannot add seccomp rule");
  }
  return 0;
}

/*
 * Build (but do not load) the filter described by the plan's OP_SECCOMP_* records. Must run
 * before pivot_root: dlopen needs the host's library path. Returns 0 (also when the plan has no
 * seccomp section) or -1 with *e set.
 */
int seccomp_prepare(const struct plan *p, struct err *e) {
  uint32_t i = 0;
  while (i < p->n && p->recs[i].op != OP_SECCOMP_BEGIN) i++;
  if (i == p->n) return 0;
  const struct rec *b = &p->recs[i];
  if (b->argc < 3) return fail(e, STAGE, EINVAL, "", "malformed seccomp record");

  if (load_library(e) < 0) return -1;

  uint32_t def_action;
  if (parse_action(b->argv[0], b->argv[1], &def_action, e) < 0) return -1;
  /* Everything the container does would block on an agent, including our own sync writes. */
  if (def_action == SCMP_ACT_NOTIFY)
    return fail(e, STAGE, EINVAL, b->argv[0], "SCMP_ACT_NOTIFY cannot be used as default action");

  if (prepared) { lib.release(prepared); prepared = NULL; }
  prepared_uses_notify = 0;
  scmp_filter_ctx ctx = lib.init(def_action);
  if (!ctx) return fail(e, STAGE, EINVAL, b->argv[0], "seccomp_init failed");

  /* 1. Architectures: seccomp_init already added the native one, so EEXIST is expected. */
  for (uint32_t a = 3; a < b->argc; a++) {
    uint32_t tok = resolve_arch(b->argv[a]);
    if (!tok) { lib.release(ctx); return fail(e, STAGE, EINVAL, b->argv[a], "unknown seccomp architecture"); }
    int rc = lib.arch_add(ctx, tok);
    if (rc < 0 && rc != -EEXIST) {
      lib.release(ctx);
      return fail(e, STAGE, -rc, b->argv[a], "cannot add seccomp architecture");
    }
  }

  /* 2. Flags, then the attributes we always want: libseccomp must not set no_new_privs. */
  if (apply_flags(ctx, b->argv[2], e) < 0) { lib.release(ctx); return -1; }
  int rc = lib.attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
  if (rc < 0) { lib.release(ctx); return fail(e, STAGE, -rc, "", "cannot clear SCMP_FLTATR_CTL_NNP"); }

  /* 3. Rules, up to OP_SECCOMP_END. Long profiles get the binary-tree layout (as runc does past
   * 32 rules); older libseccomp lacks the attribute, which is harmless. */
  uint32_t nrules = 0;
  for (uint32_t j = i + 1; j < p->n && p->recs[j].op != OP_SECCOMP_END; j++)
    if (p->recs[j].op == OP_SECCOMP_RULE) nrules++;
  if (nrules > 32) (void)lib.attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
  for (uint32_t j = i + 1; j < p->n && p->recs[j].op != OP_SECCOMP_END; j++) {
    if (p->recs[j].op != OP_SECCOMP_RULE) continue;
    if (add_rule(ctx, &p->recs[j], def_action, e) < 0) { lib.release(ctx); return -1; }
  }

  if (prepared_uses_notify && !lib.notify_fd) {
    lib.release(ctx);
    return fail(e, STAGE, ENOSYS, "", "SCMP_ACT_NOTIFY needs libseccomp >= 2.5");
  }
  prepared = ctx;
  return 0;
}

/*
 * Load the filter built by seccomp_prepare into the kernel, keep the notify fd (if a rule uses
 * SCMP_ACT_NOTIFY) for seccomp_notify_fd_get(), and free the context. A no-op returning 0 when
 * nothing was prepared. After this returns, every syscall of this process is filtered.
 */
int seccomp_load_prepared(struct err *e) {
  if (!prepared) return 0;
  int rc = lib.load(prepared);
  if (rc < 0) {
    lib.release(prepared);
    prepared = NULL;
    return fail(e, STAGE, -rc, "", "cannot load seccomp filter");
  }
  if (prepared_uses_notify) {
    /* libseccomp 2.5 keeps this fd in its global state and seccomp_release does not close it
     * (only seccomp_reset(NULL, ...) would), so it stays valid; the kernel created it
     * close-on-exec. */
    int fd = lib.notify_fd(prepared);
    if (fd < 0) {
      lib.release(prepared);
      prepared = NULL;
      return fail(e, STAGE, -fd, "", "cannot get the seccomp notify fd");
    }
    notify_fd = fd;
  }
  lib.release(prepared);
  prepared = NULL;
  return 0;
}
