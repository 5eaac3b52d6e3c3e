/*
 * caps.c: apply the process capability sets from the plan (OP_CAPS).
 *
 * OP_CAPS carries five hex u64 masks computed by TypeScript (shim/src/runtime/plan/caps.ts):
 * bounding, effective, inheritable, permitted, ambient. Bit n is capability n.
 *
 * Order inside caps_apply, and why:
 *   0. If the effective set is narrower than the permitted set (the usual state right after
 *      setresuid with PR_SET_KEEPCAPS), raise effective to permitted first: dropping from the
 *      bounding set needs CAP_SETPCAP in the effective set.
 *   1. Drop every capability missing from the bounding mask (PR_CAPBSET_DROP). This must come
 *      before capset because capset may remove CAP_SETPCAP from the effective set.
 *   2. capset(effective, permitted, inheritable) with the v3 (64-bit) ABI.
 *   3. Clear the ambient set, then raise each requested ambient capability; raising requires the
 *      capability in both permitted and inheritable, which step 2 established.
 * caps_keep_for_setuid() is called by init.c before setresuid so that the permitted set survives
 * the switch away from uid 0 (the kernel resets the keep-caps flag again at execve).
 */
#include "helper.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_RAISE 2
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif

#define STAGE "capabilities"

/* Highest capability number the running kernel knows, or -1 before the first lookup. */
static int last_cap = -1;

/*
 * Find the kernel's highest capability: /proc/sys/kernel/cap_last_cap when /proc is readable,
 * otherwise probe PR_CAPBSET_READ, which fails with EINVAL past the last capability (this also
 * works after pivot_root into a rootfs without /proc). Cached: it cannot change at run time.
 */
static int get_last_cap(void) {
  if (last_cap >= 0) return last_cap;
  int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    char buf[16];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n > 0) {
      buf[n] = 0;
      char *end;
      long v = strtol(buf, &end, 10);
      if (end != buf && v > 0 && v < 64) return last_cap = (int)v;
    }
  }
  int c = 0;
  while (c < 63 && prctl(PR_CAPBSET_READ, (unsigned long)(c + 1), 0, 0, 0) >= 0) c++;
  return last_cap = c;
}

/* Parse a hex u64 ("1fffeffffff", optional 0x). Returns -1 on garbage. */
static int parse_hex(const char *s, uint64_t *out) {
  if (!s || !*s) return -1;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 16);
  if (errno || *end) return -1;
  *out = v;
  return 0;
}

/* capget/capset on this process with the v3 ABI: data[0] holds bits 0-31, data[1] bits 32-63. */
static int cap_get(uint64_t *eff, uint64_t *prm, uint64_t *inh) {
  struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  struct __user_cap_data_struct d[2];
  memset(d, 0, sizeof d);
  if (syscall(SYS_capget, &h, d) < 0) return -1;
  *eff = d[0].effective | ((uint64_t)d[1].effective << 32);
  *prm = d[0].permitted | ((uint64_t)d[1].permitted << 32);
  *inh = d[0].inheritable | ((uint64_t)d[1].inheritable << 32);
  return 0;
}

/* See cap_get. */
static int cap_set(uint64_t eff, uint64_t prm, uint64_t inh) {
  struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  struct __user_cap_data_struct d[2];
  d[0].effective = (uint32_t)eff;
  d[1].effective = (uint32_t)(eff >> 32);
  d[0].permitted = (uint32_t)prm;
  d[1].permitted = (uint32_t)(prm >> 32);
  d[0].inheritable = (uint32_t)inh;
  d[1].inheritable = (uint32_t)(inh >> 32);
  return (int)syscall(SYS_capset, &h, d);
}

/* Keep the permitted set across the coming setresuid away from uid 0. */
int caps_keep_for_setuid(void) {
  return prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0);
}

/*
 * Apply an OP_CAPS record (bounding, effective, inheritable, permitted, ambient as hex u64), in
 * the order described at the top of this file. Returns 0 or -1 with *e set.
 */
int caps_apply(const struct rec *r, struct err *e) {
  if (r->argc < 5) return fail(e, STAGE, EINVAL, "", "malformed capabilities record");
  uint64_t bnd, eff, inh, prm, amb;
  if (parse_hex(r->argv[0], &bnd) < 0 || parse_hex(r->argv[1], &eff) < 0 ||
      parse_hex(r->argv[2], &inh) < 0 || parse_hex(r->argv[3], &prm) < 0 ||
      parse_hex(r->argv[4], &amb) < 0)
    return fail(e, STAGE, EINVAL, "", "malformed capabilities record (bad hex mask)");
  int last = get_last_cap();

  /* 0. Regain the effective set after a keep-caps setresuid (best effort: if it fails, the drop
   * below reports the real problem). */
  uint64_t cur_eff, cur_prm, cur_inh;
  if (cap_get(&cur_eff, &cur_prm, &cur_inh) == 0 && (cur_prm & ~cur_eff))
    (void)cap_set(cur_prm, cur_prm, cur_inh);

  /* 1. Bounding set. Skip capabilities already gone, so an unprivileged caller that asks for
   * nothing beyond what it has does not need CAP_SETPCAP. */
  for (int c = 0; c <= last; c++) {
    if (bnd & (1ULL << c)) continue;
    int in = prctl(PR_CAPBSET_READ, (unsigned long)c, 0, 0, 0);
    if (in == 0) continue;
    if (in < 0 && errno == EINVAL) break; /* past the kernel's last capability */
    if (prctl(PR_CAPBSET_DROP, (unsigned long)c, 0, 0, 0) < 0) {
      int saved = errno;
      char what[24] = "cap ";
      if (c >= 10) what[4] = (char)('0' + c / 10), what[5] = (char)('0' + c % 10);
      else what[4] = (char)('0' + c);
      errno = saved;
      return fail(e, STAGE, errno, what, "cannot drop capability from the bounding set");
    }
  }

  /* 2. Effective, permitted, inheritable together: the kernel checks them as one transition. */
  uint64_t known = last >= 63 ? ~0ULL : ((1ULL << (last + 1)) - 1);
  if (cap_set(eff & known, prm & known, inh & known) < 0)
    return fail(e, STAGE, errno, "", "capset failed");

  /* 3. Ambient: start from empty, then raise. A raise the kernel refuses (capability not in
   * permitted and inheritable) is ignored, as runc only warns about it. */
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
    return fail(e, STAGE, errno, "", "cannot clear the ambient capability set");
  for (int c = 0; c <= last; c++) {
    if (!(amb & (1ULL << c))) continue;
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, (unsigned long)c, 0, 0) < 0 && errno != EPERM)
      return fail(e, STAGE, errno, "", "cannot raise ambient capability");
  }
  return 0;
}
