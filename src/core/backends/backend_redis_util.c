/* Helpers of the Redis backends (see backend_redis.h): building command
 * arguments without sprintf or malloc on the hot path, mapping error replies
 * to KURA_E* codes, the Lua scripts of the writes, and parsing the URLs:
 *   redis://[[user]:password@]host[:port][/db]
 *   redis-cluster://[[user]:password@]host[:port][,host[:port]]...
 * "password@" alone is the password of the default user; %XX escapes are
 * decoded in every part; an IPv6 address goes in brackets.
 */
#include <stdlib.h>
#include <string.h>

#include "core/backends/backend_redis.h"
#include "kura_client.h"

static int hexval(int ch)
{
  return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
       : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
}

/* Copy [s, e) into out (cap bytes) with %XX decoded. */
static int url_part(char *out, size_t cap, const char *s, const char *e)
{
  size_t n = 0;
  for (; s < e; s++) {
    int ch = (unsigned char)*s;
    if (ch == '%' && e - s >= 3 && hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
      ch = hexval(s[1]) * 16 + hexval(s[2]);
      s += 2;
    }
    if (n + 1 >= cap)
      return -1;
    out[n++] = (char)ch;
  }
  out[n] = 0;
  return 0;
}

/* "[user]:password@" or "password@" at the start of s (up to the last '@'
 * before `end`); returns where the hosts start, or NULL. */
static const char *parse_auth(const char *s, const char *end, kr_rurl *u)
{
  const char *at = NULL;
  for (const char *p = s; p < end; p++)
    if (*p == '@')
      at = p;
  if (!at)
    return s;
  const char *colon = memchr(s, ':', (size_t)(at - s));
  if (colon) {
    u->has_user = colon > s;
    if (url_part(u->user, sizeof u->user, s, colon))
      return NULL;
    s = colon + 1;
  }
  u->has_pass = 1;
  return url_part(u->pass, sizeof u->pass, s, at) ? NULL : at + 1;
}

/* host[:port] at s; returns the byte after it, or NULL. */
static const char *parse_host(const char *s, kr_rurl *u)
{
  size_t i = u->nhosts;
  const char *end;
  if (i >= KR_RURL_MAX_NODES)
    return NULL;
  if (*s == '[') {
    end = strchr(s, ']');
    if (!end || url_part(u->host[i], sizeof u->host[i], s + 1, end))
      return NULL;
    s = end + 1;
  } else {
    end = s + strcspn(s, ":/,");
    if (url_part(u->host[i], sizeof u->host[i], s, end))
      return NULL;
    s = end;
  }
  u->port[i] = 6379;
  if (*s == ':') {
    char *e;
    long p = strtol(s + 1, &e, 10);
    if (e == s + 1 || p <= 0 || p > 65535)
      return NULL;
    u->port[i] = (int)p;
    s = e;
  }
  if (!u->host[i][0])
    return NULL;
  u->nhosts++;
  return s;
}

static int parse_db(const char *s, kr_rurl *u)
{
  if (*s == '/' && s[1]) {
    char *e;
    long d = strtol(s + 1, &e, 10);
    if (e == s + 1 || *e || d < 0 || d > 1 << 20)
      return -1;
    u->db = (int)d;
    return 0;
  }
  return *s && strcmp(s, "/") != 0 ? -1 : 0;
}

int kr_rurl_parse(const char *url, kr_rurl *u)
{
  memset(u, 0, sizeof *u);
  int cluster = strncmp(url, "redis-cluster://", 16) == 0;
  if (!cluster && strncmp(url, "redis://", 8) != 0)
    return -1;
  const char *s = url + (cluster ? 16 : 8);
  s = parse_auth(s, s + strlen(s), u);
  if (!s || !(s = parse_host(s, u)))
    return -1;
  while (cluster && *s == ',')
    if (!(s = parse_host(s + 1, u)))
      return -1;
  return cluster ? (*s && strcmp(s, "/") != 0 ? -1 : 0) : parse_db(s, u);
}

/* --- command arguments and errors ------------------------------------------- */

int kr_rargs_init(kr_rargs *a, size_t nargs, size_t bytes)
{
  a->n = 0;
  a->heap = NULL;
  if (nargs <= ARGS_INLINE && bytes <= ARGS_BYTES) {
    a->v = a->sv, a->l = a->sl, a->at = a->sbuf;
    return 0;
  }
  a->heap = malloc(nargs * (sizeof *a->v + sizeof *a->l) + bytes);
  if (!a->heap)
    return KURA_ENOMEM;
  a->v = a->heap;
  a->l = (size_t *)(a->v + nargs);
  a->at = (char *)(a->l + nargs);
  return 0;
}

