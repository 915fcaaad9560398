/* string.find, string.match, string.gmatch and string.gsub for the sandbox:
 * Lua's patterns (reference manual, section 6.4.1), written here so that the
 * matcher's work is charged to the instruction budget. The stock matcher
 * runs in C, where the count hook never fires, and it backtracks: with
 * ("a"):rep(1000):find(".-.-.-b") it runs for minutes inside one call. Here
 * every step (an attempt to match at a position, a character tried by a
 * repetition, a character of a %b scan, a set's length) is counted, and
 * every PM_TICK steps are charged (kr_budget_charge), which raises
 * "instruction budget exceeded" once the call's budget is spent.
 *
 * Otherwise these functions give exactly what Lua 5.4's give: the same
 * results, the same errors with the same messages, the same limits (32
 * captures; "pattern too complex" past 200 nested steps, so the recursion
 * below is placed where Lua's is) and the same laziness (a malformed item is
 * reported only when the matcher reaches it). tests/unit/test_pattern.c holds
 * them to that with a fuzzer against the stock functions.
 */
#include <ctype.h>
#include <stdint.h>
#include <string.h>

#include <lauxlib.h>

#include "runtime/budget.h"
#include "runtime/pattern.h"

#define PM_MAXCAP 32       /* Lua's LUA_MAXCAPTURES */
#define PM_MAXDEPTH 200    /* Lua's MAXCCALLS of lstrlib.c */
#define PM_OPEN (-1)       /* a capture not closed yet */
#define PM_POSITION (-2)   /* a position capture: () */
#define PM_TICK 1024       /* steps between two charges */
#define ESC '%'
#define SPECIALS "^$*+?.([%-"

/* Steps done, charged to the budget every PM_TICK. */
typedef struct meter {
  lua_State *L;
  kr_runtime *rt;  /* NULL: nothing is charged */
  long left;       /* steps before the next charge */
} meter;

/* One match in progress. */
typedef struct pm {
  meter m;
  const char *src, *src_end; /* the subject; *src_end is its NUL */
  const char *pat_end;       /* the pattern's end; *pat_end is its NUL */
  int depth;                 /* nested steps left */
  int ncap;                  /* captures opened */
  struct {
    const char *at;
    ptrdiff_t len;           /* or PM_OPEN, PM_POSITION */
  } cap[PM_MAXCAP];
} pm;

static void meter_flush(meter *m)
{
  uint64_t used = (uint64_t)(PM_TICK - m->left);
  m->left = PM_TICK;
  kr_budget_charge(m->L, m->rt, used);
}

static inline void tick(meter *m, long n)
{
  if ((m->left -= n) <= 0)
    meter_flush(m);
}

static void meter_init(meter *m, lua_State *L)
{
  m->L = L;
  m->rt = lua_touserdata(L, lua_upvalueindex(1));
  m->left = PM_TICK;
}

/* --- one item ------------------------------------------------------------------ */

/* The end of the single-character class at p (before its quantifier). */
static const char *item_end(pm *ms, const char *p)
{
  char c = *p++;
  if (c == ESC) {
    if (p == ms->pat_end)
      luaL_error(ms->m.L, "malformed pattern (ends with '%%')");
    return p + 1;
  }
  if (c != '[')
    return p;
  if (*p == '^')
    p++;
  do { /* the first character is a member even if it is ']' */
    if (p == ms->pat_end)
      luaL_error(ms->m.L, "malformed pattern (missing ']')");
    c = *p++;
    if (c == ESC && p < ms->pat_end)
      p++;
  } while (*p != ']');
  return p + 1;
}

/* c against %<cl>: a class letter (its upper case is the complement), or
 * else cl itself. */
static int class_match(int c, int cl)
{
  int in;
  switch (tolower(cl)) {
  case 'a': in = isalpha(c); break;
  case 'c': in = iscntrl(c); break;
  case 'd': in = isdigit(c); break;
  case 'g': in = isgraph(c); break;
  case 'l': in = islower(c); break;
  case 'p': in = ispunct(c); break;
  case 's': in = isspace(c); break;
  case 'u': in = isupper(c); break;
  case 'w': in = isalnum(c); break;
  case 'x': in = isxdigit(c); break;
  case 'z': in = c == 0; break; /* deprecated, still in 5.4 */
  default: return cl == c;
  }
  return islower(cl) ? in != 0 : in == 0;
}

