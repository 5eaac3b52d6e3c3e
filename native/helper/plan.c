/* Reading the plan that TypeScript compiled from config.json (format in helper.h). */
#include "helper.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static uint32_t rd32(const unsigned char *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* Read "u32 length | body" from fd and decode the body into p. Returns 0 or -1 with errno. */
int plan_read(int fd, struct plan *p) {
  unsigned char lenbuf[4];
  if (read_full(fd, lenbuf, 4) < 0) return -1;
  uint32_t len = rd32(lenbuf);
  if (len < 8 || len > (64u << 20)) { errno = EINVAL; return -1; }
  unsigned char *buf = malloc(len);
  if (!buf) return -1;
  if (read_full(fd, buf, len) < 0) { free(buf); return -1; }
  if (rd32(buf) != PLAN_MAGIC) { free(buf); errno = EINVAL; return -1; }
  p->n = rd32(buf + 4);
  p->recs = calloc(p->n ? p->n : 1, sizeof(struct rec));
  if (!p->recs) { free(buf); return -1; }
  size_t off = 8;
  for (uint32_t i = 0; i < p->n; i++) {
    if (off + 8 > len) goto bad;
    struct rec *r = &p->recs[i];
    r->op = rd32(buf + off);
    r->argc = rd32(buf + off + 4);
    off += 8;
    if (r->argc > len) goto bad;
    r->argv = calloc(r->argc + 1, sizeof(char *));
    if (!r->argv) goto bad;
    for (uint32_t a = 0; a < r->argc; a++) {
      if (off + 4 > len) goto bad;
      uint32_t l = rd32(buf + off);
      off += 4;
      if (l > len - off) goto bad;
      r->argv[a] = malloc(l + 1);
      if (!r->argv[a]) goto bad;
      memcpy(r->argv[a], buf + off, l);
      r->argv[a][l] = 0;
      off += l;
    }
  }
  free(buf);
  return 0;
bad:
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
