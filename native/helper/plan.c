/* Reading the plan that TypeScript compiled from config.json (format in helper.h). */
#include "helper.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static uint32_t rd32(const unsigned char *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/*
 * Read "u32 length | body" from fd and decode the body into p: the record headers, then one block
 * of NUL-terminated strings that the records' argv point into (it stays allocated). Returns 0 or
 * -1 with errno (EINVAL for a malformed plan).
 */
int plan_read(int fd, struct plan *p) {
  unsigned char lenbuf[4];
  if (read_full(fd, lenbuf, 4) < 0) return -1;
  uint32_t len = rd32(lenbuf);
  if (len < 8 || len > (64u << 20)) { errno = EINVAL; return -1; }
  /* One spare NUL after the body: a truncated last string still ends inside the buffer. */
  unsigned char *buf = malloc((size_t)len + 1);
  if (!buf) return -1;
  if (read_full(fd, buf, len) < 0) { free(buf); return -1; }
  buf[len] = 0;
  if (rd32(buf) != PLAN_MAGIC) { free(buf); errno = EINVAL; return -1; }
  p->n = rd32(buf + 4);
  if (p->n > (len - 8) / 8) { free(buf); errno = EINVAL; return -1; }
  p->recs = calloc(p->n ? p->n : 1, sizeof(struct rec));
  if (!p->recs) { free(buf); return -1; }
  size_t off = 8 + (size_t)p->n * 8;
  for (uint32_t i = 0; i < p->n; i++) {
    struct rec *r = &p->recs[i];
    r->op = rd32(buf + 8 + (size_t)i * 8);
    r->argc = rd32(buf + 12 + (size_t)i * 8);
    if (r->argc > len - off) goto bad;
    r->argv = calloc(r->argc + 1, sizeof(char *));
    if (!r->argv) goto bad;
    for (uint32_t a = 0; a < r->argc; a++) {
      if (off >= len) goto bad;
      r->argv[a] = (char *)buf + off;
      unsigned char *nul = memchr(buf + off, 0, len - off);
      if (!nul) goto bad;
      off = (size_t)(nul - buf) + 1;
    }
  }
  if (off != len) goto bad;
  return 0;
bad:
  for (uint32_t i = 0; i < p->n; i++) free(p->recs[i].argv);
  free(p->recs);
  free(buf);
  errno = EINVAL;
  return -1;
}

/* First record with this opcode, or NULL. */
const struct rec *plan_find(const struct plan *p, uint32_t op) {
  for (uint32_t i = 0; i < p->n; i++)
    if (p->recs[i].op == op) return &p->recs[i];
  return NULL;
}
