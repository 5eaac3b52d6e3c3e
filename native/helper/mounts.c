/*
 * The rootfs: propagation, the mounts of config.json, devices, /dev symlinks, pivot_root, and the
 * readonly/masked paths. Every path inside the rootfs is resolved with openat2(RESOLVE_IN_ROOT),
 * so a symlink planted in an image can never make shoal mount or create outside the rootfs; the
 * mount itself then targets /proc/self/fd/N of the resolved directory or file.
 */
#include "helper.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static int sys_openat2(int dirfd, const char *path, int flags, mode_t mode, uint64_t resolve) {
  struct open_how how = {.flags = (uint64_t)flags, .mode = flags & O_CREAT ? mode : 0, .resolve = resolve};
  return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

#define IN_ROOT (RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)

/* Strip leading slashes: openat2 with RESOLVE_IN_ROOT wants a path relative to the root fd. */
static const char *rel(const char *p) {
  while (*p == '/') p++;
  return *p ? p : ".";
}

/* mkdir -p inside the root: every prefix is resolved with RESOLVE_IN_ROOT and a missing
 * component is created through a real fd of its already-resolved parent, so no symlink can
 * redirect the creation outside the root. Returns an O_PATH fd of the directory. */
static int mkdir_p_in(int rootfd, const char *path, mode_t mode) {
  char buf[PATH_MAX];
  snprintf(buf, sizeof buf, "%s", rel(path));
  int fd = sys_openat2(rootfd, buf, O_PATH | O_DIRECTORY | O_CLOEXEC, 0, IN_ROOT);
  if (fd >= 0 || errno != ENOENT) return fd;
  /* Usually only the last component is missing (a mount point in a fresh tmpfs): made in its
   * parent, resolved in the root like every prefix below. */
  char *last = strrchr(buf, '/');
  if (last && last[1] && strcmp(last + 1, ".") != 0 && strcmp(last + 1, "..") != 0) {
    *last = 0;
    int pfd = sys_openat2(rootfd, buf, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, IN_ROOT);
    *last = '/';
    if (pfd >= 0) {
      int rc = mkdirat(pfd, last + 1, mode), err = errno;
      close(pfd);
      if (rc < 0 && err != EEXIST) { errno = err; return -1; }
      return sys_openat2(rootfd, buf, O_PATH | O_DIRECTORY | O_CLOEXEC, 0, IN_ROOT);
    }
    if (errno != ENOENT) return -1;
  }
  int cur = sys_openat2(rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, IN_ROOT);
  if (cur < 0) return -1;
  char *comp = buf;
  for (;;) {
    char *slash = strchr(comp, '/');
    if (slash) *slash = 0;
    if (*comp && strcmp(comp, ".") != 0) {
      if (mkdirat(cur, comp, mode) < 0 && errno != EEXIST) { int s = errno; close(cur); errno = s; return -1; }
      /* Resolve the whole prefix again inside the root: comp may be a symlink. */
      int next = sys_openat2(rootfd, buf, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, IN_ROOT);
      if (next < 0) { int s = errno; close(cur); errno = s; return -1; }
      close(cur);
      cur = next;
    }
    if (!slash) break;
    *slash = '/';
    comp = slash + 1;
  }
  close(cur);
  return sys_openat2(rootfd, buf, O_PATH | O_DIRECTORY | O_CLOEXEC, 0, IN_ROOT);
}

/* The directory that holds `path` inside the root (created if missing), as a real directory fd
 * that can create entries (an O_PATH fd cannot); *name is set to the last component, inside buf.
 * Returns -1 with errno set. */
