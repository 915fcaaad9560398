/* RFC 9113's rules for a request's header fields (see h2_fields.h): names
 * through a table of the lowercase token characters, values eight bytes at
 * a time (a field value is most of a header block's bytes).
 */
#include "core/net/h2_fields.h"

#include <string.h>

/* RFC 9110's tchar, lowercase only: what a regular field name is made of. */
#define L(c) [c] = 1
static const uint8_t name_table[256] = {
    L('!'), L('#'), L('$'), L('%'), L('&'), L('\''), L('*'), L('+'), L('-'), L('.'), L('^'),
    L('_'), L('`'), L('|'), L('~'), L('0'), L('1'), L('2'), L('3'), L('4'), L('5'), L('6'),
    L('7'), L('8'), L('9'), L('a'), L('b'), L('c'), L('d'), L('e'), L('f'), L('g'), L('h'),
    L('i'), L('j'), L('k'), L('l'), L('m'), L('n'), L('o'), L('p'), L('q'), L('r'), L('s'),
    L('t'), L('u'), L('v'), L('w'), L('x'), L('y'), L('z'),
};
#undef L

static int upper(uint8_t c)
{
  return c >= 'A' && c <= 'Z';
}

static int alpha_digit(uint8_t c)
{
  return upper(c) || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

/* High bit of each lane whose byte is exactly zero (no carry crosses lanes,
 * so every lane's answer is its own). */
static inline uint64_t zero_lanes(uint64_t w)
{
  return ~(((w & ~HIGHS) + ~HIGHS) | w) & HIGHS;
}

/* High bit of each lane whose byte is below c (c <= 0x80); bytes of 0x80
 * and above are not below. */
static inline uint64_t below_lanes(uint64_t w, uint8_t c)
{
  return ~((w & ~HIGHS) + ONES * (uint8_t)(0x80 - c)) & ~w & HIGHS;
}

static inline uint64_t load8(const uint8_t *p)
{
  uint64_t w;
  memcpy(&w, p, 8);
  return w;
}

/* 1 to 7 bytes as a word each of whose lanes holds one of them (some twice):
 * two overlapping loads, so no byte past the end is read. */
static inline uint64_t load_short(const uint8_t *p, size_t n)
{
  if (n >= 4) {
    uint32_t a, b;
    memcpy(&a, p, 4), memcpy(&b, p + n - 4, 4);
    return (uint64_t)a << 32 | b;
  }
  uint64_t w = p[0] | (uint64_t)p[n / 2] << 8 | (uint64_t)p[n - 1] << 16;
  return w | w << 24 | w << 48;
}

/* 1 when bad() finds no lane in p's bytes. The checks look at each lane
 * alone, so reading a byte twice changes nothing. */
static inline int all_words(const uint8_t *p, size_t n, uint64_t (*bad)(uint64_t))
{
  if (n < 8)
    return n == 0 || !bad(load_short(p, n));
  for (size_t i = 0; i + 8 <= n; i += 8)
    if (bad(load8(p + i)))
      return 0;
  return !bad(load8(p + n - 8));
}

/* Lanes that are not a-z or '-' (the fast path of a name). */
static inline uint64_t not_lower_dash(uint64_t w)
{
  uint64_t letter = ~below_lanes(w, 'a') & below_lanes(w, 'z' + 1);
  return ~(letter | zero_lanes(w ^ (ONES * '-'))) & HIGHS;
}

static int name_slow(const uint8_t *p, size_t n)
{
  unsigned ok = 1;
  for (size_t i = 0; i < n; i++)
    ok &= name_table[p[i]];
  return (int)ok;
}

static int lower_dash(const uint8_t *p, size_t n)
{
  return all_words(p, n, not_lower_dash);
}

int kr_h2_name_ok(const uint8_t *p, size_t n)
{
  return n > 0 && (lower_dash(p, n) || name_slow(p, n));
}

static inline uint64_t nul_cr_lf(uint64_t w)
{
  return zero_lanes(w) | zero_lanes(w ^ (ONES * '\r')) | zero_lanes(w ^ (ONES * '\n'));
}

int kr_h2_value_ok(const uint8_t *p, size_t n)
{
  return all_words(p, n, nul_cr_lf);
}

static int eq(const uint8_t *p, size_t n, const char *s)
{
  return n == strlen(s) && memcmp(p, s, n) == 0;
}

/* Lanes that are a space, a control character or DEL (bytes of 0x80 and
 * above pass, as nghttp2 let them). */
static inline uint64_t invisible(uint64_t w)
{
  return below_lanes(w, 0x21) | zero_lanes(w ^ (ONES * 0x7f));
}

/* :path and :authority: no space, control character or DEL. */
static int visible(const uint8_t *p, size_t n)
{
  return all_words(p, n, invisible);
}

/* A method: tchar, either case. */
static int token(const uint8_t *p, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (!name_table[p[i]] && !upper(p[i]))
      return 0;
  return n > 0;
}

/* RFC 3986: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) */
static int scheme(const uint8_t *p, size_t n)
{
  if (n == 0 || !alpha_digit(p[0]) || (p[0] >= '0' && p[0] <= '9'))
    return 0;
  for (size_t i = 1; i < n; i++)
    if (!alpha_digit(p[i]) && p[i] != '+' && p[i] != '-' && p[i] != '.')
      return 0;
  return 1;
}

static enum kr_h2_field pseudo(const uint8_t *name, size_t nl, const uint8_t *v, size_t vl)
{
  if (eq(name, nl, ":method"))
    return token(v, vl) ? KR_H2F_METHOD : KR_H2F_BAD;
  if (eq(name, nl, ":scheme"))
    return scheme(v, vl) ? KR_H2F_SCHEME : KR_H2F_BAD;
  if (eq(name, nl, ":path"))
    return vl && (v[0] == '/' || eq(v, vl, "*")) && visible(v, vl) ? KR_H2F_PATH : KR_H2F_BAD;
  if (eq(name, nl, ":authority"))
    return visible(v, vl) ? KR_H2F_AUTHORITY : KR_H2F_BAD;
  return KR_H2F_BAD; /* :status, :protocol (no extended CONNECT here), unknown */
}

static int digits(const uint8_t *p, size_t n)
{
  if (n == 0 || n > 18) /* 18 digits fit int64_t */
    return 0;
  for (size_t i = 0; i < n; i++)
    if (p[i] < '0' || p[i] > '9')
      return 0;
  return 1;
}

/* The fields of one HTTP/1.1 hop, which HTTP/2 does not carry. */
static int hop_by_hop(const uint8_t *n, size_t nl)
{
#define HOP(s) {s, sizeof s - 1}
  static const struct {
    const char *name;
    size_t len;
  } hops[] = {HOP("upgrade"), HOP("connection"), HOP("keep-alive"), HOP("proxy-connection"),
              HOP("transfer-encoding")};
#undef HOP
  if (nl != 7 && nl != 10 && nl != 16 && nl != 17)
    return 0; /* most names: no compare */
  for (size_t i = 0; i < sizeof hops / sizeof hops[0]; i++)
    if (nl == hops[i].len && memcmp(n, hops[i].name, nl) == 0)
      return 1;
  return 0;
}

/* te: only "trailers", in any case (the letters' case bit set to compare). */
static int te_trailers(const uint8_t *v, size_t vl)
{
  return vl == 8 && (load8(v) | ONES * 0x20) == load8((const uint8_t *)"trailers");
}

/* Regular fields with a rule of their own. */
static enum kr_h2_field special(const uint8_t *n, size_t nl, const uint8_t *v, size_t vl)
{
  if (nl == 2 && eq(n, nl, "te"))
    return te_trailers(v, vl) ? KR_H2F_REGULAR : KR_H2F_BAD;
  if (nl == 14 && eq(n, nl, "content-length"))
    return digits(v, vl) ? KR_H2F_CONTENT_LENGTH : KR_H2F_BAD;
  return hop_by_hop(n, nl) ? KR_H2F_BAD : KR_H2F_REGULAR;
}

enum kr_h2_field kr_h2_field_check(const uint8_t *name, size_t nl, const uint8_t *value,
                                   size_t vl)
{
  if (!kr_h2_value_ok(value, vl))
    return KR_H2F_BAD;
  if (nl > 0 && name[0] == ':')
    return pseudo(name, nl, value, vl);
  if (!kr_h2_name_ok(name, nl))
    return KR_H2F_BAD;
  return special(name, nl, value, vl);
}

void kr_h2_fields_init(kr_h2_fields *f)
{
  memset(f, 0, sizeof *f);
  f->content_length = -1;
}

enum kr_h2_field kr_h2_fields_add(kr_h2_fields *f, enum kr_h2_field k, const uint8_t *value,
                                  size_t vl)
{
  if (k == KR_H2F_BAD || k == KR_H2F_REGULAR) {
    f->regular |= k == KR_H2F_REGULAR;
    return k;
  }
  uint8_t bit = (uint8_t)(1u << k);
  if (f->seen & bit)
    return KR_H2F_BAD; /* twice */
  f->seen |= bit;
  if (k == KR_H2F_CONTENT_LENGTH) {
    int64_t n = 0;
    for (size_t i = 0; i < vl; i++)
      n = n * 10 + (value[i] - '0');
    f->content_length = n, f->regular = 1;
    return k;
  }
  if (f->regular)
    return KR_H2F_BAD; /* a pseudo-field after a regular one */
  if (k == KR_H2F_METHOD)
    f->connect = eq(value, vl, "CONNECT");
  return k;
}

int kr_h2_fields_complete(const kr_h2_fields *f)
{
  unsigned has = f->seen;
  unsigned scheme_path = 1u << KR_H2F_SCHEME | 1u << KR_H2F_PATH;
  if (!(has & 1u << KR_H2F_METHOD))
    return -1;
  if (f->connect)
    return (has & scheme_path) || !(has & 1u << KR_H2F_AUTHORITY) ? -1 : 0;
  return (has & scheme_path) == scheme_path ? 0 : -1;
}

int kr_h2_trailer_ok(const uint8_t *name, size_t nl, const uint8_t *value, size_t vl)
{
  enum kr_h2_field k = kr_h2_field_check(name, nl, value, vl);
  return k == KR_H2F_REGULAR;
}
