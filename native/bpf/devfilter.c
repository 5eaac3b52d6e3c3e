/*
 * devfilter: builds, loads and attaches the BPF_PROG_TYPE_CGROUP_DEVICE program of a cgroup v2
 * container (see devfilter.h). The program, for the context struct bpf_cgroup_dev_ctx
 * { u32 access_type; u32 major; u32 minor; }:
 *
 *     r2 = ctx->access_type & 0xffff      device type (1 block, 2 char)
 *     r3 = ctx->access_type >> 16         requested access (1 mknod, 2 read, 4 write)
 *     r4 = ctx->major; r5 = ctx->minor
 *     per rule:  if r2 != type goto next                    (omitted for type "a")
 *                r1 = r3; r1 &= access; if r1 != r3 goto next  (omitted for "rwm")
 *                if r4 != major goto next                   (omitted for "*")
 *                if r5 != minor goto next                   (omitted for "*")
 *                r0 = !default; exit
 *     r0 = default; exit
 *
 * Raw instruction encoding, no libbpf: the kernel's UAPI header and the bpf(2) syscall only.
 */
#include "devfilter.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Opcodes used (linux/bpf_common.h + linux/bpf.h). */
#define OP_LDX_W (BPF_LDX | BPF_MEM | BPF_W)     /* dst = *(u32 *)(src + off) */
#define OP_AND32_K (BPF_ALU | BPF_AND | BPF_K)   /* dst &= imm (32 bit) */
#define OP_RSH32_K (BPF_ALU | BPF_RSH | BPF_K)   /* dst >>= imm (32 bit) */
#define OP_MOV32_X (BPF_ALU | BPF_MOV | BPF_X)   /* dst = src (32 bit) */
#define OP_MOV64_K (BPF_ALU64 | BPF_MOV | BPF_K) /* dst = imm */
#define OP_JNE_K (BPF_JMP | BPF_JNE | BPF_K)     /* if dst != imm goto +off */
#define OP_JNE_X (BPF_JMP | BPF_JNE | BPF_X)     /* if dst != src goto +off */
#define OP_EXIT (BPF_JMP | BPF_EXIT)

static struct bpf_insn mk_insn(int code, int dst, int src, int off, int32_t imm) {
  struct bpf_insn i;
  memset(&i, 0, sizeof i);
  i.code = (uint8_t)code;
  i.dst_reg = (uint8_t)dst;
  i.src_reg = (uint8_t)src;
  i.off = (int16_t)off;
  i.imm = imm;
  return i;
}

/* Appends one instruction when there is room; always counts it. */
static void emit(struct bpf_insn *out, size_t cap, size_t *n, struct bpf_insn i) {
  if (*n < cap) out[*n] = i;
  (*n)++;
}

int shoal_devfilter_build(const struct shoal_dev_rule *rules, size_t n, int default_allow,
                          struct bpf_insn *out, size_t cap) {
  size_t k = 0;
  if (n > SHOAL_DEVFILTER_MAX_RULES) return -1;
  emit(out, cap, &k, mk_insn(OP_LDX_W, 2, 1, 0, 0));
  emit(out, cap, &k, mk_insn(OP_AND32_K, 2, 0, 0, 0xffff));
  emit(out, cap, &k, mk_insn(OP_LDX_W, 3, 1, 0, 0));
  emit(out, cap, &k, mk_insn(OP_RSH32_K, 3, 0, 0, 16));
  emit(out, cap, &k, mk_insn(OP_LDX_W, 4, 1, 4, 0));
  emit(out, cap, &k, mk_insn(OP_LDX_W, 5, 1, 8, 0));
  for (size_t r = 0; r < n; r++) {
    const struct shoal_dev_rule *rule = &rules[r];
    if (rule->type != SHOAL_DEV_ALL && rule->type != SHOAL_DEV_BLOCK && rule->type != SHOAL_DEV_CHAR) return -1;
    if (rule->access <= 0 || rule->access > SHOAL_ACC_ALL) return -1;
    if (rule->major < -1 || rule->major > 0x7fffffff || rule->minor < -1 || rule->minor > 0x7fffffff) return -1;
    int has_type = rule->type != SHOAL_DEV_ALL;
    int has_access = rule->access != SHOAL_ACC_ALL;
    int has_major = rule->major >= 0;
    int has_minor = rule->minor >= 0;
    /* Block length: the checks, then "r0 = action; exit". */
    int len = has_type + 3 * has_access + has_major + has_minor + 2;
    int pos = 0; /* index of the next instruction inside the block */
    if (has_type) {
      emit(out, cap, &k, mk_insn(OP_JNE_K, 2, 0, len - 1 - pos, rule->type));
      pos++;
    }
    if (has_access) {
      emit(out, cap, &k, mk_insn(OP_MOV32_X, 1, 3, 0, 0));
      emit(out, cap, &k, mk_insn(OP_AND32_K, 1, 0, 0, rule->access));
      pos += 2;
      emit(out, cap, &k, mk_insn(OP_JNE_X, 1, 3, len - 1 - pos, 0));
      pos++;
    }
    if (has_major) {
      emit(out, cap, &k, mk_insn(OP_JNE_K, 4, 0, len - 1 - pos, (int32_t)rule->major));
      pos++;
    }
    if (has_minor) {
      emit(out, cap, &k, mk_insn(OP_JNE_K, 5, 0, len - 1 - pos, (int32_t)rule->minor));
      pos++;
    }
    emit(out, cap, &k, mk_insn(OP_MOV64_K, 0, 0, 0, default_allow ? 0 : 1));
    emit(out, cap, &k, mk_insn(OP_EXIT, 0, 0, 0, 0));
  }
  emit(out, cap, &k, mk_insn(OP_MOV64_K, 0, 0, 0, default_allow ? 1 : 0));
  emit(out, cap, &k, mk_insn(OP_EXIT, 0, 0, 0, 0));
  return (int)k;
}