static int parent_dir_in(int rootfd, const char *path, char *buf, size_t n, const char **name) {
  snprintf(buf, n, "%s", rel(path));
  char *slash = strrchr(buf, '/');
  int pfd;
  if (slash) {
    *slash = 0;
    *name = slash + 1;
    pfd = mkdir_p_in(rootfd, buf, 0755);
  } else {
    *name = buf;
    pfd = dup(rootfd);
  }
  if (pfd < 0) return -1;
  char pp[64];
  snprintf(pp, sizeof pp, "/proc/self/fd/%d", pfd);
  int dfd = open(pp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int saved = errno;
  close(pfd);
  errno = saved;
  return dfd;
}

/* Resolve (creating if needed) a mount target inside the root: a directory, or a file when
 * want_file. Returns an O_PATH fd. */
static int target_in(int rootfd, const char *path, int want_file) {
  if (!want_file) return mkdir_p_in(rootfd, path, 0755);
  int fd = sys_openat2(rootfd, rel(path), O_PATH | O_CLOEXEC, 0, IN_ROOT);
  if (fd >= 0 || errno != ENOENT) return fd;
  char parent[PATH_MAX];
  const char *name;
  int dfd = parent_dir_in(rootfd, path, parent, sizeof parent, &name);
  if (dfd < 0) return -1;
  int f = openat(dfd, name, O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (f >= 0) close(f);
  close(dfd);
  return sys_openat2(rootfd, rel(path), O_PATH | O_CLOEXEC, 0, IN_ROOT);
}

/* The rootfs, opened once for every mount, device and link made in it before pivot_root (not
 * closed by its users). Opened after the rootfs's bind onto itself; forgotten when a mount covers
 * the rootfs's top directory (the path names the new mount from then on) and at pivot_root. */
static int root_cache = -1;
static char root_cache_path[PATH_MAX];
static struct stat root_cache_st;

void mounts_forget_root(void) {
  if (root_cache >= 0) close(root_cache);
  root_cache = -1;
}

static int open_root(const char *rootfs) {
  if (root_cache >= 0 && strcmp(root_cache_path, rootfs) == 0) return root_cache;
  mounts_forget_root();
  int fd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -1;
  if (fstat(fd, &root_cache_st) < 0 || strlen(rootfs) >= sizeof root_cache_path) {
    int err = errno;
    close(fd);
    errno = err ? err : ENAMETOOLONG;
    return -1;
  }
  snprintf(root_cache_path, sizeof root_cache_path, "%s", rootfs);
  return root_cache = fd;
}

/* Whether fd (a mount target) is the rootfs's top directory, so a mount there covers it. */
static int is_root_dir(int fd) {
  struct stat st;
  return root_cache >= 0 && fstat(fd, &st) == 0 && st.st_dev == root_cache_st.st_dev && st.st_ino == root_cache_st.st_ino;
}

static void fdpath(char *buf, size_t n, int fd) { snprintf(buf, n, "/proc/self/fd/%d", fd); }

/* The mount that contains path (longest mountinfo prefix), for making the rootfs parent private. */
static int parent_mount_of(const char *path, char *out, size_t outlen) {
  FILE *f = fopen("/proc/self/mountinfo", "re");
  if (!f) return -1;
  char line[4096];
  size_t best = 0;
  out[0] = 0;
  while (fgets(line, sizeof line, f)) {
    char mp[PATH_MAX];
    if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1) continue;
    size_t l = strlen(mp);
    int match = strcmp(mp, "/") == 0 || (strncmp(path, mp, l) == 0 && (path[l] == '/' || path[l] == 0));
    if (match && (l > best || !out[0])) {
      best = l;
      snprintf(out, outlen, "%s", mp);
    }
  }
  fclose(f);
  return out[0] ? 0 : -1;
}

/*
 * Before any mount: give "/" the configured propagation (default rslave, so nothing leaks back
 * to the host), make the rootfs's parent mount private (pivot_root refuses a shared parent), and
 * bind the rootfs onto itself so it is a mount point.
 */
int mounts_prepare_root(const struct plan *p, struct err *e) {
  const struct rec *rr = plan_find(p, OP_ROOTFS);
  if (!rr || rr->argc < 1) return fail(e, "rootfs", EINVAL, "", "no rootfs in plan");
  const char *rootfs = rr->argv[0];
  const struct rec *pr = plan_find(p, OP_ROOTFS_PROPAGATION);
  unsigned long prop = pr ? strtoul(pr->argv[0], NULL, 0) : (MS_SLAVE | MS_REC);
  if (mount(NULL, "/", NULL, prop, NULL) < 0) return fail(e, "rootfs propagation", errno, "/", "");
  char parent[PATH_MAX];
  if ((prop & MS_SHARED) && parent_mount_of(rootfs, parent, sizeof parent) == 0)
    if (mount(NULL, parent, NULL, MS_PRIVATE, NULL) < 0) return fail(e, "make rootfs parent private", errno, parent, "");
  if (mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL) < 0) return fail(e, "bind rootfs", errno, rootfs, "");
  mounts_forget_root(); /* (the path names the bind now) */
  return 0;
}