/* c against the set [...] that opens at p and closes at close. */
static int set_match(int c, const char *p, const char *close)
{
  int hit = 1;
  if (p[1] == '^') {
    hit = 0;
    p++;
  }
  for (p++; p < close; p++) {
    if (*p == ESC) {
      p++;
      if (class_match(c, (unsigned char)*p))
        return hit;
    } else if (p[1] == '-' && p + 2 < close) {
      if ((unsigned char)p[0] <= c && c <= (unsigned char)p[2])
        return hit;
      p += 2;
    } else if ((unsigned char)*p == c) {
      return hit;
    }
  }
  return !hit;
}

/* Whether the subject character at s matches the item p..ep. */
static int one_match(pm *ms, const char *s, const char *p, const char *ep)
{
  if (s >= ms->src_end)
    return 0;
  int c = (unsigned char)*s;
  switch (*p) {
  case '.': return 1;
  case ESC: return class_match(c, (unsigned char)p[1]);
  case '[':
    tick(&ms->m, (ep - p) >> 4);
    return set_match(c, p, ep - 1);
  default: return (unsigned char)*p == c;
  }
}

/* --- the matcher ------------------------------------------------------------------ */

static const char *do_match(pm *ms, const char *s, const char *p);

/* %bxy at s (p points at x). */
static const char *balance(pm *ms, const char *s, const char *p)
{
  if (p >= ms->pat_end - 1)
    luaL_error(ms->m.L, "malformed pattern (missing arguments to '%%b')");
  if (*s != *p)
    return NULL;
  const char *from = s;
  int open = p[0], close = p[1], depth = 1;
  while (++s < ms->src_end) {
    if (*s == close) {
      if (--depth == 0)
        break;
    } else if (*s == open) {
      depth++;
    }
  }
  tick(&ms->m, 1 + ((s - from) >> 2));
  return s < ms->src_end ? s + 1 : NULL;
}

/* item* (greedy): as many as match, then back off one at a time. */
static const char *greedy(pm *ms, const char *s, const char *p, const char *ep)
{
  ptrdiff_t n = 0;
  while (one_match(ms, s + n, p, ep))
    n++;
  tick(&ms->m, n >> 2);
  for (; n >= 0; n--) {
    const char *e = do_match(ms, s + n, ep + 1);
    if (e)
      return e;
  }
  return NULL;
}

/* item- (lazy): as few as the rest of the pattern allows. */
static const char *lazy(pm *ms, const char *s, const char *p, const char *ep)
{
  for (;; s++) {
    const char *e = do_match(ms, s, ep + 1);
    if (e)
      return e;
    if (!one_match(ms, s, p, ep))
      return NULL;
  }
}

static const char *open_capture(pm *ms, const char *s, const char *p, ptrdiff_t what)
{
  if (ms->ncap >= PM_MAXCAP)
    luaL_error(ms->m.L, "too many captures");
  ms->cap[ms->ncap].at = s;
  ms->cap[ms->ncap].len = what;
  ms->ncap++;
  const char *e = do_match(ms, s, p);
  if (!e)
    ms->ncap--;
  return e;
}

static const char *close_capture(pm *ms, const char *s, const char *p)
{
  int l = ms->ncap - 1;
  while (l >= 0 && ms->cap[l].len != PM_OPEN)
    l--;
  if (l < 0)
    luaL_error(ms->m.L, "invalid pattern capture");
  ms->cap[l].len = s - ms->cap[l].at;
  const char *e = do_match(ms, s, p);
  if (!e)
    ms->cap[l].len = PM_OPEN;
  return e;
}

/* %1..%9 at s: the text of that capture again. */
static const char *back_reference(pm *ms, const char *s, int digit)
{
  int l = digit - '1';
  if (l < 0 || l >= ms->ncap || ms->cap[l].len == PM_OPEN)
    luaL_error(ms->m.L, "invalid capture index %%%d", l + 1);
  size_t len = (size_t)ms->cap[l].len; /* a position capture never matches */
  if ((size_t)(ms->src_end - s) < len || memcmp(ms->cap[l].at, s, len) != 0)
    return NULL;
  tick(&ms->m, (long)(len >> 5));
  return s + len;
}

/* %f[set] at s. */
static int frontier(pm *ms, const char *s, const char *p, const char *ep)
{
  int prev = s == ms->src ? 0 : (unsigned char)s[-1];
  return !set_match(prev, p, ep - 1) && set_match((unsigned char)*s, p, ep - 1);
}

/* The end of the match of the pattern p at s, or NULL. Recursion comes only
 * where the rest of the pattern must be tried from several places (captures,
 * '?', repetitions), as in Lua, whose depth limit it shares; everything else
 * goes on in the loop. */
