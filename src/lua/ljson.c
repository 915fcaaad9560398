/* kura.json: encode Lua values as JSON and decode JSON into Lua values,
 * exactly (core/json.h reads the text; this file builds the values).
 *
 * Choices:
 * - JSON null decodes to kura.json.null (a light userdata, NULL), both as a
 *   value and inside arrays and objects, so arrays keep their length;
 *   encode writes null for kura.json.null and for a top-level nil.
 * - A table encodes as an array when its keys are exactly 1..n (n >= 1), or
 *   when it carries the array marker (kura.json.array(t), which decode puts on
 *   every array it makes, so `[]` survives a round trip); otherwise as an
 *   object. An empty unmarked table is `{}`. Integer and float keys of
 *   objects are written as strings; other key types raise. Of an object's
 *   members with the same name, decode keeps the last.
 * - Numbers round-trip with their Lua type. Integers encode exactly; a
 *   number without fraction or exponent that fits int64 decodes as that
 *   integer (math.maxinteger and math.mininteger too), a larger one as the
 *   nearest float. Floats encode with the fewest digits that read back the
 *   same, and with ".0" when they look integral (2.0 -> "2.0"), so they
 *   decode as floats. NaN and infinities raise on encode; a number too large
 *   for a double (1e400) is bad JSON on decode.
 * - Strings are byte strings both ways: every byte JSON must escape (", \,
 *   0x00-0x1f) is escaped on encode, and every escape, \u0000 included,
 *   decodes to its bytes. JSON text is UTF-8: encode raises on a string that
 *   is not (binary data needs hex or base64 first), and decode refuses bytes
 *   that are not UTF-8 and \u escapes of lone surrogates, so that what one
 *   side accepts the other gives back unchanged.
 * - Functions, threads, other userdata and nesting deeper than 1000 (a
 *   cycle, usually) raise on encode: they are programming errors. Bad JSON
 *   text is a runtime failure: decode returns nil, err, a string that names
 *   the byte ("invalid JSON at byte 12: ..."); nesting deeper than 1000 is
 *   bad JSON too ("nested too deep").
 *
 * Encoding writes into a buffer kept in a userdata on the Lua stack, and
 * decoding builds on the Lua stack with nothing allocated outside Lua, so an
 * error raised half-way (out of memory) leaks nothing.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "core/json.h"
#include "lua/binding.h"


static const char array_mt_key = 'a'; /* registry: the array marker metatable */

/* --- encoding ------------------------------------------------------------------ */

typedef struct jbuf {
  lua_State *L;
  int box;      /* stack index of the userdata holding p */
  char *p;
  size_t len, cap;
} jbuf;

static void jb_reserve(jbuf *b, size_t n)
{
  if (b->cap - b->len >= n)
    return;
  size_t cap = b->cap * 2;
  while (cap - b->len < n)
    cap *= 2;
  char *np = lua_newuserdatauv(b->L, cap, 0);
  memcpy(np, b->p, b->len);
  lua_replace(b->L, b->box);
  b->p = np;
  b->cap = cap;
}

static void jb_add(jbuf *b, const char *s, size_t n)
{
  jb_reserve(b, n);
  memcpy(b->p + b->len, s, n);
  b->len += n;
}

static void jb_char(jbuf *b, char c)
{
  jb_reserve(b, 1);
  b->p[b->len++] = c;
}

/* Raises unless s is UTF-8: JSON text is, and a string that is not could
 * not come back from any JSON reader (ours included) as it went in. */
static void check_utf8(lua_State *L, const char *s, size_t n)
{
  size_t ok = kr_json_utf8_prefix(s, n);
  if (ok < n) {
    char msg[200];
    snprintf(msg, sizeof msg, "kura.json.encode: a string is not UTF-8 (byte 0x%02x at byte "
             "%zu of %zu); JSON text is UTF-8: encode binary data first (hex, base64)",
             (unsigned char)s[ok], ok + 1, n);
    luaL_error(L, "%s", msg);
  }
}

