/*
 * cloexec_from(low): marks every fd from `low` up close-on-exec. Shared by the helper (before the
 * container's execve and a hook's) and the addon (before the runtime's hooks).
 * close_range(CLOSE_RANGE_CLOEXEC) needs Linux 5.11; before it (ENOSYS, or EINVAL on 5.9 and
 * 5.10) each open fd is marked: those /proc/self/fd lists, or, without a /proc, every number
 * below RLIMIT_NOFILE (at most 2^20).
 */
#ifndef SHOAL_CLOEXEC_H
#define SHOAL_CLOEXEC_H

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

static inline void cloexec_from(int low) {
  if (syscall(SYS_close_range, (unsigned)low, ~0U, CLOSE_RANGE_CLOEXEC) == 0) return;
  DIR *d = opendir("/proc/self/fd");
  if (d) {
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
      char *end;
      long fd = strtol(de->d_name, &end, 10);
      if (*end == 0 && end != de->d_name && fd >= low && fd != dirfd(d)) fcntl((int)fd, F_SETFD, fcntl((int)fd, F_GETFD) | FD_CLOEXEC);
    }
    closedir(d);
    return;
  }
  struct rlimit rl;
  rlim_t max = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (1u << 20) ? rl.rlim_cur : (1u << 20);
  for (rlim_t fd = (rlim_t)low; fd < max; fd++) fcntl((int)fd, F_SETFD, FD_CLOEXEC);
}

#endif
