/*
 * The group id and socket address the runc shim uses, computed without a JSON library: a small
 * recursive-descent walker over config.json that only decodes the strings it needs (keys at the
 * top level and inside "annotations"), so escaped quotes or an "annotations" text inside some
 * other string cannot fool it.
 */
#include "group.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sha256.h"

/* The annotations that name a shim group, strongest first (containerd-shim-runc-v2's order). */
static const char *const GROUP_LABELS[] = {"io.containerd.runc.v2.group", "io.kubernetes.cri.sandbox-id"};
#define NLABELS 2
#define MAX_DEPTH 256

struct cur {
  const char *p, *end;
};

static void ws(struct cur *c) {
  while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

static int hexval(char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

static int hex4(struct cur *c, unsigned *out) {
  if (c->end - c->p < 4) return -1;
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    int h = hexval(c->p[i]);
    if (h < 0) return -1;
    v = v << 4 | (unsigned)h;
  }
  c->p += 4;
  *out = v;
  return 0;
}

static size_t utf8(unsigned cp, char *o) {
  if (cp < 0x80) { o[0] = (char)cp; return 1; }
  if (cp < 0x800) { o[0] = (char)(0xc0 | cp >> 6); o[1] = (char)(0x80 | (cp & 0x3f)); return 2; }
  if (cp < 0x10000) {
    o[0] = (char)(0xe0 | cp >> 12); o[1] = (char)(0x80 | ((cp >> 6) & 0x3f)); o[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
  }
  o[0] = (char)(0xf0 | cp >> 18); o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
  o[2] = (char)(0x80 | ((cp >> 6) & 0x3f)); o[3] = (char)(0x80 | (cp & 0x3f));
  return 4;
}

/*
 * Parses a string at c->p (which must be '"'). With out != NULL, decodes it into a malloc'd
 * NUL-terminated buffer (never longer than the raw text). Returns 0, or -1 on malformed input.
 */
static int string(struct cur *c, char **out) {
  if (c->p >= c->end || *c->p != '"') return -1;
  const char *start = ++c->p;
  char *o = NULL;
  size_t n = 0;
  if (out) {
    const char *q = start;
    while (q < c->end && *q != '"') q += (*q == '\\') ? 2 : 1;
    if (!(o = malloc((size_t)(q - start) + 4))) return -1;
  }
  while (c->p < c->end && *c->p != '"') {
    char ch = *c->p++;
    if ((unsigned char)ch < 0x20) goto bad;
    if (ch != '\\') {
      if (o) o[n++] = ch;
      continue;
    }
    if (c->p >= c->end) goto bad;
    ch = *c->p++;
    unsigned cp;
    switch (ch) {
      case '"': case '\\': case '/': cp = (unsigned char)ch; break;
      case 'b': cp = '\b'; break;
      case 'f': cp = '\f'; break;
      case 'n': cp = '\n'; break;
      case 'r': cp = '\r'; break;
      case 't': cp = '\t'; break;
      case 'u':
        if (hex4(c, &cp) < 0) goto bad;
        if (cp >= 0xd800 && cp < 0xdc00) {
          unsigned lo;
          struct cur save = *c;
          if (c->end - c->p >= 6 && c->p[0] == '\\' && c->p[1] == 'u' && (c->p += 2, hex4(c, &lo) == 0) &&
              lo >= 0xdc00 && lo < 0xe000) {
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          } else {
            *c = save;
            cp = 0xfffd; /* a lone surrogate, as Go's decoder replaces it */
          }
        } else if (cp >= 0xdc00 && cp < 0xe000) {
          cp = 0xfffd;
        }
        break;
      default: goto bad;
    }
    /* The raw escape is at least as long as its UTF-8 encoding, so o cannot overflow. */
    if (o) n += utf8(cp, o + n);
  }
  if (c->p >= c->end) goto bad;
  c->p++;
  if (o) {
    o[n] = 0;
    *out = o;
  }
  return 0;
bad:
  free(o);
  return -1;
}

static int value(struct cur *c, int depth);

/* Walks an object; with labels != NULL, records string values whose key is one of GROUP_LABELS. */
static int object(struct cur *c, int depth, char **labels) {
  c->p++; /* '{' */
  ws(c);
  if (c->p < c->end && *c->p == '}') { c->p++; return 0; }
  for (;;) {
    char *key = NULL;
    ws(c);
    if (string(c, &key) < 0) return -1;
    ws(c);
    if (c->p >= c->end || *c->p != ':') { free(key); return -1; }
    c->p++;
    ws(c);
    int rc;
    if (depth == 0 && strcmp(key, "annotations") == 0 && c->p < c->end && *c->p == '{') {
      /* Duplicate keys: the last one wins, as with Go's encoding/json. */
      for (int i = 0; i < NLABELS; i++) { free(labels[i]); labels[i] = NULL; }
      rc = object(c, depth + 1, labels + NLABELS);
    } else if (labels && depth == 1 && c->p < c->end && *c->p == '"') {
      int idx = -1;
      for (int i = 0; i < NLABELS; i++) if (strcmp(key, GROUP_LABELS[i]) == 0) idx = i;
      char *v = NULL;
      rc = string(c, idx >= 0 ? &v : NULL);
      if (rc == 0 && idx >= 0) {
        free(labels[idx - NLABELS]);
        labels[idx - NLABELS] = v;
      }
    } else {
      rc = value(c, depth + 1);
    }
    free(key);
    if (rc < 0) return -1;
    ws(c);
    if (c->p >= c->end) return -1;
    if (*c->p == '}') { c->p++; return 0; }
    if (*c->p++ != ',') return -1;
  }
}

static int value(struct cur *c, int depth) {
  if (depth > MAX_DEPTH) return -1;
  ws(c);
  if (c->p >= c->end) return -1;
  switch (*c->p) {
    case '"': return string(c, NULL);
    case '{': return object(c, depth, NULL);
    case '[':
      c->p++;
      ws(c);
      if (c->p < c->end && *c->p == ']') { c->p++; return 0; }
      for (;;) {
        if (value(c, depth + 1) < 0) return -1;
        ws(c);
        if (c->p >= c->end) return -1;
        if (*c->p == ']') { c->p++; return 0; }
        if (*c->p++ != ',') return -1;
      }
    default:
      /* number, true, false, null: a run of literal characters */
      if (!strchr("-0123456789tfn", *c->p)) return -1;
      while (c->p < c->end && strchr("+-.0123456789eEtruefalsn", *c->p)) c->p++;
      return 0;
  }
}

char *spec_group_id(const char *json, size_t len) {
  struct cur c = {json, json + len};
  /* labels[0..1]: what the current "annotations" object is being scanned into (see object()). */
  char *found[2 * NLABELS] = {0};
  ws(&c);
  char *res = NULL;
  if (c.p < c.end && *c.p == '{' && object(&c, 0, found) == 0) {
    for (int i = 0; i < NLABELS && !res; i++) if (found[i] && found[i][0]) res = found[i], found[i] = NULL;
  }
  for (int i = 0; i < 2 * NLABELS; i++) free(found[i]);
  return res;
}

int clean_path(const char *path, char *out, size_t outsz) {
  size_t n = 0;
  int rooted = path[0] == '/';
  size_t floor = 0; /* how far ".." may pop: past the root, or past leading ".." of a relative path */
  if (outsz < 2) return -1;
  if (rooted) out[n++] = '/', floor = 1;
  const char *p = path;
  while (*p) {
    while (*p == '/') p++;
    const char *e = p;
    while (*e && *e != '/') e++;
    size_t len = (size_t)(e - p);
    if (len == 0 || (len == 1 && p[0] == '.')) {
      /* skip */
    } else if (len == 2 && p[0] == '.' && p[1] == '.') {
      if (n > floor) {
        while (n > floor && out[n - 1] != '/') n--;
        if (n > floor) n--;
      } else if (!rooted) {
        if (n > 0) out[n++] = '/';
        if (n + 2 >= outsz) return -1;
        out[n++] = '.', out[n++] = '.';
        floor = n;
      }
    } else {
      if (n > 0 && out[n - 1] != '/') out[n++] = '/';
      if (n + len >= outsz) return -1;
      memcpy(out + n, p, len);
      n += len;
    }
    p = e;
  }
  if (n == 0) out[n++] = '.';
  out[n] = 0;
  return 0;
}

int socket_path(const char *address, const char *ns, const char *group, char *out, size_t outsz) {
  size_t need = strlen(address) + strlen(ns) + strlen(group) + 3;
  char *joined = malloc(need), *clean = malloc(need + 2);
  int rc = -1;
  if (joined && clean) {
    snprintf(joined, need, "%s/%s/%s", address, ns, group);
    if (clean_path(joined, clean, need + 2) == 0) {
      char hex[65];
      sha256_hex(clean, strlen(clean), hex);
      rc = snprintf(out, outsz, "/run/containerd/s/%s", hex) < (int)outsz ? 0 : -1;
    }
  }
  free(joined);
  free(clean);
  return rc;
}
