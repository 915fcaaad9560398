/* The JSON reader of json.h: a state machine over the bytes, one token per
 * call, and the number and UTF-8 helpers the encoder shares with it. */
#include "core/json.h"

#include <langinfo.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
  ST_VALUE = 0, /* a value must come: at the start, after ':' or an array's ',' */
  ST_ELEM0,     /* after '[': a value or ']' */
  ST_MEMBER0,   /* after '{': a member name or '}' */
  ST_AFTER,     /* after a value inside an array or object: ',' or the close */
  ST_DONE,      /* after the top-level value: only white space */
  ST_ERROR,
};

/* Bytes that a string holds as they are: 0x20..0x7f but '"' and '\'. The
 * others stop the fast scan: the quote, escapes, control bytes (errors) and
 * UTF-8 sequences (checked). */
static const unsigned char plain[256] = {
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x00 */
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x10 */
  1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x20: '"' */
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x30 */
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x40 */
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, /* 0x50: '\' */
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x60 */
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x70 */
};

static int is_digit(int c)
{
  return c >= '0' && c <= '9';
}

static kr_json_tok fail(kr_json *j, const unsigned char *at, const char *fmt, ...)
  __attribute__((format(printf, 3, 4)));

static kr_json_tok fail(kr_json *j, const unsigned char *at, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(j->err, sizeof j->err, fmt, ap);
  va_end(ap);
  j->err_at = (size_t)(at - j->start);
  j->state = ST_ERROR;
  return KR_JSON_ERROR;
}

/* "unexpected byte 'x'" or, for a byte that would not print, its value. */
static kr_json_tok fail_byte(kr_json *j, const char *what)
{
  unsigned c = *j->p;
  if (c > 0x20 && c < 0x7f)
    return fail(j, j->p, "%s '%c'", what, (char)c);
  return fail(j, j->p, "%s 0x%02x", what, c);
}

static kr_json_tok fail_end(kr_json *j)
{
  return fail(j, j->end, "unexpected end of the text");
}

void kr_json_init(kr_json *j, const void *text, size_t len)
{
  j->start = j->p = text;
  j->end = j->start + len;
  j->state = ST_VALUE;
  j->depth = 0;
  j->err[0] = '\0';
  j->err_at = 0;
}

static void skip_ws(kr_json *j)
{
  const unsigned char *p = j->p, *e = j->end;
  if (p < e && *p > ' ')
    return; /* the usual case: no white space at all */
  while (p < e && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
    p++;
  j->p = p;
}

/* --- UTF-8 ---------------------------------------------------------------------- */

/* The length of the UTF-8 sequence at p (whose first byte is >= 0x80), or 0
 * when it is none: a stray continuation byte, an overlong form, a surrogate,
 * a code point past U+10FFFF, or a sequence cut short. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *e)
{
  unsigned c = p[0];
  size_t room = (size_t)(e - p);
  if (c < 0xc2)
    return 0;
  if (c < 0xe0)
    return room >= 2 && (p[1] & 0xc0) == 0x80 ? 2 : 0;
  if (c < 0xf0) {
    if (room < 3 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80)
      return 0;
    if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] >= 0xa0))
      return 0; /* overlong; a surrogate */
    return 3;
  }
  if (c > 0xf4 || room < 4 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 ||
      (p[3] & 0xc0) != 0x80)
    return 0;
  if ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] >= 0x90))
    return 0; /* overlong; past U+10FFFF */
  return 4;
}

size_t kr_json_utf8_prefix(const char *s, size_t len)
{
  const unsigned char *p = (const unsigned char *)s, *e = p + len;
  while (p < e) {
    if (*p < 0x80) {
      p++;
      continue;
    }
    size_t n = utf8_seq(p, e);
    if (!n)
      break;
    p += n;
  }
  return (size_t)(p - (const unsigned char *)s);
}

/* --- strings ---------------------------------------------------------------------- */

static int hex4(const unsigned char *p, unsigned *out)
{
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    unsigned c = p[i], d;
    if (is_digit((int)c))
      d = c - '0';
    else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
      d = (c | 0x20) - 'a' + 10;
    else
      return -1;
    v = v * 16 + d;
  }
  *out = v;
  return 0;
}