/* Flags that a bind remount must keep when they are locked (user namespaces) or already set. */
static unsigned long locked_flags(const char *path) {
  struct statvfs s;
  if (statvfs(path, &s) < 0) return 0;
  unsigned long f = 0;
  if (s.f_flag & ST_NOSUID) f |= MS_NOSUID;
  if (s.f_flag & ST_NODEV) f |= MS_NODEV;
  if (s.f_flag & ST_NOEXEC) f |= MS_NOEXEC;
  if (s.f_flag & ST_NOATIME) f |= MS_NOATIME;
  if (s.f_flag & ST_NODIRATIME) f |= MS_NODIRATIME;
  if (s.f_flag & ST_RELATIME) f |= MS_RELATIME;
  return f;
}

#define PROPAGATION (MS_SHARED | MS_SLAVE | MS_PRIVATE | MS_UNBINDABLE)
#define REMOUNT_FLAGS (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME | MS_STRICTATIME)

/* Apply propagation flags one at a time (mount(2) takes a single propagation type per call). */
static int apply_propagation(const char *target, unsigned long pflags, const char *dest, struct err *e) {
  static const unsigned long types[] = {MS_SHARED, MS_SLAVE, MS_PRIVATE, MS_UNBINDABLE};
  for (size_t i = 0; i < 4; i++) {
    if (!(pflags & types[i])) continue;
    if (mount(NULL, target, NULL, types[i] | (pflags & MS_REC), NULL) < 0)
      return fail(e, "mount propagation", errno, dest, "");
  }
  return 0;
}

static int idmap_fds[256];
static int n_idmap_fds = 0;

/* Record the detached idmapped trees the parent half prepared (OP_IDMAP_MOUNT, by index). */
void mounts_set_idmap_fds(const int *fds, int n) {
  if (n > 256) n = 256;
  for (int i = 0; i < n; i++) idmap_fds[i] = fds[i];
  n_idmap_fds = n;
}

/* Resolve dest in the root again (after a mount, the old fd names the covered directory). */
static int reopen_target(const char *rootfs, const char *dest, int want_file) {
  int rootfd = open_root(rootfs);
  if (rootfd < 0) return -1;
  return target_in(rootfd, dest, want_file);
}

