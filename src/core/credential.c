/* Momento credentials (see credential.h): base64, the v1 key's JSON, the
 * legacy JWT's claims. Buffers that held the secret or its decoded form are
 * wiped before they are freed; messages describe the shape, never bytes. */
#include "core/credential.h"
#include "core/json.h"
#include "core/wipe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- base64 ----------------------------------------------------------------- */

static int b64_value(unsigned char c)
{
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '+' || c == '-')
    return 62;
  if (c == '/' || c == '_')
    return 63;
  return -1;
}

long kr_base64_decode(const char *in, size_t len, unsigned char *out, size_t cap)
{
  while (len && in[len - 1] == '=')
    len--;
  if (len % 4 == 1)
    return -1;
  unsigned acc = 0;
  int bits = 0;
  size_t o = 0;
  for (size_t i = 0; i < len; i++) {
    int v = b64_value((unsigned char)in[i]);
    if (v < 0)
      return -1;
    acc = (acc << 6) | (unsigned)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (o == cap)
        return -1;
      out[o++] = (unsigned char)(acc >> bits);
      acc &= (1u << bits) - 1;
    }
  }
  return (long)o;
}

size_t kr_base64_encode(const void *in, size_t len, char *out)
{
  static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const unsigned char *p = in;
  size_t o = 0, i = 0;
  for (; i + 2 < len; i += 3) {
    unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
    out[o++] = tab[v >> 18], out[o++] = tab[(v >> 12) & 63];
    out[o++] = tab[(v >> 6) & 63], out[o++] = tab[v & 63];
  }
  if (i < len) {
    unsigned v = (unsigned)p[i] << 16 | (i + 1 < len ? (unsigned)p[i + 1] << 8 : 0);
    out[o++] = tab[v >> 18], out[o++] = tab[(v >> 12) & 63];
    out[o++] = i + 1 < len ? tab[(v >> 6) & 63] : '=';
    out[o++] = '=';
  }
  out[o] = '\0';
  return o;
}

/* --- helpers ---------------------------------------------------------------- */

static int failf(char *err, size_t errlen, const char *why)
{
  snprintf(err, errlen, "the Momento credential is malformed: %s", why);
  return KURA_EINVAL;
}

/* Decodes base64 text into a NUL-terminated malloc'd buffer (wipe it). */
static unsigned char *decode_alloc(const char *in, size_t len, size_t *outlen)
{
  size_t cap = len / 4 * 3 + 3;
  unsigned char *buf = malloc(cap + 1);
  if (!buf)
    return NULL;
  long n = kr_base64_decode(in, len, buf, cap);
  if (n < 0) {
    kr_wipe_free(buf, cap + 1);
    return NULL;
  }
  buf[n] = '\0';
  *outlen = cap + 1;
  return buf;
}

/* A host name as Momento gives them: letters, digits, '.', '-', ':' (port). */
static int copy_host(char *dst, const char *src)
{
  size_t n = strlen(src);
  if (n == 0 || n >= KR_CRED_HOST_MAX)
    return -1;
  for (size_t i = 0; i < n; i++) {
    char c = src[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '.' || c == '-' || c == ':'))
      return -1;
  }
  memcpy(dst, src, n + 1);
  return 0;
}

static void set_endpoints(kr_credential *c, const char *endpoint)
{
  snprintf(c->endpoint, sizeof c->endpoint, "%s", endpoint);
  snprintf(c->cache_endpoint, sizeof c->cache_endpoint, "cache.%.240s", endpoint);
  snprintf(c->control_endpoint, sizeof c->control_endpoint, "control.%.240s", endpoint);
}

static int set_secret(kr_credential *c, const char *s, size_t len)
{
  c->secret = malloc(len + 1);
  if (!c->secret)
    return KURA_ENOMEM;
  memcpy(c->secret, s, len);
  c->secret[len] = '\0';
  c->secret_len = len;
  return 0;
}