/* Checks the escape at p ('\'); returns its length, or 0 after fail(). */
static size_t check_escape(kr_json *j, const unsigned char *p)
{
  const unsigned char *e = j->end;
  unsigned hi, lo;
  if (e - p < 2)
    return fail_end(j), 0;
  if (p[1] && strchr("\"\\/bfnrt", p[1]))
    return 2;
  if (p[1] != 'u')
    return fail(j, p, "invalid escape '\\%c'", p[1] > 0x20 && p[1] < 0x7f ? p[1] : '?'), 0;
  if (e - p < 6 || hex4(p + 2, &hi))
    return fail(j, p, "invalid \\u escape (four hex digits must follow)"), 0;
  if (hi < 0xd800 || hi > 0xdfff)
    return 6;
  if (hi >= 0xdc00 || e - p < 12 || p[6] != '\\' || p[7] != 'u' || hex4(p + 8, &lo) ||
      lo < 0xdc00 || lo > 0xdfff)
    return fail(j, p, "lone surrogate \\u%04x (a pair is \\ud800-\\udbff then "
                "\\udc00-\\udfff)", hi), 0;
  return 12;
}

#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

/* Past the bytes from q that a string holds as they are, 8 at a time: the
 * usual bit tricks flag a quote, a backslash, a byte below 0x20 (x - 0x20
 * borrows into its high bit) or one >= 0x80 in a word. The lowest flagged
 * byte is always a real one (a borrow only runs upwards), so on a
 * little-endian machine it is where the run stops. */
static const unsigned char *skip_plain(const unsigned char *q, const unsigned char *e)
{
  while (e - q >= 8) {
    uint64_t x, qt, bs, hit;
    memcpy(&x, q, 8);
    qt = x ^ (ONES * '"');
    bs = x ^ (ONES * '\\');
    hit = ((x - ONES * 0x20) | (qt - ONES) | (bs - ONES) | x) & HIGHS;
    if (hit) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
      return q + (__builtin_ctzll(hit) >> 3);
#else
      break;
#endif
    }
    q += 8;
  }
  while (q < e && plain[*q])
    q++;
  return q;
}

/* scan_string past its first stop at q: escapes, UTF-8, errors. Kept out
 * of scan_string so that a string of plain bytes costs a few instructions. */
__attribute__((noinline)) static int scan_string_slow(kr_json *j, const unsigned char *q)
{
  const unsigned char *e = j->end;
  int escaped = 0;
  for (;;) {
    if (q >= e)
      return fail(j, e, "unterminated string (it starts at byte %zu)",
                  (size_t)(j->p - j->start) + 1), -1;
    if (*q == '"')
      break;
    size_t n;
    if (*q == '\\') {
      if (!(n = check_escape(j, q)))
        return -1;
      escaped = 1;
    } else if (*q < 0x20) {
      return fail(j, q, "raw control byte 0x%02x in a string (write it as \\u%04x)", *q, *q), -1;
    } else if (!(n = utf8_seq(q, e))) {
      return fail(j, q, "byte 0x%02x in a string is not UTF-8", *q), -1;
    }
    q = skip_plain(q + n, e);
  }
  j->str = (const char *)j->p + 1;
  j->len = (size_t)(q - j->p - 1);
  j->escaped = escaped;
  j->p = q + 1;
  return 0;
}

/* The string at p ('"'): sets str, len, escaped and moves past it. */
static int scan_string(kr_json *j)
{
  const unsigned char *q = skip_plain(j->p + 1, j->end);
  if (q >= j->end || *q != '"')
    return scan_string_slow(j, q);
  j->str = (const char *)j->p + 1;
  j->len = (size_t)(q - j->p - 1);
  j->escaped = 0;
  j->p = q + 1;
  return 0;
}