static long sys_bpf(int cmd, union bpf_attr *attr) {
  long rc;
  do {
    rc = syscall(__NR_bpf, cmd, attr, sizeof *attr);
  } while (rc < 0 && errno == EINTR);
  return rc;
}

/* Ids of the device programs attached to dirfd; returns the count (may exceed cap) or -errno. */
static int query_ids(int dirfd, uint32_t *ids, uint32_t cap) {
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.query.target_fd = (uint32_t)dirfd;
  attr.query.attach_type = BPF_CGROUP_DEVICE;
  attr.query.prog_ids = (uint64_t)(uintptr_t)ids;
  attr.query.prog_cnt = cap;
  if (sys_bpf(BPF_PROG_QUERY, &attr) < 0) return errno == ENOSPC ? (int)attr.query.prog_cnt : -errno;
  return (int)attr.query.prog_cnt;
}

/* Detach the program with `id` from dirfd. */
static int detach_id(int dirfd, uint32_t id) {
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.prog_id = id;
  long fd = sys_bpf(BPF_PROG_GET_FD_BY_ID, &attr);
  if (fd < 0) return errno == ENOENT ? 0 : -errno;
  memset(&attr, 0, sizeof attr);
  attr.target_fd = (uint32_t)dirfd;
  attr.attach_bpf_fd = (uint32_t)fd;
  attr.attach_type = BPF_CGROUP_DEVICE;
  int rc = sys_bpf(BPF_PROG_DETACH, &attr) < 0 ? -errno : 0;
  close((int)fd);
  return rc == -ENOENT ? 0 : rc;
}

#define MAX_OLD 64

int shoal_devfilter_attach(int dirfd, const struct bpf_insn *insns, size_t n, uint32_t *prog_id,
                           char *log, size_t log_size) {
  uint32_t old[MAX_OLD];
  int nold = query_ids(dirfd, old, MAX_OLD);
  if (nold < 0) return nold;
  if (nold > MAX_OLD) nold = MAX_OLD;

  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  attr.insns = (uint64_t)(uintptr_t)insns;
  attr.insn_cnt = (uint32_t)n;
  attr.license = (uint64_t)(uintptr_t) "Apache";
  long fd = sys_bpf(BPF_PROG_LOAD, &attr);
  if (fd < 0 && errno == EACCES && log && log_size > 0) {
    /* Verifier rejection: load again with the log on, for the error message. */
    log[0] = 0;
    attr.log_buf = (uint64_t)(uintptr_t)log;
    attr.log_size = (uint32_t)log_size;
    attr.log_level = 1;
    fd = sys_bpf(BPF_PROG_LOAD, &attr);
    if (fd >= 0) close((int)fd), fd = -1, errno = EACCES;
  }
  if (fd < 0) return -errno;

  struct bpf_prog_info info;
  memset(&info, 0, sizeof info);
  memset(&attr, 0, sizeof attr);
  attr.info.bpf_fd = (uint32_t)fd;
  attr.info.info_len = sizeof info;
  attr.info.info = (uint64_t)(uintptr_t)&info;
  if (sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &attr) < 0) {
    int e = errno;
    close((int)fd);
    return -e;
  }

  memset(&attr, 0, sizeof attr);
  attr.target_fd = (uint32_t)dirfd;
  attr.attach_bpf_fd = (uint32_t)fd;
  attr.attach_type = BPF_CGROUP_DEVICE;
  attr.attach_flags = BPF_F_ALLOW_MULTI;
  if (sys_bpf(BPF_PROG_ATTACH, &attr) < 0) {
    int e = errno;
    close((int)fd);
    return -e;
  }
  /* Attached programs are held by the cgroup; our fd is no longer needed. */
  close((int)fd);
  for (int i = 0; i < nold; i++) {
    if (old[i] == info.id) continue;
    int rc = detach_id(dirfd, old[i]);
    if (rc < 0) return rc;
  }
  if (prog_id) *prog_id = info.id;
  return 0;
}

int shoal_devfilter_count(int dirfd) {
  uint32_t ids[1];
  return query_ids(dirfd, ids, 0);
}

int shoal_devfilter_detach_all(int dirfd) {
  uint32_t ids[MAX_OLD];
  int n = query_ids(dirfd, ids, MAX_OLD);
  if (n < 0) return n;
  if (n > MAX_OLD) n = MAX_OLD;
  for (int i = 0; i < n; i++) {
    int rc = detach_id(dirfd, ids[i]);
    if (rc < 0) return rc;
  }
  return n;
}
