/* Small I/O helpers shared by the init stages. */
#include "helper.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int fail(struct err *e, const char *stage, int errnum, const char *path, const char *detail) {
  snprintf(e->stage, sizeof e->stage, "%s", stage ? stage : "");
  e->errnum = errnum;
  snprintf(e->path, sizeof e->path, "%s", path ? path : "");
  snprintf(e->detail, sizeof e->detail, "%s", detail ? detail : "");
  return -1;
}

int read_full(int fd, void *buf, size_t len) {
  char *p = buf;
  while (len > 0) {
    ssize_t n = read(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    if (n == 0) { errno = EPIPE; return -1; }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

int send_fds(int sock, const void *data, size_t len, const int *fds, int nfd) {
  union { struct cmsghdr h; char buf[CMSG_SPACE(64 * sizeof(int))]; } ctl;
  if (nfd < 0 || nfd > 64) { errno = EINVAL; return -1; }
  memset(&ctl, 0, sizeof ctl);
  struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
  if (nfd > 0) {
    m.msg_control = ctl.buf;
    m.msg_controllen = CMSG_SPACE((size_t)nfd * sizeof(int));
    struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN((size_t)nfd * sizeof(int));
    memcpy(CMSG_DATA(cm), fds, (size_t)nfd * sizeof(int));
  }
  ssize_t n;
  do n = sendmsg(sock, &m, MSG_NOSIGNAL); while (n < 0 && errno == EINTR);
  if (n < 0) return -1;
  if ((size_t)n != len) { errno = EIO; return -1; }
  return 0;
}

int write_full(int fd, const void *buf, size_t len) {
  const char *p = buf;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

/* Write the whole buffer to a file in one write(2) (proc files want a single write). */
int write_file(const char *path, const char *data, size_t len) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n;
  do n = write(fd, data, len); while (n < 0 && errno == EINTR);
  int saved = errno;
  close(fd);
  if (n < 0) { errno = saved; return -1; }
  if ((size_t)n != len) { errno = EIO; return -1; }
  return 0;
}

uint64_t parse_u64(const char *s) {
  return strtoull(s, NULL, 0);
}

/* s as a JSON string literal with its quotes, escaping '"', '\\' and control characters. */
char *json_quote(const char *s) {
  size_t n = strlen(s);
  char *out = malloc(n * 6 + 3);
  if (!out) return NULL;
  char *p = out;
  *p++ = '"';
  for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
    if (*c == '"' || *c == '\\') {
      *p++ = '\\';
      *p++ = (char)*c;
    } else if (*c < 0x20) {
      p += sprintf(p, "\\u%04x", *c);
    } else {
      *p++ = (char)*c;
    }
  }
  *p++ = '"';
  *p = 0;
  return out;
}
