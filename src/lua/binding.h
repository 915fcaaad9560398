/* The Lua binding: luaopen_kura builds the `kura` module table from the
 * parts below, each of which adds its fields to the table on top of the
 * stack. The binding keeps no global state; it finds its runtime with
 * kr_runtime_from_lua. */
#ifndef KR_BINDING_H
#define KR_BINDING_H

#include <lua.h>

#include "core/client.h"
#include "core/serve/serve.h"

int luaopen_kura(lua_State *L);

/* Each takes the module table at the top of the stack and adds to it. */
void kr_lua_open_runtime(lua_State *L); /* spawn, sleep, after, every, now, log */
void kr_lua_open_json(lua_State *L);    /* kura.json */
void kr_lua_open_jsonl(lua_State *L);   /* kura.json.lines, onto the json table on top */
struct kr_json;
/* ljson.c, for kura.json.lines: pushes the next value of the reader (0), or
 * returns -1 at an error (the stack above its top on entry is garbage);
 * kr_lua_json_error pushes the error message for the text s. */
int kr_lua_json_build(lua_State *L, struct kr_json *j);
void kr_lua_json_error(lua_State *L, const struct kr_json *j, const char *s, size_t len);
/* Pushes a STRING or KEY token's bytes (s, len as the reader gave them). */
void kr_lua_json_push_string(lua_State *L, const char *s, size_t len, int escaped);
void kr_lua_open_client(lua_State *L);  /* kura.client, kura.credential */
void kr_lua_open_log(lua_State *L);     /* kura.log (called by kr_lua_open_runtime) */
void kr_lua_open_http(lua_State *L);    /* kura.http (lhttp.c) */
/* Pushes nil, err (the error table of docs/lua-api.md) and returns 2 (lclient.c). */
int kr_lua_push_error(lua_State *L, int err, const char *msg);
/* The same with err.uncertain = true (and retryable false) when `uncertain`. */
int kr_lua_push_error_uncertain(lua_State *L, int err, const char *msg, int uncertain);
void kr_lua_open_histogram(lua_State *L); /* kura.histogram */
void kr_lua_open_refresh(lua_State *L);   /* kura._refresh_hit (lrefresh.c) */
/* Where the kura.client userdata at idx keeps its client (NULL there once
 * it is closed); NULL when idx holds no client. Valid while the userdata
 * lives (lclient.c). */
kr_client *const *kr_lua_client_slot(lua_State *L, int idx);
/* Pushes what a Lua call of req returns for res (value, nil, nil + err ...);
 * returns how many values (lclient.c). */
int kr_lua_client_push_result(lua_State *L, const kr_request *req, const kr_result *res);
void kr_lua_open_signal(lua_State *L);  /* kura.on_signal, kura.isatty */
void kr_lua_open_serve(lua_State *L);   /* kura.serve (lserve.c) */
/* The runtime's shared client (kura.client()), made on first use; NULL with
 * a message in err when it cannot be made. It lives as long as L. */
kr_client *kr_lua_shared_client(lua_State *L, char *err, size_t cap);
/* The serve miss hook that runs kura.serve.on_miss; ud is the runtime's
 * main lua_State (lserve.c). */
void kr_lua_serve_miss(void *ud, const char *cache, size_t clen, const void *key, size_t klen,
                       kr_serve_miss_done done, void *done_ud);

#endif
