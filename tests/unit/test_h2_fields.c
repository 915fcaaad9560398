/* RFC 9113's rules for request header fields (core/net/h2_fields.h), which
 * kura serve checks itself instead of nghttp2: the word-at-a-time name and
 * value checks against a byte-by-byte reference for every byte value at
 * every position of every length up to 40 and for random strings; each
 * pseudo-field's rule; the fields that are not allowed; the block's rules
 * (order, repeats, what must be there, CONNECT). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/net/h2_fields.h"
#include "ktest.h"

/* The references: the RFCs' sets written out plainly. */
static int ref_name_byte(uint8_t c)
{
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int ref_name(const uint8_t *p, size_t n)
{
  if (n == 0)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!ref_name_byte(p[i]))
      return 0;
  return 1;
}

static int ref_value(const uint8_t *p, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (p[i] == 0 || p[i] == '\r' || p[i] == '\n')
      return 0;
  return 1;
}

static uint64_t next_u64(uint64_t *s)
{
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Every byte value at every position of names and values of every length up
 * to 40, the rest of the string valid: the checks read 8 bytes at a time and
 * the tails with overlapping loads, so each position is a different lane.
 * The string sits at the end of a heap block so that ASan sees any read past
 * it. */
KTEST(every_byte_at_every_position)
{
  for (size_t n = 1; n <= 40; n++) {
    for (size_t pos = 0; pos < n; pos++) {
      for (int c = 0; c < 256; c++) {
        uint8_t *p = malloc(n);
        memset(p, 'a', n);
        p[pos] = (uint8_t)c;
        if (kr_h2_name_ok(p, n) != ref_name(p, n) || kr_h2_value_ok(p, n) != ref_value(p, n)) {
          fprintf(stderr, "  length %zu, byte 0x%02x at %zu: name %d (want %d), value %d (want %d)\n",
                  n, c, pos, kr_h2_name_ok(p, n), ref_name(p, n), kr_h2_value_ok(p, n),
                  ref_value(p, n));
          free(p);
          KCHECK(0);
        }
        free(p);
      }
    }
  }
  KCHECK(!kr_h2_name_ok((const uint8_t *)"", 0));
  KCHECK(kr_h2_value_ok((const uint8_t *)"", 0));
}

/* Random strings from alphabets near the edges of the sets. */
KTEST(random_strings_agree_with_the_reference)
{
  static const char *alphabets[] = {
      "abcz-", "abcZ-", "abc\r\n\t x", "a\x7f\x80\xff:", "!#$%&'*+-.^_`|~09az@[{",
  };
  uint64_t seed = 7;
  uint8_t buf[80];
  for (int i = 0; i < 200000; i++) {
    const char *a = alphabets[next_u64(&seed) % 5];
    size_t al = strlen(a), n = next_u64(&seed) % sizeof buf;
    for (size_t j = 0; j < n; j++)
      buf[j] = (uint8_t)(next_u64(&seed) % 9 == 0 ? next_u64(&seed) : (uint8_t)a[next_u64(&seed) % al]);
    KCHECK_EQ(kr_h2_name_ok(buf, n), ref_name(buf, n));
    KCHECK_EQ(kr_h2_value_ok(buf, n), ref_value(buf, n));
  }
}

static enum kr_h2_field check(const char *name, const char *value)
{
  return kr_h2_field_check((const uint8_t *)name, strlen(name), (const uint8_t *)value,
                           strlen(value));
}

KTEST(each_field_rule)
{
  KCHECK_EQ(check(":method", "POST"), KR_H2F_METHOD);
  KCHECK_EQ(check(":method", "get"), KR_H2F_METHOD); /* a token, either case */
  KCHECK_EQ(check(":method", ""), KR_H2F_BAD);
  KCHECK_EQ(check(":method", "PO ST"), KR_H2F_BAD);
  KCHECK_EQ(check(":scheme", "http"), KR_H2F_SCHEME);
  KCHECK_EQ(check(":scheme", "coap+tcp"), KR_H2F_SCHEME);
  KCHECK_EQ(check(":scheme", "9p"), KR_H2F_BAD);
  KCHECK_EQ(check(":scheme", ""), KR_H2F_BAD);
  KCHECK_EQ(check(":scheme", "ht tp"), KR_H2F_BAD);
  KCHECK_EQ(check(":path", "/cache_client.Scs/Get"), KR_H2F_PATH);
  KCHECK_EQ(check(":path", "*"), KR_H2F_PATH);
  KCHECK_EQ(check(":path", "/a\xc3\xa9"), KR_H2F_PATH); /* bytes over 0x7f pass */
  KCHECK_EQ(check(":path", ""), KR_H2F_BAD);
  KCHECK_EQ(check(":path", "cache"), KR_H2F_BAD);
  KCHECK_EQ(check(":path", "/a b"), KR_H2F_BAD);
  KCHECK_EQ(check(":path", "/a\tb"), KR_H2F_BAD);
  KCHECK_EQ(check(":path", "/a\x7f"), KR_H2F_BAD);
  KCHECK_EQ(check(":authority", "127.0.0.1:8080"), KR_H2F_AUTHORITY);
  KCHECK_EQ(check(":authority", "a b"), KR_H2F_BAD);
  KCHECK_EQ(check(":status", "200"), KR_H2F_BAD); /* a response's */
  KCHECK_EQ(check(":protocol", "websocket"), KR_H2F_BAD);
  KCHECK_EQ(check(":foo", "x"), KR_H2F_BAD);
  KCHECK_EQ(check(":", "x"), KR_H2F_BAD);
  KCHECK_EQ(check("cache", "bench"), KR_H2F_REGULAR);
  KCHECK_EQ(check("cache", ""), KR_H2F_REGULAR);
  KCHECK_EQ(check("Cache", "bench"), KR_H2F_BAD);
  KCHECK_EQ(check("ca che", "bench"), KR_H2F_BAD);
  KCHECK_EQ(check("ca:che", "bench"), KR_H2F_BAD);
  KCHECK_EQ(check("cache", "be\rnch"), KR_H2F_BAD);
  KCHECK_EQ(check("cache", "b\xff\t e"), KR_H2F_REGULAR);
  KCHECK_EQ(check("te", "trailers"), KR_H2F_REGULAR);
  KCHECK_EQ(check("te", "Trailers"), KR_H2F_REGULAR);
  KCHECK_EQ(check("te", "gzip"), KR_H2F_BAD);
  KCHECK_EQ(check("te", "trailerz"), KR_H2F_BAD);
  KCHECK_EQ(check("te", "trailers, gzip"), KR_H2F_BAD);
  KCHECK_EQ(check("tf", "gzip"), KR_H2F_REGULAR);
  KCHECK_EQ(check("connection", "close"), KR_H2F_BAD);
  KCHECK_EQ(check("keep-alive", "5"), KR_H2F_BAD);
  KCHECK_EQ(check("proxy-connection", "x"), KR_H2F_BAD);
  KCHECK_EQ(check("transfer-encoding", "chunked"), KR_H2F_BAD);
  KCHECK_EQ(check("upgrade", "h2c"), KR_H2F_BAD);
  KCHECK_EQ(check("content-length", "12"), KR_H2F_CONTENT_LENGTH);
  KCHECK_EQ(check("content-length", ""), KR_H2F_BAD);
  KCHECK_EQ(check("content-length", "1x"), KR_H2F_BAD);
  KCHECK_EQ(check("content-length", "-1"), KR_H2F_BAD);
  KCHECK_EQ(check("content-length", "1234567890123456789"), KR_H2F_BAD); /* past int64 */
  /* a NUL inside a name or a value */
  KCHECK_EQ(kr_h2_field_check((const uint8_t *)"ca\0he", 5, (const uint8_t *)"b", 1), KR_H2F_BAD);
  KCHECK_EQ(kr_h2_field_check((const uint8_t *)"cache", 5, (const uint8_t *)"b\0c", 3), KR_H2F_BAD);
  KCHECK(kr_h2_trailer_ok((const uint8_t *)"grpc-status", 11, (const uint8_t *)"0", 1));
  KCHECK(!kr_h2_trailer_ok((const uint8_t *)":path", 5, (const uint8_t *)"/", 1));
  KCHECK(!kr_h2_trailer_ok((const uint8_t *)"X", 1, (const uint8_t *)"1", 1));
}

/* A block given as name, value, name, value, ..., NULL: -1 when a field is
 * refused, else kr_h2_fields_complete's answer. */
static int block(kr_h2_fields *f, const char *const *nv)
{
  kr_h2_fields_init(f);
  for (; *nv; nv += 2) {
    const uint8_t *n = (const uint8_t *)nv[0], *v = (const uint8_t *)nv[1];
    enum kr_h2_field k = kr_h2_field_check(n, strlen(nv[0]), v, strlen(nv[1]));
    if (kr_h2_fields_add(f, k, v, strlen(nv[1])) == KR_H2F_BAD)
      return -1;
  }
  return kr_h2_fields_complete(f);
}

#define B(...) ((const char *const[]){__VA_ARGS__, NULL})

KTEST(block_rules)
{
  kr_h2_fields f;
  KCHECK_EQ(block(&f, B(":method", "POST", ":scheme", "http", ":path", "/", "cache", "c")), 0);
  KCHECK_EQ(f.content_length, -1);
  KCHECK_EQ(block(&f, B(":path", "/", ":scheme", "http", ":method", "GET")), 0); /* any order */
  KCHECK_EQ(block(&f, B(":method", "POST", ":scheme", "http")), -1);              /* no :path */
  KCHECK_EQ(block(&f, B(":method", "POST", ":path", "/")), -1);                   /* no :scheme */
  KCHECK_EQ(block(&f, B(":scheme", "http", ":path", "/")), -1);                   /* no :method */
  KCHECK_EQ(block(&f, B(":method", "POST", ":method", "POST", ":scheme", "http", ":path", "/")), -1);
  KCHECK_EQ(block(&f, B(":method", "POST", ":scheme", "http", "cache", "c", ":path", "/")), -1);
  KCHECK_EQ(block(&f, B(":method", "POST", ":scheme", "http", ":path", "/", "content-length", "7")), 0);
  KCHECK_EQ(f.content_length, 7);
  KCHECK_EQ(block(&f, B(":method", "POST", ":scheme", "http", ":path", "/", "content-length", "7",
                        "content-length", "7")), -1);
  KCHECK_EQ(block(&f, B(":method", "CONNECT", ":authority", "h:1")), 0);
  KCHECK_EQ(block(&f, B(":method", "CONNECT", ":authority", "h:1", ":path", "/")), -1);
  KCHECK_EQ(block(&f, B(":method", "CONNECT")), -1);
}

KTEST_MAIN(KENTRY(every_byte_at_every_position), KENTRY(random_strings_agree_with_the_reference),
           KENTRY(each_field_rule), KENTRY(block_rules))