void kr_rargs_free(kr_rargs *a)
{
  free(a->heap);
  a->heap = NULL;
}

void kr_rargs_add(kr_rargs *a, const void *p, size_t len)
{
  a->v[a->n] = p;
  a->l[a->n++] = len;
}

size_t kr_rput_uint(char *p, unsigned long long x)
{
  char tmp[24], *s = tmp + sizeof tmp;
  do {
    *--s = (char)('0' + x % 10);
    x /= 10;
  } while (x);
  size_t n = (size_t)(tmp + sizeof tmp - s);
  memcpy(p, s, n);
  return n;
}

/* A number argument (at most 21 bytes of the block). */
void kr_rargs_num(kr_rargs *a, long long x)
{
  char *p = a->at;
  size_t n = 0;
  if (x < 0)
    p[n++] = '-';
  n += kr_rput_uint(p + n, x < 0 ? 0ull - (unsigned long long)x : (unsigned long long)x);
  kr_rargs_add(a, p, n);
  a->at += n;
}

/* Bytes of the item key prefix "kura:<len>:<cache>:" */
size_t kr_ritem_prefix_len(const kr_request *r)
{
  char tmp[24];
  return 5 + kr_rput_uint(tmp, r->cache_len) + 1 + r->cache_len + 1;
}

void kr_rargs_key(kr_rargs *a, const kr_request *r, const void *key, size_t klen)
{
  char *p = a->at;
  memcpy(p, "kura:", 5);
  size_t n = 5 + kr_rput_uint(p + 5, r->cache_len);
  p[n++] = ':';
  memcpy(p + n, r->cache, r->cache_len);
  n += r->cache_len;
  p[n++] = ':';
  memcpy(p + n, key, klen);
  kr_rargs_add(a, p, n + klen);
  a->at += n + klen;
}

/* "-ERR ...", "-NOAUTH ..." and our scripts' errors -> KURA_E* codes. */
int kr_redis_map_error(const char *s)
{
  static const struct { const char *p; int err; } map[] = {
    {"NOAUTH", KURA_EAUTH},      {"WRONGPASS", KURA_EAUTH},   {"NOPERM", KURA_EPERM},
    {"OOM", KURA_ELIMIT},        {"LOADING", KURA_EUNAVAIL},  {"BUSY", KURA_EUNAVAIL},
    {"MASTERDOWN", KURA_EUNAVAIL}, {"TRYAGAIN", KURA_EUNAVAIL}, {"CLUSTERDOWN", KURA_EUNAVAIL},
    {"READONLY", KURA_EUNAVAIL}, {"MOVED", KURA_EUNAVAIL},    {"ASK", KURA_EUNAVAIL},
  };
  if (strstr(s, "KURA_NOTFOUND"))
    return KURA_ENOTFOUND;
  if (strstr(s, "KURA_PRECOND"))
    return KURA_EPRECOND;
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
    if (strncmp(s, map[i].p, strlen(map[i].p)) == 0)
      return map[i].err;
  return KURA_EBADREQ;
}

/* --- cache markers ------------------------------------------------------------- */

void kr_rargs_cache_marker(kr_rargs *a, const kr_request *r)
{
  memcpy(a->at, "kura:c:", 7);
  memcpy(a->at + 7, r->cache, r->cache_len);
  kr_rargs_add(a, a->at, 7 + r->cache_len);
  a->at += 7 + r->cache_len;
}

void kr_rargs_slot_marker(kr_rargs *a, const char *tags, const kr_request *r, unsigned slot)
{
  char *p = a->at;
  memcpy(p, "kura:m:{", 8);
  memcpy(p + 8, tags + KR_RTAG_LEN * slot, KR_RTAG_LEN);
  p[8 + KR_RTAG_LEN] = '}';
  memcpy(p + 9 + KR_RTAG_LEN, r->cache, r->cache_len);
  kr_rargs_add(a, p, KR_RMARKER_BYTES(r));
  a->at += KR_RMARKER_BYTES(r);
}

/* The 238,328 strings of three letters or digits cover every slot; the
 * search stops once all are found. CRC16 by table here: one table lookup
 * per byte instead of eight shifts. */
