/* Helpers shared by the store benchmarks (scripts/bench/store_*.c): a
 * monotonic clock, process RSS, a small fast PRNG, and the deterministic
 * 16-byte keys and 32-byte values every benchmark and its reference use.
 * Header-only: each benchmark is one executable. */
#ifndef KURA_BENCH_UTIL_H
#define KURA_BENCH_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BU_KEY_LEN 16
#define BU_VAL_LEN 32

/* Seconds since an arbitrary origin, from CLOCK_MONOTONIC. */
static inline double bu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Resident set size of this process in bytes, from /proc/self/statm. */
static inline uint64_t bu_rss(void) {
  unsigned long size = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f) return 0;
  if (fscanf(f, "%lu %lu", &size, &resident) != 2) resident = 0;
  fclose(f);
  return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* The splitmix64 finalizer: a bijection on 64-bit integers, so distinct
 * ids give distinct keys. */
static inline uint64_t bu_mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

/* xorshift64*: one multiply per draw, good enough for key choice. */
typedef struct bu_rng {
  uint64_t s;
} bu_rng;

static inline void bu_rng_seed(bu_rng *r, uint64_t seed) {
  r->s = bu_mix(seed) | 1;
}

static inline uint64_t bu_rng_next(bu_rng *r) {
  r->s ^= r->s >> 12;
  r->s ^= r->s << 25;
  r->s ^= r->s >> 27;
  return r->s * 0x2545f4914f6cdd1dull;
}

/* A uniform integer in [0, n) by multiply-shift on the top 32 bits. */
static inline uint32_t bu_rng_below(bu_rng *r, uint32_t n) {
  return (uint32_t)(((bu_rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

/* A uniform double in [0, 1). */
static inline double bu_rng_unit(bu_rng *r) {
  return (double)(bu_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* The key of item `id`: 16 lowercase hex digits of a bijective hash of id,
 * so keys are unique, fixed-size and spread like real hashed ids. */
static inline void bu_key(char out[BU_KEY_LEN], uint64_t id) {
  static const char hex[] = "0123456789abcdef";
  uint64_t h = bu_mix(id ^ 0x6b757261ull);
  for (int i = 0; i < BU_KEY_LEN; i++) {
    out[i] = hex[h & 15];
    h >>= 4;
  }
}

/* The value of item `id` (32 bytes): a fixed text with the id stamped in,
 * so a reader can tell values apart. */
static inline void bu_val(char out[BU_VAL_LEN], uint64_t id) {
  memcpy(out, "value-of-item-0000000000000000..", BU_VAL_LEN);
  for (int i = 29; i >= 14 && id; i--) {
    out[i] = (char)('0' + id % 10);
    id /= 10;
  }
}

#endif
