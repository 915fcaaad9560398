/* kura.json: encode Lua values as JSON, decode JSON with cJSON.
 *
 * Choices (also in the report / docs):
 * - JSON null decodes to kura.json.null (a light userdata, NULL), both as a
 *   value and inside arrays and objects, so arrays keep their length;
 *   encode writes null for kura.json.null and for a top-level nil.
 * - A table encodes as an array when its keys are exactly 1..n (n >= 1), or
 *   when it carries the array marker (kura.json.array(t), which decode puts on
 *   every array it makes, so `[]` survives a round trip); otherwise as an
 *   object. An empty unmarked table is `{}`. Integer and float keys of
 *   objects are written as strings; other key types raise.
 * - Lua integers encode exactly ("%lld"); floats with the fewest digits
 *   that read back the same; NaN and infinities raise. A decoded number is a
 *   Lua integer when it is integral and below 2^53 in magnitude, else a float (cJSON
 *   parses numbers as doubles, so larger integers lose precision).
 * - Strings are written as they are (UTF-8 passes through), with ", \ and
 *   control characters escaped. \uXXXX escapes, surrogate pairs included,
 *   decode to UTF-8 (cJSON); a \u0000 ends the decoded string there.
 * - Functions, threads, other userdata and nesting deeper than 1000 (a
 *   cycle, usually) raise: they are programming errors. Bad JSON text is a
 *   runtime failure: decode returns nil, err (a string with the byte offset).
 *
 * Encoding does not build a cJSON tree: it writes into a buffer kept in a
 * userdata on the Lua stack, so an error raised half-way leaks nothing.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <lauxlib.h>

#include "lua/binding.h"

#define JSON_MAX_DEPTH 1000

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

static void encode_string(jbuf *b, const char *s, size_t n)
{
  static const char hex[] = "0123456789abcdef";
  jb_reserve(b, n + 2);
  jb_char(b, '"');
  size_t start = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c != '"' && c != '\\')
      continue;
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
  jb_add(b, s + start, n - start);
  jb_char(b, '"');
}

/* The shortest of %.14g .. %.17g that reads back as the same double. */
static int format_float(lua_State *L, char *buf, size_t size, double d)
{
  if (!isfinite(d))
    return luaL_error(L, "kura.json.encode: cannot encode %f (not a finite number)", d);
  int n = 0;
  for (int prec = 14; prec <= 17; prec++) {
    n = snprintf(buf, size, "%.*g", prec, d);
    if (strtod(buf, NULL) == d)
      break;
  }
  return n;
}

static void encode_number(jbuf *b, int idx)
{
  char buf[64];
  int n;
  if (lua_isinteger(b->L, idx))
    n = snprintf(buf, sizeof buf, LUA_INTEGER_FMT, (LUAI_UACINT)lua_tointeger(b->L, idx));
  else
    n = format_float(b->L, buf, sizeof buf, lua_tonumber(b->L, idx));
  jb_add(b, buf, (size_t)n);
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
    if (depth >= JSON_MAX_DEPTH)
      luaL_error(L, "kura.json.encode: nesting deeper than %d (a cycle?)", JSON_MAX_DEPTH);
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

static void push_node(lua_State *L, const cJSON *node, int mt)
{
  luaL_checkstack(L, 3, "kura.json.decode");
  if (cJSON_IsString(node)) {
    lua_pushstring(L, node->valuestring);
  } else if (cJSON_IsNumber(node)) {
    double d = node->valuedouble;
    if (d == floor(d) && fabs(d) < 9007199254740992.0)
      lua_pushinteger(L, (lua_Integer)d);
    else
      lua_pushnumber(L, d);
  } else if (cJSON_IsBool(node)) {
    lua_pushboolean(L, cJSON_IsTrue(node));
  } else if (cJSON_IsArray(node)) {
    lua_createtable(L, cJSON_GetArraySize(node), 0);
    lua_Integer i = 1;
    for (const cJSON *c = node->child; c; c = c->next) {
      push_node(L, c, mt);
      lua_rawseti(L, -2, i++);
    }
    lua_pushvalue(L, mt);
    lua_setmetatable(L, -2);
  } else if (cJSON_IsObject(node)) {
    lua_createtable(L, 0, 4);
    for (const cJSON *c = node->child; c; c = c->next) {
      lua_pushstring(L, c->string);
      push_node(L, c, mt);
      lua_rawset(L, -3);
    }
  } else {
    lua_pushlightuserdata(L, NULL); /* null */
  }
}

/* Protected: (tree) -> the Lua value, so that a memory error cannot leak the
 * cJSON tree. */
static int push_tree(lua_State *L)
{
  const cJSON *root = lua_touserdata(L, 1);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &array_mt_key);
  push_node(L, root, 2);
  return 1;
}

/* kura.json.decode(s) -> value, or nil, err */
static int l_decode(lua_State *L)
{
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(s, len, &end, 0);
  size_t off = end ? (size_t)(end - s) : 0;
  while (root && off < len && strchr(" \t\r\n", s[off]) && s[off])
    off++;
  if (!root || off < len) {
    cJSON_Delete(root);
    lua_pushnil(L);
    if (off >= len) {
      lua_pushfstring(L, "invalid JSON: unexpected end of input at byte %d", (int)len);
    } else {
      char near[17];
      size_t n = len - off < 16 ? len - off : 16;
      memcpy(near, s + off, n);
      near[n] = '\0';
      lua_pushfstring(L, "invalid JSON at byte %d near '%s'", (int)off + 1, near);
    }
    return 2;
  }
  lua_pushcfunction(L, push_tree);
  lua_pushlightuserdata(L, root);
  int status = lua_pcall(L, 1, 1, 0);
  cJSON_Delete(root);
  if (status != LUA_OK)
    return lua_error(L);
  return 1;
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
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "array");
    lua_setfield(L, -2, "__jsontype");
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &array_mt_key);
  }
  lua_pop(L, 1);
  luaL_newlib(L, fns);
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, -2, "null");
  kr_lua_open_jsonl(L); /* kura.json.lines */
  lua_setfield(L, -2, "json");
}