static const char *do_match(pm *ms, const char *s, const char *p)
{
  if (ms->depth-- == 0)
    luaL_error(ms->m.L, "pattern too complex");
  tick(&ms->m, 1);
  while (s && p != ms->pat_end) {
    const char *ep;
    switch (*p) {
    case '(':
      s = p[1] == ')' ? open_capture(ms, s, p + 2, PM_POSITION)
                      : open_capture(ms, s, p + 1, PM_OPEN);
      goto done;
    case ')':
      s = close_capture(ms, s, p + 1);
      goto done;
    case '$':
      if (p + 1 != ms->pat_end)
        break; /* a plain '$' */
      s = s == ms->src_end ? s : NULL;
      goto done;
    case ESC:
      if (p[1] == 'b') {
        s = balance(ms, s, p + 2);
        p += 4;
        continue;
      }
      if (p[1] == 'f') {
        p += 2;
        if (*p != '[')
          luaL_error(ms->m.L, "missing '[' after '%%f' in pattern");
        ep = item_end(ms, p);
        s = frontier(ms, s, p, ep) ? s : NULL;
        p = ep;
        continue;
      }
      if (isdigit((unsigned char)p[1])) {
        s = back_reference(ms, s, (unsigned char)p[1]);
        p += 2;
        continue;
      }
      break; /* %x: a class */
    }
    /* a single-character item, and its quantifier if any */
    ep = item_end(ms, p);
    if (!one_match(ms, s, p, ep)) {
      if (*ep == '*' || *ep == '?' || *ep == '-') {
        p = ep + 1; /* none is fine */
        continue;
      }
      s = NULL;
      goto done;
    }
    switch (*ep) {
    case '?': {
      const char *e = do_match(ms, s + 1, ep + 1);
      if (e) {
        s = e;
        goto done;
      }
      p = ep + 1;
      continue;
    }
    case '+': s = greedy(ms, s + 1, p, ep); goto done;
    case '*': s = greedy(ms, s, p, ep); goto done;
    case '-': s = lazy(ms, s, p, ep); goto done;
    default: s++; p = ep; continue;
    }
  }
done:
  ms->depth++;
  return s;
}

/* --- results ------------------------------------------------------------------------ */

static void pm_init(pm *ms, lua_State *L, const char *s, size_t ls, const char *p, size_t lp)
{
  meter_init(&ms->m, L);
  ms->src = s;
  ms->src_end = s + ls;
  ms->pat_end = p + lp;
  ms->depth = PM_MAXDEPTH;
  ms->ncap = 0;
  tick(&ms->m, (long)(lp >> 5));
}

/* Capture i (the whole match s..e when there are none and i is 0): its
 * length and text in *at, or PM_POSITION after pushing the position. */
static ptrdiff_t get_capture(pm *ms, int i, const char *s, const char *e, const char **at)
{
  if (i >= ms->ncap) {
    if (i != 0)
      luaL_error(ms->m.L, "invalid capture index %%%d", i + 1);
    *at = s;
    return e - s;
  }
  ptrdiff_t len = ms->cap[i].len;
  *at = ms->cap[i].at;
  if (len == PM_OPEN)
    luaL_error(ms->m.L, "unfinished capture");
  else if (len == PM_POSITION)
    lua_pushinteger(ms->m.L, (ms->cap[i].at - ms->src) + 1);
  return len;
}

static void push_capture(pm *ms, int i, const char *s, const char *e)
{
  const char *at;
  ptrdiff_t len = get_capture(ms, i, s, e, &at);
  if (len != PM_POSITION)
    lua_pushlstring(ms->m.L, at, (size_t)len);
}

/* Pushes the captures (the whole match s..e if there are none and s is not
 * NULL); returns how many. */
static int push_captures(pm *ms, const char *s, const char *e)
{
  int n = ms->ncap == 0 && s ? 1 : ms->ncap;
  luaL_checkstack(ms->m.L, n, "too many captures");
  for (int i = 0; i < n; i++)
    push_capture(ms, i, s, e);
  return n;
}

/* --- string.find, string.match --------------------------------------------------------- */

/* Lua's rule for a start position: negative counts from the end; 1-based. */
static size_t start_of(lua_Integer pos, size_t len)
{
  if (pos > 0)
    return (size_t)pos;
  if (pos == 0 || pos < -(lua_Integer)len)
    return 1;
  return len + (size_t)pos + 1;
}