/* Copy one regular file's bytes from sfd to dfd. */
static int copy_bytes(int sfd, int dfd) {
  char buf[65536];
  for (;;) {
    ssize_t n = read(sfd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    if (n == 0) return 0;
    if (write_full(dfd, buf, (size_t)n) < 0) return -1;
  }
}

/*
 * tmpcopyup: copy the tree under sfd into dfd, keeping owner, mode and symlinks; device nodes,
 * fifos and sockets are recreated with mknod. Both fds are directories; neither is closed.
 */
int copy_tree(int sfd, int dfd) {
  struct stat st;
  if (fstat(sfd, &st) < 0) return -1;
  if (fchown(dfd, st.st_uid, st.st_gid) < 0 && errno != EPERM && errno != EINVAL) return -1;
  if (fchmod(dfd, st.st_mode & 07777) < 0) return -1;
  int dup_fd = dup(sfd);
  if (dup_fd < 0) return -1;
  DIR *d = fdopendir(dup_fd);
  if (!d) { close(dup_fd); return -1; }
  rewinddir(d);
  int rc = 0;
  struct dirent *de;
  while (rc == 0 && (de = readdir(d))) {
    const char *n = de->d_name;
    if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0) continue;
    struct stat es;
    if (fstatat(sfd, n, &es, AT_SYMLINK_NOFOLLOW) < 0) { rc = -1; break; }
    if (S_ISDIR(es.st_mode)) {
      if (mkdirat(dfd, n, 0700) < 0 && errno != EEXIST) { rc = -1; break; }
      int cs = openat(sfd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      int cd = openat(dfd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (cs < 0 || cd < 0) rc = -1;
      else rc = copy_tree(cs, cd);
      if (cs >= 0) close(cs);
      if (cd >= 0) close(cd);
      continue;
    }
    if (S_ISREG(es.st_mode)) {
      int fs = openat(sfd, n, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
      int fd = fs < 0 ? -1 : openat(dfd, n, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
      if (fs < 0 || fd < 0 || copy_bytes(fs, fd) < 0) rc = -1;
      if (fs >= 0) close(fs);
      if (fd >= 0) close(fd);
    } else if (S_ISLNK(es.st_mode)) {
      char target[PATH_MAX];
      ssize_t l = readlinkat(sfd, n, target, sizeof target - 1);
      if (l < 0) { rc = -1; break; }
      target[l] = 0;
      if (symlinkat(target, dfd, n) < 0) rc = -1;
    } else if (mknodat(dfd, n, es.st_mode, es.st_rdev) < 0) {
      rc = -1;
    }
    if (rc == 0 && fchownat(dfd, n, es.st_uid, es.st_gid, AT_SYMLINK_NOFOLLOW) < 0 && errno != EPERM && errno != EINVAL) rc = -1;
    if (rc == 0 && !S_ISLNK(es.st_mode) && fchmodat(dfd, n, es.st_mode & 07777, 0) < 0) rc = -1;
  }
  int saved = errno;
  closedir(d);
  errno = saved;
  return rc;
}

/* OP_MOUNT's optional trailing argument i, or def when the record is shorter. */
static const char *opt_arg(const struct rec *r, uint32_t i, const char *def) {
  return r->argc > i && r->argv[i][0] ? r->argv[i] : def;
}

/*
 * OP_MOUNT: source, dest, fstype, flags, propagation flags, data, kind [, rec attr set, rec attr
 * clear, idmap index, tmpcopyup].
 * kind "bind": bind (MS_REC for rbind), or move_mount of the idmapped tree the parent half made,
 * then a remount carrying the requested flags.
 * kind "remount": remount an earlier mount with new flags (e.g. the v1 cgroup tmpfs read-only).
 * kind "attr": mount_setattr of an earlier mount with the rec attr set/clear, on the mount and
 * every mount below it when flags has MS_REC (the v1 cgroup binds' flags in one call).
 * kind "fs": a filesystem mount; sysfs and mqueue fall back to binding the host's when the
 * kernel refuses a new instance (user namespace without its own network/ipc namespace).
 * Recursive attributes (rro, rnosuid ...) are applied last with mount_setattr(AT_RECURSIVE).
 */
int mounts_apply(const struct rec *r, const char *rootfs, int userns, struct err *e) {
  if (r->argc < 7) return fail(e, "mount", EINVAL, "", "short record");
  const char *src = r->argv[0], *dest = r->argv[1], *fstype = r->argv[2];
  unsigned long flags = strtoul(r->argv[3], NULL, 0), pflags = strtoul(r->argv[4], NULL, 0);
  const char *data = r->argv[5], *kind = r->argv[6];
  uint64_t attr_set = strtoull(opt_arg(r, 7, "0"), NULL, 0), attr_clr = strtoull(opt_arg(r, 8, "0"), NULL, 0);
  int idmap = atoi(opt_arg(r, 9, "-1"));
  int copyup = strcmp(opt_arg(r, 10, "0"), "1") == 0;
  char where[PATH_MAX + 64];
  snprintf(where, sizeof where, "%s on %s%s", fstype[0] ? fstype : src, rootfs, dest);
  int bind = strcmp(kind, "bind") == 0;
  int want_file = 0;
  if (idmap >= n_idmap_fds) return fail(e, "mount", EINVAL, where, "idmap index out of range");
  if (bind) {
    struct stat st;
    if (stat(src, &st) < 0) return fail(e, "mount", errno, src, "bind source");
    want_file = !S_ISDIR(st.st_mode);
  }
  int tfd = reopen_target(rootfs, dest, want_file);
  if (tfd < 0) return fail(e, "mount", errno, where, "mount point");
  char target[64];
  fdpath(target, sizeof target, tfd);
  int rc = 0;
  /* A mount on the rootfs's top directory: the rootfs's path names that mount afterwards. */
  if (is_root_dir(tfd)) mounts_forget_root();
  int attr_only = strcmp(kind, "attr") == 0;
  if (attr_only) {
    /* Flags for a whole tree at once (MS_REC in flags: the mount and every mount below it). */
    struct mount_attr a = {.attr_set = attr_set, .attr_clr = attr_clr};
    if (mount_setattr(tfd, "", AT_EMPTY_PATH | ((flags & MS_REC) ? AT_RECURSIVE : 0), &a, sizeof a) < 0)
      rc = fail(e, "mount_setattr", errno, where, "mount attributes");
  } else if (strcmp(kind, "remount") == 0) {
    if (mount(NULL, target, NULL, MS_REMOUNT | (flags & ~PROPAGATION), data[0] ? data : NULL) < 0)
      rc = fail(e, "remount", errno, where, "");
  } else if (bind) {
    if (idmap >= 0) {
      if (move_mount(idmap_fds[idmap], "", tfd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
        rc = fail(e, "mount", errno, where, "move idmapped mount");
      close(idmap_fds[idmap]);
      idmap_fds[idmap] = -1;
    } else if (mount(src, target, NULL, MS_BIND | (flags & MS_REC), NULL) < 0) {
      rc = fail(e, "mount", errno, where, "");
    }
    if (rc == 0 && (flags & REMOUNT_FLAGS)) {
      /* Reopen: the fd still names the directory under the new mount's mountpoint. */
      close(tfd);
      tfd = reopen_target(rootfs, dest, want_file);
      if (tfd < 0) return fail(e, "remount", errno, where, "mount point");
      fdpath(target, sizeof target, tfd);
      unsigned long f = MS_BIND | MS_REMOUNT | (flags & REMOUNT_FLAGS) | locked_flags(target);
      if (!(flags & MS_RDONLY)) f &= ~MS_RDONLY;
      if (mount(NULL, target, NULL, f, NULL) < 0) rc = fail(e, "remount", errno, where, "");
    }
  } else {
    /* tmpcopyup: the fd opened before the mount keeps naming the covered directory. */
    int lower = -1;
    if (copyup) {
      lower = open(target, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (lower < 0) { close(tfd); return fail(e, "tmpcopyup", errno, where, "open the directory to copy"); }
    }
    if (mount(src, target, fstype, flags & ~PROPAGATION, data[0] ? data : NULL) < 0) {
      int err = errno;
      const char *fallback = NULL;
      if ((err == EPERM || err == EACCES) && userns) {
        if (strcmp(fstype, "sysfs") == 0) fallback = "/sys";
        else if (strcmp(fstype, "mqueue") == 0) fallback = "/dev/mqueue";
        else if (strcmp(fstype, "cgroup2") == 0 || strcmp(fstype, "cgroup") == 0) fallback = "/sys/fs/cgroup";
      }
      if (!fallback || mount(fallback, target, NULL, MS_BIND | MS_REC, NULL) < 0) rc = fail(e, "mount", err, where, "");
      else if ((flags & MS_RDONLY) && mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | locked_flags(target), NULL) < 0)
        rc = fail(e, "remount", errno, where, "");
    } else if (copyup) {
      int upper = reopen_target(rootfs, dest, 0);
      char up[64];
      fdpath(up, sizeof up, upper);
      int ufd = upper < 0 ? -1 : open(up, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (ufd < 0 || copy_tree(lower, ufd) < 0) rc = fail(e, "tmpcopyup", errno, where, "copy the directory's content");
      if (ufd >= 0) close(ufd);
      if (upper >= 0) close(upper);
    }
    if (lower >= 0) close(lower);
  }
  if (rc == 0 && !attr_only && (attr_set || attr_clr)) {
    close(tfd);
    tfd = reopen_target(rootfs, dest, want_file);
    if (tfd < 0) return fail(e, "mount_setattr", errno, where, "mount point");
    struct mount_attr a = {.attr_set = attr_set, .attr_clr = attr_clr};
    if (mount_setattr(tfd, "", AT_EMPTY_PATH | AT_RECURSIVE, &a, sizeof a) < 0)
      rc = fail(e, "mount_setattr", errno, where, "recursive mount attributes");
  }
  if (rc == 0 && (pflags & PROPAGATION)) {
    close(tfd);
    tfd = reopen_target(rootfs, dest, want_file);
    if (tfd < 0) return fail(e, "mount propagation", errno, where, "mount point");
    fdpath(target, sizeof target, tfd);
    rc = apply_propagation(target, pflags, where, e);
  }
  close(tfd);
  return rc;
}

/*
 * OP_DEVICE: path, type, major, minor, mode, uid, gid. In a user namespace mknod is not allowed,
 * so the host's node is bind-mounted instead (the same path on the host, as runc does).
 */
int device_create(const struct rec *r, const char *rootfs, int userns, struct err *e) {
  if (r->argc < 7) return fail(e, "device", EINVAL, "", "short record");
  const char *path = r->argv[0];
  char type = r->argv[1][0];
  unsigned maj = (unsigned)strtoul(r->argv[2], NULL, 0), min = (unsigned)strtoul(r->argv[3], NULL, 0);
  mode_t mode = (mode_t)strtoul(r->argv[4], NULL, 8);
  uid_t uid = (uid_t)strtoul(r->argv[5], NULL, 0);
  gid_t gid = (gid_t)strtoul(r->argv[6], NULL, 0);
  int rootfd = open_root(rootfs);
  if (rootfd < 0) return fail(e, "open rootfs", errno, rootfs, "");
  char where[PATH_MAX + 16];
  snprintf(where, sizeof where, "%s%s", rootfs, path);
  if (userns) {
    int tfd = target_in(rootfd, path, 1);
    if (tfd < 0) return fail(e, "create device", errno, where, "");
    char target[64];
    fdpath(target, sizeof target, tfd);
    int rc = mount(path, target, NULL, MS_BIND, NULL);
    int err = errno;
    close(tfd);
    return rc < 0 ? fail(e, "bind device", err, where, "") : 0;
  }
  char parent[PATH_MAX];
  const char *name;
  int dfd = parent_dir_in(rootfd, path, parent, sizeof parent, &name);
  if (dfd < 0) return fail(e, "create device", errno, where, "parent directory");
  mode_t ftype = type == 'b' ? S_IFBLK : type == 'p' ? S_IFIFO : S_IFCHR;
  unlinkat(dfd, name, 0);
  int rc = 0;
  if (mknodat(dfd, name, ftype | (mode & 07777), makedev(maj, min)) < 0) rc = fail(e, "mknod", errno, where, "");
  else if (fchownat(dfd, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0) rc = fail(e, "chown device", errno, where, "");
  else if (fchmodat(dfd, name, mode & 07777, 0) < 0) rc = fail(e, "chmod device", errno, where, "");
  close(dfd);
  return rc;
}

/* OP_SYMLINK: target, linkpath. An existing link is left alone. */
int symlink_create(const struct rec *r, const char *rootfs, struct err *e) {
  if (r->argc < 2) return fail(e, "symlink", EINVAL, "", "short record");
  char where[PATH_MAX + 16];
  snprintf(where, sizeof where, "%s%s", rootfs, r->argv[1]);
  int rootfd = open_root(rootfs);
  if (rootfd < 0) return fail(e, "open rootfs", errno, rootfs, "");
  char parent[PATH_MAX];
  const char *name;
  int dfd = parent_dir_in(rootfd, r->argv[1], parent, sizeof parent, &name);
  if (dfd < 0) return fail(e, "symlink", errno, where, "");
  int rc = symlinkat(r->argv[0], dfd, name);
  int err = errno;
  close(dfd);
  if (rc < 0 && err != EEXIST) return fail(e, "symlink", err, where, "");
  return 0;
}

/* OP_MKDIR: path, mode (octal). */
int mkdir_in_root(const struct rec *r, const char *rootfs, struct err *e) {
  int rootfd = open_root(rootfs);
  if (rootfd < 0) return fail(e, "open rootfs", errno, rootfs, "");
  int fd = mkdir_p_in(rootfd, r->argv[0], r->argc > 1 ? (mode_t)strtoul(r->argv[1], NULL, 8) : 0755);
  if (fd < 0) return fail(e, "mkdir", errno, r->argv[0], "");
  close(fd);
  return 0;
}

/*
 * Switch to the rootfs. "pivot": pivot_root(".", ".") stacks the old root under the new one; it
 * is made rslave (so the unmount does not propagate to the host) and lazily detached.
 * "chroot" (--no-pivot): move the rootfs over / and chroot into it.
 */
int do_pivot(const char *rootfs, const char *how, struct err *e) {
  mounts_forget_root();
  if (strcmp(how, "chroot") == 0 || strcmp(how, "move") == 0) {
    if (chdir(rootfs) < 0) return fail(e, "chdir rootfs", errno, rootfs, "");
    if (mount(rootfs, "/", NULL, MS_MOVE, NULL) < 0) return fail(e, "move rootfs", errno, rootfs, "");
    if (chroot(".") < 0) return fail(e, "chroot", errno, rootfs, "");
    if (chdir("/") < 0) return fail(e, "chdir /", errno, "/", "");
    return 0;
  }
  int oldroot = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (oldroot < 0) return fail(e, "open /", errno, "/", "");
  int newroot = open(rootfs, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (newroot < 0) { close(oldroot); return fail(e, "open rootfs", errno, rootfs, ""); }
  int rc = 0;
  if (fchdir(newroot) < 0) rc = fail(e, "chdir rootfs", errno, rootfs, "");
  else if (syscall(SYS_pivot_root, ".", ".") < 0) rc = fail(e, "pivot_root", errno, rootfs, "");
  else if (fchdir(oldroot) < 0) rc = fail(e, "chdir old root", errno, "/", "");
  else if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0) rc = fail(e, "make old root rslave", errno, "/", "");
  else if (umount2(".", MNT_DETACH) < 0) rc = fail(e, "unmount old root", errno, "/", "");
  else if (chdir("/") < 0) rc = fail(e, "chdir /", errno, "/", "");
  close(oldroot);
  close(newroot);
  return rc;
}

/* Remount / read-only, keeping the flags a user namespace locks. */
int readonly_root(struct err *e) {
  if (mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | locked_flags("/"), NULL) < 0)
    return fail(e, "remount / read-only", errno, "/", "");
  return 0;
}

/* maskedPaths: a directory gets an empty read-only tmpfs, anything else /dev/null. */
int mask_path(const char *path, struct err *e) {
  struct stat st;
  if (stat(path, &st) < 0) {
    if (errno == ENOENT || errno == ENOTDIR) return 0;
    return fail(e, "mask", errno, path, "");
  }
  int rc = S_ISDIR(st.st_mode) ? mount("tmpfs", path, "tmpfs", MS_RDONLY, NULL)
                               : mount("/dev/null", path, NULL, MS_BIND, NULL);
  if (rc < 0) return fail(e, "mask", errno, path, "");
  return 0;
}

/* readonlyPaths: bind the path onto itself, then remount it read-only. */
int readonly_path(const char *path, struct err *e) {
  if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) < 0) {
    if (errno == ENOENT || errno == ENOTDIR) return 0;
    return fail(e, "readonly path", errno, path, "");
  }
  if (mount(NULL, path, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC | locked_flags(path), NULL) < 0)
    return fail(e, "readonly path remount", errno, path, "");
  return 0;
}