static size_t put_utf8(char *o, unsigned cp)
{
  if (cp < 0x80) {
    o[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    o[0] = (char)(0xc0 | cp >> 6);
    o[1] = (char)(0x80 | (cp & 0x3f));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (char)(0xe0 | cp >> 12);
    o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
  }
  o[0] = (char)(0xf0 | cp >> 18);
  o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
  o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
  o[3] = (char)(0x80 | (cp & 0x3f));
  return 4;
}

/* One escape at s[i] ('\'), already checked: writes its bytes at out;
 * advances *i past it. */
static size_t unescape_one(const unsigned char *s, size_t *i, char *out)
{
  static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
  unsigned char c = s[*i + 1];
  unsigned cp = 0, lo = 0;
  if (c != 'u') {
    *out = to[strchr(from, c) - from];
    *i += 2;
    return 1;
  }
  hex4(s + *i + 2, &cp);
  *i += 6;
  if (cp >= 0xd800 && cp < 0xdc00) {
    hex4(s + *i + 2, &lo);
    *i += 6;
    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
  }
  return put_utf8(out, cp);
}

size_t kr_json_unescape(const char *s, size_t len, char *out)
{
  const unsigned char *u = (const unsigned char *)s;
  size_t i = 0, o = 0;
  while (i < len) {
    const unsigned char *bs = memchr(u + i, '\\', len - i);
    size_t run = bs ? (size_t)(bs - u) - i : len - i;
    memcpy(out + o, u + i, run);
    o += run, i += run;
    if (i < len)
      o += unescape_one(u, &i, out + o);
  }
  return o;
}

/* --- numbers ---------------------------------------------------------------------- */

/* The locale's decimal point (strtod and printf use it), "." in the C
 * locale. nl_langinfo reads the locale's data without writing anything. */
static const char *radix(void)
{
  const char *r = nl_langinfo(RADIXCHAR);
  return r && *r ? r : ".";
}

/* [s, e) as a double: strtod on a NUL-terminated copy whose '.' is the
 * locale's decimal point. */
static kr_json_tok to_double(kr_json *j, const unsigned char *s, const unsigned char *e)
{
  char small[128], *buf = small;
  const char *rp = radix();
  size_t n = (size_t)(e - s), rl = strlen(rp);
  if (n + rl + 1 > sizeof small && !(buf = malloc(n + rl + 1)))
    return fail(j, s, "out of memory reading a number of %zu digits", n);
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '.')
      memcpy(buf + o, rp, rl), o += rl;
    else
      buf[o++] = (char)s[i];
  }
  buf[o] = '\0';
  j->d = strtod(buf, NULL);
  if (buf != small)
    free(buf);
  if (isinf(j->d))
    return fail(j, s, "number %.*s is too large for a double (JSON has no infinity)",
                (int)(n < 24 ? n : 24), (const char *)s);
  return KR_JSON_FLOAT;
}

/* Digits: at least one; returns where they end, or NULL. */
static const unsigned char *digits(const unsigned char *p, const unsigned char *e)
{
  if (p >= e || !is_digit(*p))
    return NULL;
  while (p < e && is_digit(*p))
    p++;
  return p;
}

static kr_json_tok scan_number(kr_json *j)
{
  const unsigned char *s = j->p, *p = s, *e = j->end;
  uint64_t v = 0;
  int neg = *p == '-', over = 0;
  p += neg;
  if (p >= e || !is_digit(*p))
    return fail(j, p, "a digit must follow '-'");
  if (*p == '0' && p + 1 < e && is_digit(p[1]))
    return fail(j, p, "a number does not start with 0 (leading zero)");
  const unsigned char *d0 = p;
  while (p < e && is_digit(*p))
    p++;
  for (const unsigned char *d = d0; d < p; d++) {
    unsigned dv = (unsigned)(*d - '0');
    if (p - d0 > 18 && v > (UINT64_MAX - dv) / 10) /* 18 digits never overflow */
      over = 1;
    else
      v = v * 10 + dv;
  }
  int is_int = 1;
  if (p < e && *p == '.') {
    is_int = 0;
    if (!(p = digits(p + 1, e)))
      return fail(j, j->p, "a digit must follow the decimal point");
  }
  if (p < e && (*p == 'e' || *p == 'E')) {
    is_int = 0;
    p++;
    if (p < e && (*p == '+' || *p == '-'))
      p++;
    if (!(p = digits(p, e)))
      return fail(j, j->p, "a digit must follow the exponent's 'e'");
  }
  j->p = p;
  if (is_int && !over && v <= (uint64_t)INT64_MAX + neg) {
    j->i = !neg ? (int64_t)v : v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    return KR_JSON_INT;
  }
  return to_double(j, s, p);
}

size_t kr_json_format_double(double d, char *buf)
{
  int n = 0;
  for (int prec = 14; prec <= 17; prec++) {
    n = snprintf(buf, 32, "%.*g", prec, d);
    if (strtod(buf, NULL) == d)
      break;
  }
  const char *rp = radix();
  size_t rl = strlen(rp);
  char *at = rl == 1 && *rp == '.' ? NULL : strstr(buf, rp);
  if (at) { /* the locale's decimal point -> '.' */
    *at = '.';
    memmove(at + 1, at + rl, (size_t)n - (size_t)(at + rl - buf) + 1);
    n -= (int)rl - 1;
  }
  if (!strpbrk(buf, ".e")) {
    memcpy(buf + n, ".0", 3);
    n += 2;
  }
  return (size_t)n;
}