static int no_specials(const char *p, size_t lp)
{
  size_t at = 0;
  do { /* strpbrk stops at a NUL: look past each one */
    if (strpbrk(p + at, SPECIALS))
      return 0;
    at += strlen(p + at) + 1;
  } while (at <= lp);
  return 1;
}

/* The first place of p (lp bytes) in s (ls bytes), or NULL. */
static const char *plain_find(meter *m, const char *s, size_t ls, const char *p, size_t lp)
{
  if (lp == 0)
    return s;
  if (lp > ls)
    return NULL;
  const char *at = s, *last = s + (ls - lp); /* the last place it could start */
  long cost = 1 + (long)(lp >> 5);
  while (at <= last) {
    const char *c = memchr(at, p[0], (size_t)(last - at) + 1);
    if (!c)
      break;
    tick(m, cost + ((c - at) >> 5));
    if (memcmp(c + 1, p + 1, lp - 1) == 0)
      return c;
    at = c + 1;
  }
  return NULL;
}

static int find_plain(lua_State *L, const char *s, size_t ls, size_t init, const char *p,
                      size_t lp)
{
  meter m;
  meter_init(&m, L);
  const char *at = plain_find(&m, s + init, ls - init, p, lp);
  meter_flush(&m);
  if (!at) {
    luaL_pushfail(L);
    return 1;
  }
  lua_pushinteger(L, (at - s) + 1);
  lua_pushinteger(L, (lua_Integer)((size_t)(at - s) + lp));
  return 2;
}

static int find_or_match(lua_State *L, int find)
{
  size_t ls, lp;
  const char *s = luaL_checklstring(L, 1, &ls);
  const char *p = luaL_checklstring(L, 2, &lp);
  size_t init = start_of(luaL_optinteger(L, 3, 1), ls) - 1;
  if (init > ls) {
    luaL_pushfail(L);
    return 1;
  }
  if (find && (lua_toboolean(L, 4) || no_specials(p, lp)))
    return find_plain(L, s, ls, init, p, lp);
  pm ms;
  int anchor = *p == '^';
  if (anchor)
    p++, lp--;
  pm_init(&ms, L, s, ls, p, lp);
  const char *at = s + init;
  do {
    ms.ncap = 0;
    const char *e = do_match(&ms, at, p);
    if (e) {
      meter_flush(&ms.m);
      if (!find)
        return push_captures(&ms, at, e);
      lua_pushinteger(L, (at - s) + 1);
      lua_pushinteger(L, e - s);
      return push_captures(&ms, NULL, NULL) + 2;
    }
  } while (at++ < ms.src_end && !anchor);
  meter_flush(&ms.m);
  luaL_pushfail(L);
  return 1;
}

/* string.find(s, pattern [, init [, plain]]) */
static int pm_find(lua_State *L)
{
  return find_or_match(L, 1);
}

/* string.match(s, pattern [, init]) */
static int pm_match(lua_State *L)
{
  return find_or_match(L, 0);
}

/* --- string.gmatch ---------------------------------------------------------------------- */

typedef struct gmatch_state {
  pm ms;
  const char *next;  /* where the next search starts */
  const char *last;  /* the end of the last match: no empty match there */
  const char *pat;
} gmatch_state;

/* The iterator: upvalues s, pattern, state, runtime. */
static int gmatch_next(lua_State *L)
{
  gmatch_state *g = lua_touserdata(L, lua_upvalueindex(3));
  g->ms.m.L = L;
  for (const char *at = g->next; at <= g->ms.src_end; at++) {
    g->ms.ncap = 0;
    g->ms.depth = PM_MAXDEPTH;
    const char *e = do_match(&g->ms, at, g->pat);
    if (e && e != g->last) {
      g->next = g->last = e;
      meter_flush(&g->ms.m);
      return push_captures(&g->ms, at, e);
    }
  }
  meter_flush(&g->ms.m);
  return 0;
}

/* string.gmatch(s, pattern [, init]); '^' is not an anchor here. */
static int pm_gmatch(lua_State *L)
{
  size_t ls, lp;
  const char *s = luaL_checklstring(L, 1, &ls);
  const char *p = luaL_checklstring(L, 2, &lp);
  size_t init = start_of(luaL_optinteger(L, 3, 1), ls) - 1;
  lua_settop(L, 2); /* s and p stay alive as upvalues */
  gmatch_state *g = lua_newuserdatauv(L, sizeof *g, 0);
  if (init > ls)
    init = ls + 1; /* nothing to find */
  pm_init(&g->ms, L, s, ls, p, lp);
  g->next = s + init;
  g->last = NULL;
  g->pat = p;
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushcclosure(L, gmatch_next, 4);
  return 1;
}

