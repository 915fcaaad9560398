/* kura.json.lines(path): a streaming reader of JSON Lines for warm-ups.
 *
 * io.lines plus kura.json.decode costs ~2.4 us a line here (stdio reads a
 * character at a time, and every line becomes a Lua table), which capped a
 * warm-up of the common {"key": "...", "value": "...", "ttl": n} lines near
 * 300k items/s. This reader takes a line with getline, reads that shape
 * token by token (core/json.h: the same reader, and so the same rules, as
 * kura.json.decode) and returns its three fields directly, without a table;
 * any other line is decoded whole:
 *
 *   local r = assert(kura.json.lines(path))   -- nil, err if it cannot be read
 *   r:next()  -> key, value, ttl     the common shape: an object whose "key"
 *                                    and "value" are strings and whose "ttl"
 *                                    is a number or absent (other members
 *                                    are ignored; ttl nil when absent)
 *             -> false, v            any other JSON value v (decoded)
 *             -> false, nil, err     a line that is not JSON (trailing text
 *                                    included): err is "line N: invalid JSON
 *                                    at byte M: ..."
 *             -> nil                 at the end
 *   r:line()  -> number of the line last returned;  r:tell() -> bytes read
 *   r:close()  (also on __gc and __close)
 *
 * Blank lines are skipped; a trailing "\r" is dropped. lines() reads the
 * first byte, so that a path it cannot read (a directory) fails there, not at
 * the first next(). Reading is sequential and never suspends the task.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "core/json.h"
#include "lua/binding.h"

#define READER_MT "kura.json.reader"

typedef struct reader {
  FILE *f;
  char *buf;        /* getline's buffer */
  size_t cap;
  long long lineno;
  long long bytes;  /* consumed so far */
} reader;

/* Argument 1 as a reader: its metatable is upvalue 1 of every method (a
 * compare instead of luaL_checkudata's registry lookup by name, which cost
 * ~5% of a warm-up's reading). */
static reader *check_reader(lua_State *L)
{
  reader *r = lua_touserdata(L, 1);
  if (r && lua_getmetatable(L, 1)) {
    int ok = lua_rawequal(L, -1, lua_upvalueindex(1));
    lua_pop(L, 1);
    if (ok)
      return r;
  }
  luaL_typeerror(L, 1, READER_MT);
  return NULL;
}

static void reader_close(reader *r)
{
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

/* --- the common shape, read token by token ------------------------------------ */

typedef struct span {
  const char *str;   /* NULL: not seen */
  size_t len;
  int escaped;
} span;

typedef struct common {
  span key, val;     /* the two strings, as the reader found them */
  kr_json_tok ttl;   /* KR_JSON_INT, KR_JSON_FLOAT or KR_JSON_END (absent) */
  int64_t ttl_i;
  double ttl_d;
} common;

/* One member of the object: records key, value and ttl; 0 goes on, -1
 * leaves the line to the general path. */
static int common_member(kr_json *j, common *c)
{
  const char *name = j->str;
  size_t n = j->escaped ? 0 : j->len; /* an escaped name is none of ours */
  kr_json_tok tok = kr_json_next(j);
  if ((n == 3 && memcmp(name, "key", 3) == 0) || (n == 5 && memcmp(name, "value", 5) == 0)) {
    if (tok != KR_JSON_STRING)
      return -1;
    /* of two equal names the last wins, as in kura.json.decode */
    *(n == 3 ? &c->key : &c->val) = (span){j->str, j->len, j->escaped};
    return 0;
  }
  if (n == 3 && memcmp(name, "ttl", 3) == 0) {
    if (tok != KR_JSON_INT && tok != KR_JSON_FLOAT)
      return -1;
    c->ttl = tok, c->ttl_i = j->i, c->ttl_d = j->d;
    return 0;
  }
  return kr_json_skip(j, tok);
}

/* key, value, ttl of a line of the common shape (3 pushed); 0 pushes
 * nothing and leaves the line to the general path. */
static int read_common(lua_State *L, const char *s, size_t len)
{
  kr_json j;
  common c;
  c.key.str = c.val.str = NULL;
  c.ttl = KR_JSON_END;
  kr_json_init(&j, s, len);
  if (kr_json_next(&j) != KR_JSON_OBJECT)
    return 0;
  kr_json_tok tok;
  while ((tok = kr_json_next(&j)) == KR_JSON_KEY)
    if (common_member(&j, &c))
      return 0;
  if (tok != KR_JSON_OBJECT_END || kr_json_next(&j) != KR_JSON_END || !c.key.str || !c.val.str)
    return 0;
  kr_lua_json_push_string(L, c.key.str, c.key.len, c.key.escaped);
  kr_lua_json_push_string(L, c.val.str, c.val.len, c.val.escaped);
  if (c.ttl == KR_JSON_INT)
    lua_pushinteger(L, (lua_Integer)c.ttl_i);
  else if (c.ttl == KR_JSON_FLOAT)
    lua_pushnumber(L, (lua_Number)c.ttl_d);
  else
    lua_pushnil(L);
  return 3;
}

/* false, v for another JSON value; false, nil, err for a line that is not
 * JSON. */
static int read_other(lua_State *L, reader *r, size_t len)
{
  kr_json j;
  int top = lua_gettop(L);
  kr_json_init(&j, r->buf, len);
  lua_pushboolean(L, 0);
  if (kr_lua_json_build(L, &j) == 0 && kr_json_next(&j) == KR_JSON_END)
    return 2;
  lua_settop(L, top + 1);
  lua_pushnil(L);
  lua_pushfstring(L, "line %I: ", (lua_Integer)r->lineno);
  kr_lua_json_error(L, &j, r->buf, len);
  lua_concat(L, 2);
  return 3;
}

static int l_next(lua_State *L)
{
  reader *r = check_reader(L);
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
    int pushed = read_common(L, r->buf, len);
    return pushed ? pushed : read_other(L, r, len);
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

/* kura.json.lines(path) -> reader, or nil, err. The first byte is read here
 * (and put back): a path that opens but cannot be read fails now. */
static int l_lines(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  reader *r = lua_newuserdatauv(L, sizeof *r, 0);
  memset(r, 0, sizeof *r);
  luaL_setmetatable(L, READER_MT);
  errno = 0;
  r->f = fopen(path, "rb");
  int c = r->f ? getc(r->f) : EOF;
  if (!r->f || (c == EOF && ferror(r->f))) {
    int e = errno;
    reader_close(r);
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", path, strerror(e ? e : EIO));
    return 2;
  }
  if (c != EOF)
    ungetc(c, r->f);
  return 1;
}

void kr_lua_open_jsonl(lua_State *L)
{
  static const luaL_Reg methods[] = {
    {"next", l_next}, {"line", l_line}, {"tell", l_tell}, {"close", l_close}, {NULL, NULL}};
  if (luaL_newmetatable(L, READER_MT)) {
    luaL_newlibtable(L, methods);
    lua_pushvalue(L, -2);
    luaL_setfuncs(L, methods, 1);
    lua_setfield(L, -2, "__index");
    lua_pushvalue(L, -1);
    lua_pushcclosure(L, l_close, 1);
    lua_setfield(L, -2, "__gc");
    lua_pushvalue(L, -1);
    lua_pushcclosure(L, l_close, 1);
    lua_setfield(L, -2, "__close");
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, l_lines);
  lua_setfield(L, -2, "lines");
}
