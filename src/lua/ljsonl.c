/* kura.json.lines(path): a streaming reader of JSON Lines for warm-ups.
 *
 * io.lines plus kura.json.decode costs ~2.4 us a line here (stdio reads a
 * character at a time, and every line becomes a Lua table), which capped a
 * warm-up of the common {"key": "...", "value": "...", "ttl": n} lines near
 * 300k items/s. This reader takes a line with getline, scans that shape in
 * place (strings without escapes, a plain number; cJSON for the rest) and
 * returns its three fields directly, without a table. Any line of another
 * shape comes back raw, for the caller's general path:
 *
 *   local r = assert(kura.json.lines(path))
 *   r:next()  -> key, value, ttl (ttl nil when absent)   the common shape
 *             -> false, line                              any other line
 *             -> nil                                      at the end
 *   r:line()  -> number of the line last returned;  r:tell() -> bytes read
 *   r:close()  (also on __gc and __close)
 *
 * Blank lines are skipped; a trailing "\r" is dropped. Reading is
 * sequential and never suspends the task.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <lauxlib.h>

#include "lua/binding.h"

#define READER_MT "kura.json.reader"

typedef struct reader {
  FILE *f;
  char *buf;        /* getline's buffer */
  size_t cap;
  cJSON *pending;   /* the last line's tree, freed at the next call or __gc */
  long long lineno;
  long long bytes;  /* consumed so far */
} reader;

static reader *check_reader(lua_State *L)
{
  return luaL_checkudata(L, 1, READER_MT);
}

static void reader_close(reader *r)
{
  cJSON_Delete(r->pending);
  r->pending = NULL;
  if (r->f)
    fclose(r->f);
  r->f = NULL;
  free(r->buf);
  r->buf = NULL;
  r->cap = 0;
}

static int is_blank(const char *s, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (!strchr(" \t\r\n", s[i]))
      return 0;
  return 1;
}

/* Pushes key, value[, ttl] when the tree has the common shape. */
static int push_common(lua_State *L, const cJSON *o)
{
  if (!cJSON_IsObject(o))
    return 0;
  const cJSON *k = cJSON_GetObjectItemCaseSensitive(o, "key");
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "value");
  const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "ttl");
  if (!cJSON_IsString(k) || !cJSON_IsString(v) || (t && !cJSON_IsNumber(t)))
    return 0;
  lua_pushstring(L, k->valuestring);
  lua_pushstring(L, v->valuestring);
  if (t)
    lua_pushnumber(L, t->valuedouble);
  else
    lua_pushnil(L);
  return 3;
}

/* --- the fast path: the common shape, scanned in place ---------------------- */

typedef struct span {
  const char *p;
  size_t n;
} span;

static const char *skip_ws(const char *p, const char *e)
{
  while (p < e && (*p == ' ' || *p == '\t'))
    p++;
  return p;
}

/* A string without escapes: its bytes between the quotes. NULL otherwise
 * (escapes, control bytes: the general path decodes those). */
static const char *scan_string(const char *p, const char *e, span *out)
{
  if (p >= e || *p != '"')
    return NULL;
  const char *q = ++p;
  while (q < e && *q != '"') {
    if (*q == '\\' || (unsigned char)*q < 0x20)
      return NULL;
    q++;
  }
  if (q >= e)
    return NULL;
  out->p = p;
  out->n = (size_t)(q - p);
  return q + 1;
}

/* A plain decimal number (digits, an optional fraction): *out. */
static const char *scan_number(const char *p, const char *e, double *out)
{
  double v = 0, scale = 1;
  const char *start = p;
  while (p < e && *p >= '0' && *p <= '9')
    v = v * 10 + (*p++ - '0');
  if (p == start || (p - start > 1 && *start == '0'))
    return NULL;
  if (p < e && *p == '.') {
    const char *f = ++p;
    while (p < e && *p >= '0' && *p <= '9') {
      scale /= 10;
      v += (*p++ - '0') * scale;
    }
    if (p == f)
      return NULL;
  }
  if (p < e && (*p == 'e' || *p == 'E'))
    return NULL;
  *out = v;
  return p;
}