static void encode_string(jbuf *b, const char *s, size_t n)
{
  static const char hex[] = "0123456789abcdef";
  unsigned high = 0;
  jb_reserve(b, n + 2);
  jb_char(b, '"');
  size_t start = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c != '"' && c != '\\') {
      high |= c;
      continue;
    }
    jb_add(b, s + start, i - start);
    start = i + 1;
    char esc[6] = {'\\', 0};
    switch (c) {
    case '"': esc[1] = '"'; break;
    case '\\': esc[1] = '\\'; break;
    case '\n': esc[1] = 'n'; break;
    case '\r': esc[1] = 'r'; break;
    case '\t': esc[1] = 't'; break;
    case '\b': esc[1] = 'b'; break;
    case '\f': esc[1] = 'f'; break;
    default:
      memcpy(esc + 1, "u00", 3);
      esc[4] = hex[c >> 4];
      esc[5] = hex[c & 15];
      jb_add(b, esc, 6);
      continue;
    }
    jb_add(b, esc, 2);
  }
  if (high & 0x80)
    check_utf8(b->L, s, n);
  jb_add(b, s + start, n - start);
  jb_char(b, '"');
}

/* A float as kr_json_format_double writes it; NaN and infinities raise. */
static size_t format_float(lua_State *L, char *buf, double d)
{
  if (!isfinite(d))
    luaL_error(L, "kura.json.encode: cannot encode %f (JSON has no NaN or infinity)", d);
  return kr_json_format_double(d, buf);
}

static void encode_number(jbuf *b, int idx)
{
  char buf[64];
  size_t n;
  if (lua_isinteger(b->L, idx))
    n = (size_t)snprintf(buf, sizeof buf, LUA_INTEGER_FMT, (LUAI_UACINT)lua_tointeger(b->L, idx));
  else
    n = format_float(b->L, buf, lua_tonumber(b->L, idx));
  jb_add(b, buf, n);
}

/* Length n if the table at idx encodes as an array, -1 for an object. */
static lua_Integer array_length(lua_State *L, int idx)
{
  if (lua_getmetatable(L, idx)) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &array_mt_key);
    int marked = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    if (marked)
      return (lua_Integer)lua_rawlen(L, idx);
  }
  lua_Integer n = 0, max = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1) {
      lua_pop(L, 1);
      return -1;
    }
    lua_Integer k = lua_tointeger(L, -1);
    max = k > max ? k : max;
    n++;
  }
  return n > 0 && max == n ? n : -1;
}

static void encode_value(jbuf *b, int idx, int depth);

static void encode_array(jbuf *b, int idx, lua_Integer n, int depth)
{
  jb_char(b, '[');
  for (lua_Integer i = 1; i <= n; i++) {
    if (i > 1)
      jb_char(b, ',');
    lua_rawgeti(b->L, idx, i);
    encode_value(b, lua_gettop(b->L), depth + 1);
    lua_pop(b->L, 1);
  }
  jb_char(b, ']');
}

static void encode_key(jbuf *b, int kidx)
{
  lua_State *L = b->L;
  if (lua_type(L, kidx) == LUA_TSTRING) {
    size_t n;
    const char *s = lua_tolstring(L, kidx, &n);
    encode_string(b, s, n);
  } else if (lua_type(L, kidx) == LUA_TNUMBER) {
    jb_char(b, '"');
    encode_number(b, kidx);
    jb_char(b, '"');
  } else {
    luaL_error(L, "kura.json.encode: cannot encode a table key of type %s",
               luaL_typename(L, kidx));
  }
}

static void encode_object(jbuf *b, int idx, int depth)
{
  lua_State *L = b->L;
  int first = 1;
  jb_char(b, '{');
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (!first)
      jb_char(b, ',');
    first = 0;
    encode_key(b, lua_gettop(L) - 1);
    jb_char(b, ':');
    encode_value(b, lua_gettop(L), depth + 1);
    lua_pop(L, 1);
  }
  jb_char(b, '}');
}