/* --- the formats ------------------------------------------------------------ */

/* A string member of a JSON object to look for: its value, decoded and
 * NUL-terminated, goes into out (cap bytes). */
typedef struct jfield {
  const char *name;
  char *out;
  size_t cap;
  int found;        /* 1: a string that fits, without NUL bytes */
} jfield;

static jfield *field_named(const kr_json *j, jfield *f, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (!j->escaped && strlen(f[i].name) == j->len && memcmp(f[i].name, j->str, j->len) == 0)
      return &f[i];
  return NULL;
}

/* Reads the JSON object text (len bytes) for the string members of f (of
 * two with one name, the last counts). 0, or -1 when the text is not one
 * JSON object. Runs on any thread: core/json.h keeps no global state. */
static int json_fields(const char *text, size_t len, jfield *f, size_t n)
{
  kr_json j;
  kr_json_tok tok;
  kr_json_init(&j, text, len);
  if (kr_json_next(&j) != KR_JSON_OBJECT)
    return -1;
  while ((tok = kr_json_next(&j)) == KR_JSON_KEY) {
    jfield *hit = field_named(&j, f, n);
    tok = kr_json_next(&j);
    if (tok == KR_JSON_STRING && hit && j.len < hit->cap) {
      size_t m = kr_json_unescape(j.str, j.len, hit->out);
      hit->out[m] = '\0';
      hit->found = !memchr(hit->out, 0, m);
    } else if (kr_json_skip(&j, tok)) {
      return -1;
    }
  }
  return tok == KR_JSON_OBJECT_END && kr_json_next(&j) == KR_JSON_END ? 0 : -1;
}

/* v1: JSON {"endpoint": ..., "api_key": ...} already decoded (len bytes). */
static int parse_v1(const char *json, size_t len, kr_credential *c, char *err, size_t errlen)
{
  char ep[KR_CRED_HOST_MAX];
  char *key = malloc(len + 1); /* the secret: wiped below */
  if (!key)
    return KURA_ENOMEM;
  jfield f[2] = {{"endpoint", ep, sizeof ep, 0}, {"api_key", key, len + 1, 0}};
  int rc = 0;
  if (json_fields(json, len, f, 2))
    rc = failf(err, errlen, "its base64 payload is not JSON");
  else if (!f[0].found || !f[1].found || !key[0])
    rc = failf(err, errlen, "a v1 API key needs the string fields 'endpoint' and 'api_key'");
  else if (copy_host(c->endpoint, ep))
    rc = failf(err, errlen, "the v1 API key's endpoint is not a host name");
  if (!rc) {
    set_endpoints(c, ep);
    c->kind = KR_CRED_V1;
    rc = set_secret(c, key, strlen(key));
  }
  kr_wipe_free(key, len + 1);
  return rc;
}

/* JWT: header.claims.signature, claims in base64url JSON. */
static int parse_jwt(const char *key, size_t len, const char *endpoint, kr_credential *c,
                     char *err, size_t errlen)
{
  const char *d1 = memchr(key, '.', len);
  const char *d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - key));
  size_t blen = 0;
  unsigned char *claims = decode_alloc(d1 + 1, (size_t)(d2 - d1 - 1), &blen);
  if (!claims)
    return failf(err, errlen, "the token's claims are not base64url");
  char cc[KR_CRED_HOST_MAX], cp[KR_CRED_HOST_MAX];
  jfield f[2] = {{"c", cc, sizeof cc, 0}, {"cp", cp, sizeof cp, 0}};
  int bad = json_fields((const char *)claims, strlen((const char *)claims), f, 2);
  kr_wipe_free(claims, blen);
  if (bad)
    return failf(err, errlen, "the token's claims are not a JSON object");
  int rc = 0;
  if (f[0].found) {
    c->kind = KR_CRED_JWT;
    if (copy_host(c->cache_endpoint, cc) || (f[1].found && copy_host(c->control_endpoint, cp)))
      rc = failf(err, errlen, "the token's 'c' or 'cp' claim is not a host name");
    else if (strncmp(cc, "cache.", 6) == 0)
      snprintf(c->endpoint, sizeof c->endpoint, "%s", cc + 6);
  } else {
    c->kind = KR_CRED_OPAQUE; /* a newer key: the endpoint comes separately */
    if (endpoint && *endpoint)
      set_endpoints(c, endpoint);
  }
  return rc ? rc : set_secret(c, key, len);
}

