/*
 * devfilter: the cgroup v2 device controller of shoal. cgroup v2 has no devices.allow/deny
 * files; access to device nodes is decided by a BPF_PROG_TYPE_CGROUP_DEVICE program attached to
 * the cgroup directory (BPF_CGROUP_DEVICE). This module turns a list of already-normalized rules
 * (every rule has the opposite action of the default) into BPF instructions, loads them with
 * bpf(BPF_PROG_LOAD) and attaches them, replacing the programs attached before.
 *
 * Written in the C/C++ common subset: the Node addon (native/addon/addon.cc) compiles it by
 * including devfilter.c, so no extra build target is needed.
 */
#ifndef SHOAL_DEVFILTER_H
#define SHOAL_DEVFILTER_H

#include <stddef.h>
#include <stdint.h>
#include <linux/bpf.h>

/* Device types, as the kernel encodes them in bpf_cgroup_dev_ctx.access_type (low 16 bits). */
#define SHOAL_DEV_BLOCK 1 /* BPF_DEVCG_DEV_BLOCK */
#define SHOAL_DEV_CHAR 2  /* BPF_DEVCG_DEV_CHAR */
#define SHOAL_DEV_ALL 0   /* any type */

/* Access bits, as the kernel encodes them in access_type >> 16. */
#define SHOAL_ACC_MKNOD 1 /* BPF_DEVCG_ACC_MKNOD */
#define SHOAL_ACC_READ 2  /* BPF_DEVCG_ACC_READ */
#define SHOAL_ACC_WRITE 4 /* BPF_DEVCG_ACC_WRITE */
#define SHOAL_ACC_ALL 7

/* One rule: matches when type, major, minor match (-1 = any) and the access is in `access`. */
struct shoal_dev_rule {
  int type;      /* SHOAL_DEV_* */
  int64_t major; /* -1 = wildcard */
  int64_t minor; /* -1 = wildcard */
  int access;    /* SHOAL_ACC_* bits */
};

/* Most rules one program may hold (each takes at most 9 instructions). */
#define SHOAL_DEVFILTER_MAX_RULES 4096

/*
 * Instructions for `rules`: a matching rule returns !default_allow, no match returns
 * default_allow. Writes at most `cap` instructions to `out`; returns how many it needs
 * (call with cap 0 to size the buffer), or -1 for an invalid rule.
 */
int shoal_devfilter_build(const struct shoal_dev_rule *rules, size_t n, int default_allow,
                          struct bpf_insn *out, size_t cap);

/*
 * Load `insns` as a cgroup device program and attach it to the cgroup directory `dirfd`
 * (BPF_F_ALLOW_MULTI), then detach every program that was attached there before, so the
 * new rules replace the old ones without a window where no filter is in force.
 * On success returns 0 and stores the new program's id; on failure returns -errno and, for
 * a verifier rejection, leaves the verifier log in `log` (may be NULL).
 */
int shoal_devfilter_attach(int dirfd, const struct bpf_insn *insns, size_t n, uint32_t *prog_id,
                           char *log, size_t log_size);

/* Number of device programs attached to `dirfd` (BPF_PROG_QUERY), or -errno. */
int shoal_devfilter_count(int dirfd);

/* Detach every device program of `dirfd`; returns how many were detached, or -errno. */
int shoal_devfilter_detach_all(int dirfd);

#endif