static void encode_value(jbuf *b, int idx, int depth)
{
  lua_State *L = b->L;
  switch (lua_type(L, idx)) {
  case LUA_TNIL: jb_add(b, "null", 4); break;
  case LUA_TBOOLEAN:
    if (lua_toboolean(L, idx))
      jb_add(b, "true", 4);
    else
      jb_add(b, "false", 5);
    break;
  case LUA_TNUMBER: encode_number(b, idx); break;
  case LUA_TSTRING: {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    encode_string(b, s, n);
    break;
  }
  case LUA_TTABLE: {
    if (depth >= KR_JSON_MAX_DEPTH)
      luaL_error(L, "kura.json.encode: nesting deeper than %d (a cycle?)", KR_JSON_MAX_DEPTH);
    luaL_checkstack(L, 4, "kura.json.encode");
    lua_Integer n = array_length(L, idx);
    if (n >= 0)
      encode_array(b, idx, n, depth);
    else
      encode_object(b, idx, depth);
    break;
  }
  case LUA_TLIGHTUSERDATA:
    if (lua_touserdata(L, idx) == NULL) {
      jb_add(b, "null", 4);
      break;
    }
    /* fall through */
  default:
    luaL_error(L, "kura.json.encode: cannot encode a value of type %s", luaL_typename(L, idx));
  }
}

/* kura.json.encode(v) -> string */
static int l_encode(lua_State *L)
{
  luaL_checkany(L, 1);
  lua_settop(L, 1);
  jbuf b = {L, 2, NULL, 0, 256};
  b.p = lua_newuserdatauv(L, b.cap, 0);
  encode_value(&b, 1, 0);
  lua_pushlstring(L, b.p, b.len);
  return 1;
}

/* --- decoding ------------------------------------------------------------------ */

void kr_lua_json_push_string(lua_State *L, const char *s, size_t len, int escaped)
{
  if (!escaped) {
    lua_pushlstring(L, s, len);
    return;
  }
  luaL_Buffer b;
  char *out = luaL_buffinitsize(L, &b, len);
  luaL_pushresultsize(&b, kr_json_unescape(s, len, out));
}

static void push_string(lua_State *L, const kr_json *j)
{
  kr_lua_json_push_string(L, j->str, j->len, j->escaped);
}

/* Pushes the scalar of token tok. */
static void push_scalar(lua_State *L, const kr_json *j, kr_json_tok tok)
{
  switch (tok) {
  case KR_JSON_STRING: push_string(L, j); break;
  case KR_JSON_INT: lua_pushinteger(L, (lua_Integer)j->i); break;
  case KR_JSON_FLOAT: lua_pushnumber(L, (lua_Number)j->d); break;
  case KR_JSON_TRUE: lua_pushboolean(L, 1); break;
  case KR_JSON_FALSE: lua_pushboolean(L, 0); break;
  default: lua_pushlightuserdata(L, NULL); break; /* null */
  }
}

/* An array or object being built. Its first values wait on the stack above
 * its slot, so that the table is made at its size (most are small: growing
 * one a member at a time would rehash it several times); past PENDING_MAX
 * of them it is made, and the rest go straight in. */
typedef struct level {
  int slot;          /* stack index: nil, then the table */
  int object;
  int made;
  lua_Integer n;     /* array: elements in the table */
} level;

#define PENDING_MAX 32 /* values (array) or members (object) held back */

/* Makes lv's table from the values above its slot, sized for them. */
static void make_table(lua_State *L, level *lv, int mt)
{
  int top = lua_gettop(L), count = top - lv->slot;
  lua_createtable(L, lv->object ? 0 : count, lv->object ? count / 2 : 0);
  if (!lv->object) {
    lua_pushvalue(L, mt);
    lua_setmetatable(L, -2);
  }
  lua_replace(L, lv->slot);
  for (int i = lv->slot + 1; i <= top; i += 1 + lv->object) {
    lua_pushvalue(L, i);
    if (lv->object) {
      lua_pushvalue(L, i + 1);
      lua_rawset(L, lv->slot); /* in order: of two equal names the last wins */
    } else {
      lua_rawseti(L, lv->slot, ++lv->n);
    }
  }
  lua_settop(L, lv->slot);
  lv->made = 1;
}

/* The value on top of the stack goes into the table of lv (an object's
 * member name is below it). */
static void add_value(lua_State *L, level *lv, int mt)
{
  if (lv->made) {
    if (lv->object)
      lua_rawset(L, lv->slot);
    else
      lua_rawseti(L, lv->slot, ++lv->n);
  } else if (lua_gettop(L) - lv->slot >= PENDING_MAX * (1 + lv->object)) {
    make_table(L, lv, mt);
  }
}