/* --- structure ------------------------------------------------------------------ */

static int in_object(const kr_json *j)
{
  int d = j->depth - 1;
  return (j->in_object[d >> 3] >> (d & 7)) & 1;
}

static kr_json_tok open_nest(kr_json *j, int object)
{
  if (j->depth >= KR_JSON_MAX_DEPTH)
    return fail(j, j->p, "nested too deep (more than %d levels of arrays and objects)",
                KR_JSON_MAX_DEPTH);
  int d = j->depth++;
  if (object)
    j->in_object[d >> 3] |= (unsigned char)(1u << (d & 7));
  else
    j->in_object[d >> 3] &= (unsigned char)~(1u << (d & 7));
  j->p++;
  j->state = object ? ST_MEMBER0 : ST_ELEM0;
  return object ? KR_JSON_OBJECT : KR_JSON_ARRAY;
}

static kr_json_tok close_nest(kr_json *j, kr_json_tok tok)
{
  j->depth--;
  j->p++;
  j->state = j->depth ? ST_AFTER : ST_DONE;
  return tok;
}

static kr_json_tok literal(kr_json *j, const char *word, kr_json_tok tok)
{
  size_t n = strlen(word);
  if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0)
    return fail(j, j->p, "expected '%s'", word);
  j->p += n;
  return tok;
}

static kr_json_tok value(kr_json *j)
{
  kr_json_tok tok;
  if (j->p >= j->end)
    return fail_end(j);
  switch (*j->p) {
  case '{': return open_nest(j, 1);
  case '[': return open_nest(j, 0);
  case '"':
    if (scan_string(j))
      return KR_JSON_ERROR;
    tok = KR_JSON_STRING;
    break;
  case 't': tok = literal(j, "true", KR_JSON_TRUE); break;
  case 'f': tok = literal(j, "false", KR_JSON_FALSE); break;
  case 'n': tok = literal(j, "null", KR_JSON_NULL); break;
  default:
    if (*j->p != '-' && !is_digit(*j->p))
      return fail_byte(j, "unexpected byte");
    tok = scan_number(j);
    break;
  }
  if (tok != KR_JSON_ERROR)
    j->state = j->depth ? ST_AFTER : ST_DONE;
  return tok;
}

static kr_json_tok member_name(kr_json *j)
{
  if (j->p >= j->end)
    return fail_end(j);
  if (*j->p != '"')
    return fail_byte(j, "expected a member name (a string), not");
  if (scan_string(j))
    return KR_JSON_ERROR;
  skip_ws(j);
  if (j->p >= j->end)
    return fail_end(j);
  if (*j->p != ':')
    return fail_byte(j, "expected ':' after a member name, not");
  j->p++;
  j->state = ST_VALUE;
  return KR_JSON_KEY;
}

static kr_json_tok after_value(kr_json *j)
{
  int obj = in_object(j);
  if (j->p >= j->end)
    return fail_end(j);
  if (*j->p == (obj ? '}' : ']'))
    return close_nest(j, obj ? KR_JSON_OBJECT_END : KR_JSON_ARRAY_END);
  if (*j->p != ',')
    return fail_byte(j, obj ? "expected ',' or '}', not" : "expected ',' or ']', not");
  j->p++;
  skip_ws(j);
  return obj ? member_name(j) : value(j);
}

int kr_json_skip(kr_json *j, kr_json_tok tok)
{
  if (tok != KR_JSON_ARRAY && tok != KR_JSON_OBJECT)
    return tok == KR_JSON_ERROR ? -1 : 0;
  int depth = j->depth - 1;
  while (j->depth > depth)
    if (kr_json_next(j) == KR_JSON_ERROR)
      return -1;
  return 0;
}

kr_json_tok kr_json_next(kr_json *j)
{
  skip_ws(j);
  switch (j->state) {
  case ST_ERROR:
    return KR_JSON_ERROR;
  case ST_DONE:
    if (j->p == j->end)
      return KR_JSON_END;
    return fail_byte(j, "text after the JSON value:");
  case ST_AFTER:
    return after_value(j);
  case ST_MEMBER0:
    if (j->p < j->end && *j->p == '}')
      return close_nest(j, KR_JSON_OBJECT_END);
    return member_name(j);
  case ST_ELEM0:
    if (j->p < j->end && *j->p == ']')
      return close_nest(j, KR_JSON_ARRAY_END);
    return value(j);
  default:
    return value(j);
  }
}