int kr_rslot_tags_build(char **out)
{
  static const char al[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  uint16_t crc[256];
  for (unsigned i = 0; i < 256; i++) {
    unsigned c = i << 8;
    for (int k = 0; k < 8; k++)
      c = c & 0x8000 ? (c << 1) ^ 0x1021 : c << 1;
    crc[i] = (uint16_t)c;
  }
  char *tags = calloc(KR_REDIS_SLOTS, KR_RTAG_LEN);
  if (!(*out = tags))
    return KURA_ENOMEM;
  unsigned found = 0, n = sizeof al - 1;
  for (unsigned v = 0; v < n * n * n && found < KR_REDIS_SLOTS; v++) {
    char t[KR_RTAG_LEN] = {al[v / (n * n)], al[v / n % n], al[v % n]};
    unsigned c = 0;
    for (int k = 0; k < KR_RTAG_LEN; k++)
      c = ((c << 8) ^ crc[((c >> 8) ^ (unsigned char)t[k]) & 0xff]) & 0xffff;
    char *at = tags + KR_RTAG_LEN * (c % KR_REDIS_SLOTS);
    if (!at[0])
      memcpy(at, t, KR_RTAG_LEN), found++;
  }
  return found == KR_REDIS_SLOTS ? 0 : KURA_EINTERNAL;
}

int kr_ritem_slot(const kr_request *r, const void *key, size_t klen, unsigned *slot)
{
  kr_rargs a;
  if (kr_rargs_init(&a, 1, kr_ritem_prefix_len(r) + klen))
    return KURA_ENOMEM;
  kr_rargs_key(&a, r, key, klen);
  *slot = kr_redis_slot(a.v[0], a.l[0]);
  kr_rargs_free(&a);
  return 0;
}

/* --- the scripts ------------------------------------------------------------ */

/* KEYS[1] is the cache list (single server) or the cache's marker in the
 * item key's slot (cluster: a script's keys must share one slot), KEYS[2]
 * the item key, ARGV[1] the cache name. */
#define CHECK_CACHE                                                         \
  "if redis.call('SISMEMBER',KEYS[1],ARGV[1])==0 then "                     \
  "return redis.error_reply('KURA_NOTFOUND cache') end "
#define CHECK_MARKER                                                        \
  "if redis.call('EXISTS',KEYS[1])==0 then "                                \
  "return redis.error_reply('KURA_NOTFOUND cache') end "
#define BODY_SET_IF                                                         \
  "local v=redis.call('GET',KEYS[2]) local c=ARGV[4] local ok "             \
  "if c=='1' then ok=not v elseif c=='2' then ok=v~=false "                 \
  "elseif c=='3' then ok=v==ARGV[5] elseif c=='4' then ok=v~=ARGV[5] "      \
  "elseif c=='5' then ok=v~=false and v~=ARGV[5] "                          \
  "elseif c=='6' then ok=(not v) or v==ARGV[5] else ok=true end "           \
  "if not ok then return 0 end "                                            \
  "redis.call('SET',KEYS[2],ARGV[2],'PX',ARGV[3]) return 1"
/* The new value comes back as the stored string: a Lua number (double)
 * would lose int64 precision. */
#define BODY_INCR                                                           \
  "local e=redis.call('EXISTS',KEYS[2]) "                                   \
  "local r=redis.pcall('INCRBY',KEYS[2],ARGV[2]) "                          \
  "if type(r)=='table' and r.err then return redis.error_reply('KURA_PRECOND '..r.err) end " \
  "if e==0 then redis.call('PEXPIRE',KEYS[2],ARGV[3]) end "                 \
  "return redis.call('GET',KEYS[2])"
#define BODY_TTL_SET                                                        \
  "local t=redis.call('PTTL',KEYS[2]) if t==-2 then return -1 end "         \
  "local n=tonumber(ARGV[2]) "                                              \
  "if ARGV[3]=='1' and (t<0 or n<=t) then return 0 end "                    \
  "if ARGV[3]=='2' and t>=0 and n>=t then return 0 end "                    \
  "redis.call('PEXPIRE',KEYS[2],ARGV[2]) return 1"
#define BODY_SET_BATCH                                                      \
  "for i=2,#KEYS do redis.call('SET',KEYS[i],ARGV[2*i-2],'PX',ARGV[2*i-1]) end return 1"

/* Single server: the cache list and the cache's marker key change together. */
#define BODY_CREATE                                                         \
  "local r=redis.call('SADD',KEYS[1],ARGV[1]) redis.call('SET',KEYS[2],'1') return r"
#define BODY_DROP                                                           \
  "local r=redis.call('SREM',KEYS[1],ARGV[1]) redis.call('DEL',KEYS[2]) return r"

const char *const kr_redis_scripts[2][KR_RS_COUNT_] = {
  {CHECK_CACHE BODY_SET_IF, CHECK_CACHE BODY_INCR, CHECK_CACHE BODY_TTL_SET,
   CHECK_CACHE BODY_SET_BATCH, BODY_CREATE, BODY_DROP},
  {CHECK_MARKER BODY_SET_IF, CHECK_MARKER BODY_INCR, CHECK_MARKER BODY_TTL_SET, NULL, NULL,
   NULL}, /* cluster */
};
