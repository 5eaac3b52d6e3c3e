/* A small SHA-256 (FIPS 180-4) for the launcher's socket-address computation. */
#ifndef SHOAL_LAUNCHER_SHA256_H
#define SHOAL_LAUNCHER_SHA256_H

#include <stddef.h>
#include <stdint.h>

/* Streaming state: feed with sha256_update, finish with sha256_final. */
struct sha256 {
  uint32_t h[8];
  uint64_t len;      /* bytes hashed so far */
  uint8_t buf[64];   /* pending partial block */
  size_t used;
};

void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t n);
void sha256_final(struct sha256 *s, uint8_t out[32]);
/* Lower-case hex digest of data into hex (65 bytes, NUL-terminated). */
void sha256_hex(const void *data, size_t n, char hex[65]);

#endif