/* Builds the next value of j on L's stack, as its tokens come. Returns 0
 * with the value pushed, or -1 at j's error (the stack above its top on
 * entry is then garbage). Nothing is allocated outside Lua, so a memory
 * error raised half-way leaks nothing. */
int kr_lua_json_build(lua_State *L, kr_json *j)
{
  level lv[KR_JSON_MAX_DEPTH + 1];
  lua_rawgetp(L, LUA_REGISTRYINDEX, &array_mt_key);
  int mt = lua_gettop(L);
  for (;;) {
    kr_json_tok tok = kr_json_next(j);
    switch (tok) {
    case KR_JSON_ERROR:
    case KR_JSON_END:
      return -1;
    case KR_JSON_KEY:
      push_string(L, j);
      continue;
    case KR_JSON_ARRAY:
    case KR_JSON_OBJECT:
      luaL_checkstack(L, 2 * PENDING_MAX + 8, "kura.json.decode: nesting");
      lua_pushnil(L);
      lv[j->depth] = (level){lua_gettop(L), tok == KR_JSON_OBJECT, 0, 0};
      continue;
    case KR_JSON_ARRAY_END:
    case KR_JSON_OBJECT_END:
      if (!lv[j->depth + 1].made)
        make_table(L, &lv[j->depth + 1], mt);
      break; /* the finished table is on top */
    default:
      push_scalar(L, j, tok);
      break;
    }
    if (j->depth == 0) {
      lua_remove(L, mt);
      return 0;
    }
    add_value(L, &lv[j->depth], mt);
  }
}

/* Up to 16 bytes of s from at, as a message shows them: printable ASCII as
 * it is, other bytes as \xNN. */
static void excerpt(char out[72], const char *s, size_t len, size_t at)
{
  static const char hex[] = "0123456789abcdef";
  size_t o = 0;
  for (size_t i = at; i < len && i < at + 16; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c < 0x7f) {
      out[o++] = (char)c;
    } else {
      memcpy(out + o, "\\x", 2);
      out[o + 2] = hex[c >> 4], out[o + 3] = hex[c & 15];
      o += 4;
    }
  }
  out[o] = '\0';
}

/* Pushes "invalid JSON at byte N: what near '...'" for j's error in s. */
void kr_lua_json_error(lua_State *L, const kr_json *j, const char *s, size_t len)
{
  char near[72], msg[256];
  excerpt(near, s, len, j->err_at);
  snprintf(msg, sizeof msg, "invalid JSON at byte %zu: %s%s%s%s", j->err_at + 1, j->err,
           near[0] ? " near '" : "", near, near[0] ? "'" : "");
  lua_pushstring(L, msg);
}

/* kura.json.decode(s) -> value, or nil, err */
static int l_decode(lua_State *L)
{
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  kr_json j;
  kr_json_init(&j, s, len);
  lua_settop(L, 1);
  if (kr_lua_json_build(L, &j) == 0 && kr_json_next(&j) == KR_JSON_END)
    return 1;
  lua_settop(L, 1);
  lua_pushnil(L);
  kr_lua_json_error(L, &j, s, len);
  return 2;
}

/* kura.json.array([t]) -> t, marked to encode as an array (even when empty). */
static int l_array(lua_State *L)
{
  if (lua_isnoneornil(L, 1))
    lua_newtable(L);
  else
    luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &array_mt_key);
  lua_setmetatable(L, 1);
  return 1;
}

void kr_lua_open_json(lua_State *L)
{
  static const luaL_Reg fns[] = {
    {"encode", l_encode}, {"decode", l_decode}, {"array", l_array}, {NULL, NULL}};
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &array_mt_key) != LUA_TTABLE) {
    lua_pop(L, 1);
    /* registered by name, like the C objects' metatables: shared by every
     * script, so the sandbox hands out only a read-only view of it */
    luaL_newmetatable(L, "kura.json.array");
    lua_pushliteral(L, "array");
    lua_setfield(L, -2, "__jsontype");
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &array_mt_key);
  }
  lua_pop(L, 1);
  luaL_newlib(L, fns);
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, -2, "null");
}