/* No dots: a v1 key when it decodes to a JSON object, else opaque. */
static int parse_plain(const char *key, size_t len, const char *endpoint, kr_credential *c,
                       char *err, size_t errlen)
{
  size_t blen = 0;
  unsigned char *dec = decode_alloc(key, len, &blen);
  int rc;
  if (dec && dec[0] == '{') {
    rc = parse_v1((const char *)dec, strlen((const char *)dec), c, err, errlen);
  } else {
    c->kind = KR_CRED_OPAQUE;
    if (endpoint && *endpoint)
      set_endpoints(c, endpoint);
    rc = set_secret(c, key, len);
  }
  kr_wipe_free(dec, blen);
  return rc;
}

int kr_credential_parse(const char *key, size_t len, const char *endpoint,
                        kr_credential *out, char *err, size_t errlen)
{
  memset(out, 0, sizeof *out);
  while (len && (*key == ' ' || *key == '\t' || *key == '\n' || *key == '\r'))
    key++, len--;
  while (len && (key[len - 1] == ' ' || key[len - 1] == '\t' || key[len - 1] == '\n' ||
                 key[len - 1] == '\r'))
    len--;
  if (len == 0)
    return failf(err, errlen, "it is empty");
  int dots = 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char ch = (unsigned char)key[i];
    if (ch <= 0x20 || ch >= 0x7f)
      return failf(err, errlen, "it holds spaces, control characters or non-ASCII bytes");
    dots += ch == '.';
  }
  if (endpoint && *endpoint && copy_host((char[KR_CRED_HOST_MAX]){0}, endpoint))
    return snprintf(err, errlen, "the Momento endpoint '%.64s' is not a host name", endpoint),
           KURA_EINVAL;
  int rc;
  if (dots == 2 && key[0] != '.' && key[len - 1] != '.')
    rc = parse_jwt(key, len, endpoint, out, err, errlen);
  else if (dots == 0)
    rc = parse_plain(key, len, endpoint, out, err, errlen);
  else
    rc = failf(err, errlen, "it is neither a v1 API key nor a JWT");
  if (rc)
    kr_credential_free(out);
  return rc;
}

void kr_credential_free(kr_credential *cred)
{
  kr_wipe_free(cred->secret, cred->secret_len);
  cred->secret = NULL;
  cred->secret_len = 0;
}

int kr_credential_http_base(const kr_credential *cred, char *out, size_t cap)
{
  if (cred->endpoint[0])
    snprintf(out, cap, "https://api.cache.%s", cred->endpoint);
  else if (cred->cache_endpoint[0])
    snprintf(out, cap, "https://api.%s", cred->cache_endpoint);
  else
    return KURA_EINVAL;
  return 0;
}

int kr_credential_open(const char *who, const char *key, size_t len, const char *endpoint,
                       kr_credential *out, char *err, size_t errlen)
{
  if (!key && endpoint && strncmp(endpoint, "http://", 7) == 0)
    return 1;
  if (!key) {
    snprintf(err, errlen, "%s: %s", who, KR_CRED_MISSING_KEY);
    return KURA_EAUTH;
  }
  char why[192];
  int rc = kr_credential_parse(key, len, getenv("MOMENTO_ENDPOINT"), out, why, sizeof why);
  if (rc)
    snprintf(err, errlen, "%s: %s", who, why);
  return rc;
}