/* key, value, ttl of a line that is exactly an object of the fields "key"
 * and "value" (strings without escapes) and optionally "ttl" (a plain
 * number), in any order; 0 pushes anything else to the general path. */
static int fast_common(lua_State *L, const char *s, size_t len)
{
  const char *p = skip_ws(s, s + len), *e = s + len;
  span key = {NULL, 0}, val = {NULL, 0}, name;
  double ttl = 0;
  int have_ttl = 0;
  if (p >= e || *p++ != '{')
    return 0;
  for (;;) {
    p = skip_ws(p, e);
    if (!(p = scan_string(p, e, &name)))
      return 0;
    p = skip_ws(p, e);
    if (p >= e || *p++ != ':')
      return 0;
    p = skip_ws(p, e);
    if (name.n == 3 && memcmp(name.p, "key", 3) == 0 && !key.p)
      p = scan_string(p, e, &key);
    else if (name.n == 5 && memcmp(name.p, "value", 5) == 0 && !val.p)
      p = scan_string(p, e, &val);
    else if (name.n == 3 && memcmp(name.p, "ttl", 3) == 0 && !have_ttl)
      p = scan_number(p, e, &ttl), have_ttl = 1;
    else
      return 0;
    if (!p)
      return 0;
    p = skip_ws(p, e);
    if (p < e && *p == ',') {
      p++;
      continue;
    }
    if (p < e && *p == '}')
      break;
    return 0;
  }
  if (!key.p || !val.p || skip_ws(p + 1, e) != e)
    return 0;
  lua_pushlstring(L, key.p, key.n);
  lua_pushlstring(L, val.p, val.n);
  if (have_ttl)
    lua_pushnumber(L, ttl);
  else
    lua_pushnil(L);
  return 3;
}

static int l_next(lua_State *L)
{
  reader *r = check_reader(L);
  cJSON_Delete(r->pending);
  r->pending = NULL;
  if (!r->f)
    return 0;
  for (;;) {
    errno = 0;
    ssize_t n = getline(&r->buf, &r->cap, r->f);
    if (n < 0) {
      if (ferror(r->f))
        return luaL_error(L, "kura.json.lines: read error: %s", strerror(errno));
      return 0;
    }
    r->bytes += n;
    r->lineno++;
    size_t len = (size_t)n;
    while (len && (r->buf[len - 1] == '\n' || r->buf[len - 1] == '\r'))
      len--;
    if (is_blank(r->buf, len))
      continue;
    int fast = fast_common(L, r->buf, len);
    if (fast)
      return fast;
    /* Kept in the reader so that a memory error while pushing leaks nothing. */
    r->pending = cJSON_ParseWithLength(r->buf, len);
    int pushed = r->pending ? push_common(L, r->pending) : 0;
    if (pushed)
      return pushed;
    lua_pushboolean(L, 0);
    lua_pushlstring(L, r->buf, len);
    return 2;
  }
}

static int l_line(lua_State *L)
{
  lua_pushinteger(L, check_reader(L)->lineno);
  return 1;
}

static int l_tell(lua_State *L)
{
  lua_pushinteger(L, check_reader(L)->bytes);
  return 1;
}

static int l_close(lua_State *L)
{
  reader_close(check_reader(L));
  return 0;
}

/* kura.json.lines(path) -> reader, or nil, err */
static int l_lines(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  reader *r = lua_newuserdatauv(L, sizeof *r, 0);
  memset(r, 0, sizeof *r);
  luaL_setmetatable(L, READER_MT);
  r->f = fopen(path, "rb");
  if (!r->f) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", path, strerror(errno));
    return 2;
  }
  return 1;
}

void kr_lua_open_jsonl(lua_State *L)
{
  static const luaL_Reg methods[] = {
    {"next", l_next}, {"line", l_line}, {"tell", l_tell}, {"close", l_close}, {NULL, NULL}};
  if (luaL_newmetatable(L, READER_MT)) {
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, l_close);
    lua_setfield(L, -2, "__close");
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, l_lines);
  lua_setfield(L, -2, "lines");
}