/* --- string.gsub ------------------------------------------------------------------------ */

/* The replacement string (argument 3) for the match s..e, with %0-%9 and %%. */
static void add_string(pm *ms, luaL_Buffer *b, const char *s, const char *e)
{
  lua_State *L = ms->m.L;
  size_t l;
  const char *r = lua_tolstring(L, 3, &l);
  const char *pc;
  tick(&ms->m, 1 + (long)(l >> 5));
  while ((pc = memchr(r, ESC, l)) != NULL) {
    luaL_addlstring(b, r, (size_t)(pc - r));
    pc++; /* the character after '%' (the NUL at the end) */
    if (*pc == ESC) {
      luaL_addchar(b, *pc);
    } else if (*pc == '0') {
      luaL_addlstring(b, s, (size_t)(e - s));
    } else if (isdigit((unsigned char)*pc)) {
      const char *at;
      ptrdiff_t len = get_capture(ms, *pc - '1', s, e, &at);
      if (len == PM_POSITION)
        luaL_addvalue(b);
      else
        luaL_addlstring(b, at, (size_t)len);
    } else {
      luaL_error(L, "invalid use of '%c' in replacement string", ESC);
    }
    l -= (size_t)(pc + 1 - r);
    r = pc + 1;
  }
  luaL_addlstring(b, r, l);
}

/* Adds the replacement of the match s..e; 0 if it kept the match as it was. */
static int add_value(pm *ms, luaL_Buffer *b, const char *s, const char *e, int tr)
{
  lua_State *L = ms->m.L;
  if (tr == LUA_TFUNCTION) {
    lua_pushvalue(L, 3);
    int n = push_captures(ms, s, e);
    lua_call(L, n, 1);
  } else if (tr == LUA_TTABLE) {
    push_capture(ms, 0, s, e);
    lua_gettable(L, 3);
  } else {
    add_string(ms, b, s, e);
    return 1;
  }
  if (!lua_toboolean(L, -1)) { /* nil or false: keep the original */
    lua_pop(L, 1);
    luaL_addlstring(b, s, (size_t)(e - s));
    return 0;
  }
  if (!lua_isstring(L, -1))
    return luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
  luaL_addvalue(b);
  return 1;
}

/* string.gsub(s, pattern, repl [, n]) */
static int pm_gsub(lua_State *L)
{
  size_t ls, lp;
  const char *src = luaL_checklstring(L, 1, &ls);
  const char *p = luaL_checklstring(L, 2, &lp);
  const char *last = NULL;
  int tr = lua_type(L, 3);
  lua_Integer max_n = luaL_optinteger(L, 4, (lua_Integer)ls + 1);
  luaL_argexpected(L, tr == LUA_TNUMBER || tr == LUA_TSTRING || tr == LUA_TFUNCTION ||
                   tr == LUA_TTABLE, 3, "string/function/table");
  int anchor = *p == '^', changed = 0;
  lua_Integer n = 0;
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  if (anchor)
    p++, lp--;
  pm ms;
  pm_init(&ms, L, src, ls, p, lp);
  while (n < max_n) {
    ms.ncap = 0;
    const char *e = do_match(&ms, src, p);
    if (e && e != last) {
      n++;
      changed |= add_value(&ms, &b, src, e, tr);
      src = last = e;
    } else if (src < ms.src_end) {
      luaL_addchar(&b, *src++);
    } else {
      break;
    }
    if (anchor)
      break;
  }
  meter_flush(&ms.m);
  if (!changed) {
    lua_pushvalue(L, 1);
  } else {
    luaL_addlstring(&b, src, (size_t)(ms.src_end - src));
    luaL_pushresult(&b);
  }
  lua_pushinteger(L, n);
  return 2;
}

static const luaL_Reg pattern_fns[] = {
  {"find", pm_find}, {"match", pm_match}, {"gmatch", pm_gmatch}, {"gsub", pm_gsub},
  {NULL, NULL}};

void kr_pattern_install(lua_State *L, int idx, kr_runtime *rt)
{
  idx = lua_absindex(L, idx);
  lua_pushvalue(L, idx);
  lua_pushlightuserdata(L, rt);
  luaL_setfuncs(L, pattern_fns, 1);
  lua_pop(L, 1);
}

int kr_pattern_open(lua_State *L)
{
  lua_createtable(L, 0, 4);
  kr_pattern_install(L, -1, NULL);
  return 1;
}
