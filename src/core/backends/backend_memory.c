/* The memory backend: requests run against an embedded store (store.h) and
 * complete before submit returns. It keeps cache handles by name so that the
 * hot path compares the name with the last one used instead of asking the
 * store's registry, copies values into one reusable buffer, and drives the
 * store's active expiry from an unref'd loop timer. */
#include <stdlib.h>
#include <string.h>

#include "core/client.h"

#define SWEEP_EVERY_MS 100
#define SWEEP_BUDGET 4000
#define LOOPLESS_SWEEP_EVERY 4096 /* calls between sweeps without a loop */

/* One cache handle by name; chained in a small hash table. */
typedef struct centry {
  struct centry *next;
  kr_cache *cache;
  uint32_t hash;
  size_t len;
  char name[]; /* len bytes */
} centry;

typedef struct membe {
  kr_client *client;
  kr_store *store;
  centry *last;             /* the entry of the previous call */
  centry **slots;           /* the name table */
  size_t nslots, nentries;
  char *buf;                /* values copied out of the store */
  size_t cap;
  uv_timer_t sweep;
  int has_timer;
  unsigned calls;           /* loop-less: calls since the last sweep */
  int depth;                /* > 0 while a request runs (re-entrancy guard) */
  int close_requested;
} membe;

/* --- cache handles by name ------------------------------------------------- */

static uint32_t name_hash(const char *s, size_t len)
{
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < len; i++)
    h = (h ^ (unsigned char)s[i]) * 16777619u;
  return h;
}

static int table_grow(membe *b)
{
  size_t n = b->nslots ? b->nslots * 2 : 16;
  centry **slots = calloc(n, sizeof *slots);
  if (!slots)
    return KURA_ENOMEM;
  for (size_t i = 0; i < b->nslots; i++) {
    for (centry *e = b->slots[i], *next; e; e = next) {
      next = e->next;
      e->next = slots[e->hash & (n - 1)];
      slots[e->hash & (n - 1)] = e;
    }
  }
  free(b->slots);
  b->slots = slots;
  b->nslots = n;
  return 0;
}

static centry **table_find(membe *b, const char *name, size_t len, uint32_t h)
{
  centry **pp = &b->slots[h & (b->nslots - 1)];
  while (*pp && !((*pp)->hash == h && (*pp)->len == len && memcmp((*pp)->name, name, len) == 0))
    pp = &(*pp)->next;
  return pp;
}

static void table_drop(membe *b, const char *name, size_t len)
{
  if (!b->nslots)
    return;
  centry **pp = table_find(b, name, len, name_hash(name, len));
  centry *e = *pp;
  if (!e)
    return;
  *pp = e->next;
  if (b->last == e)
    b->last = NULL;
  kr_cache_release(e->cache);
  free(e);
  b->nentries--;
}

/* The slow path of resolve: look the name up in our table, then in the store
 * (a cache deleted and created again is a new cache: re-resolve). */
static int resolve_slow(membe *b, const char *name, size_t len, kr_cache **out)
{
  if (b->nentries >= b->nslots / 2 && table_grow(b))
    return kr_client_fail(b->client, KURA_ENOMEM, "out of memory");
  uint32_t h = name_hash(name, len);
  centry **pp = table_find(b, name, len, h), *e = *pp;
  if (e && !kr_cache_alive(e->cache)) {
    table_drop(b, name, len);
    pp = table_find(b, name, len, h), e = NULL;
  }
  if (!e) {
    kr_cache *cache;
    if (kr_store_cache(b->store, name, len, &cache) != 0)
      return kr_client_fail(b->client, KURA_ENOTFOUND, "cache '%.*s' does not exist",
                            (int)len, name);
    if (!(e = malloc(sizeof *e + len))) {
      kr_cache_release(cache);
      return kr_client_fail(b->client, KURA_ENOMEM, "out of memory");
    }
    e->cache = cache, e->hash = h, e->len = len, e->next = NULL;
    memcpy(e->name, name, len);
    *pp = e;
    b->nentries++;
  }
  b->last = e;
  *out = e->cache;
  return 0;
}

/* The cache named by the request: a few instructions when it is the one of
 * the previous call. */
static inline int resolve(membe *b, const kr_request *r, kr_cache **out)
{
  centry *e = b->last;
  if (e && e->len == r->cache_len && memcmp(e->name, r->cache, r->cache_len) == 0 &&
      kr_cache_alive(e->cache)) {
    *out = e->cache;
    return 0;
  }
  return resolve_slow(b, r->cache, r->cache_len, out);
}

/* --- results --------------------------------------------------------------- */

static void complete_err(membe *b, const kr_request *r, int err, kr_client_cb cb, void *ud)
{
  kr_result res = {.err = err, .msg = kr_client_errstr(b->client)};
  (void)r;
  cb(ud, r, &res);
}

/* A store error code -> the client's message (naming cache and key). */
static int store_fail(membe *b, const kr_request *r, int rc)
{
  char k[64];
  kr_format_key(k, sizeof k, r->key, r->klen);
  int cl = (int)r->cache_len;
  switch (rc) {
  case KURA_ENOTFOUND:
    return kr_client_fail(b->client, rc, "cache '%.*s' does not exist", cl, r->cache);
  case KURA_EPRECOND:
    return kr_client_fail(b->client, rc,
                          "the value of key '%s' in cache '%.*s' is not an integer, "
                          "or the result is outside int64", k, cl, r->cache);
  case KURA_ELIMIT:
  case KURA_ENOMEM:
    return kr_client_fail(b->client, KURA_ELIMIT,
                          "item '%s' does not fit in the memory limit of cache '%.*s'",
                          k, cl, r->cache);
  default:
    return kr_client_fail(b->client, rc, "%s of key '%s' in cache '%.*s': %s",
                          kr_op_name(r->op), k, cl, r->cache, kura_strerror(rc));
  }
}

static int grow_buf(membe *b, size_t need)
{
  size_t cap = b->cap ? b->cap : 256;
  while (cap < need)
    cap *= 2;
  char *nb = realloc(b->buf, cap);
  if (!nb)
    return KURA_ENOMEM;
  b->buf = nb;
  b->cap = cap;
  return 0;
}

static int do_get(membe *b, kr_cache *cache, const kr_request *r, kr_result *res)
{
  size_t vlen = 0;
  int rc = kr_store_get(cache, r->key, r->klen, b->buf, b->cap, &vlen);
  if (rc == KURA_ERANGE) {
    if (grow_buf(b, vlen))
      return KURA_ENOMEM;
    rc = kr_store_get(cache, r->key, r->klen, b->buf, b->cap, &vlen);
  }
  if (rc < 0)
    return rc;
  res->outcome = rc;
  if (rc == KURA_HIT)
    res->val = b->buf, res->vlen = vlen;
  return 0;
}

/* Collects get_batch values into one arena; offs[i] == SIZE_MAX is a miss. */
typedef struct collect {
  char *arena;
  size_t used, cap;
  size_t *offs, *lens;
  int err;
} collect;

static void collect_one(void *ud, size_t i, const void *val, size_t vlen)
{
  collect *co = ud;
  co->offs[i] = SIZE_MAX;
  if (!val || co->err)
    return;
  /* A hit makes the arena even when its value is empty: a hit's pointer is
   * never NULL (NULL is a miss, and NULL + 0 is no pointer). */
  if (!co->arena || co->used + vlen > co->cap) {
    size_t cap = co->cap ? co->cap : 1024;
    while (cap < co->used + vlen)
      cap *= 2;
    char *na = realloc(co->arena, cap);
    if (!na) {
      co->err = KURA_ENOMEM;
      return;
    }
    co->arena = na, co->cap = cap;
  }
  if (vlen)
    memcpy(co->arena + co->used, val, vlen);
  co->offs[i] = co->used;
  co->lens[i] = vlen;
  co->used += vlen;
}

static void do_get_batch(membe *b, kr_cache *cache, const kr_request *r,
                         kr_client_cb cb, void *ud)
{
  size_t n = r->n ? r->n : 1;
  collect co = {0};
  co.offs = malloc(n * sizeof(size_t));
  co.lens = malloc(n * sizeof(size_t));
  const void **vals = malloc(n * sizeof(void *));
  int rc = co.offs && co.lens && vals ? 0 : KURA_ENOMEM;
  if (!rc && r->n)
    rc = kr_store_get_batch(cache, r->n, r->keys, r->klens, collect_one, &co);
  if (!rc)
    rc = co.err;
  if (rc) {
    complete_err(b, r, store_fail(b, r, rc), cb, ud);
  } else {
    for (size_t i = 0; i < r->n; i++)
      vals[i] = co.offs[i] == SIZE_MAX ? NULL : co.arena + co.offs[i];
    kr_result res = {.count = r->n, .vals = vals, .vlens = co.lens};
    cb(ud, r, &res);
  }
  free(co.arena), free(co.offs), free(co.lens), free(vals);
}

static void do_keys_exist(membe *b, kr_cache *cache, const kr_request *r,
                          kr_client_cb cb, void *ud)
{
  uint8_t *flags = malloc(r->n ? r->n : 1);
  int rc = flags ? 0 : KURA_ENOMEM;
  for (size_t i = 0; !rc && i < r->n; i++) {
    int o = kr_store_exists(cache, r->keys[i], r->klens[i]);
    if (o < 0)
      rc = o;
    else
      flags[i] = o == KURA_HIT;
  }
  if (rc) {
    complete_err(b, r, store_fail(b, r, rc), cb, ud);
  } else {
    kr_result res = {.count = r->n, .flags = flags};
    cb(ud, r, &res);
  }
  free(flags);
}

/* The store's batch, which checks every item before it stores one: a batch
 * with an item too large stores nothing. Its TTLs are per item, 0 never
 * expiring; the request's 0 means the call's TTL. */
static int do_set_batch(kr_cache *cache, const kr_request *r)
{
  uint64_t few[64];
  uint64_t *ttls = r->n <= 64 ? few : malloc(r->n * sizeof *ttls);
  if (!ttls)
    return KURA_ENOMEM;
  for (size_t i = 0; i < r->n; i++)
    ttls[i] = r->ttls && r->ttls[i] ? r->ttls[i] : r->ttl_ms;
  int rc = kr_store_set_batch(cache, r->n, r->keys, r->klens, r->vals, r->vlens, ttls);
  if (ttls != few)
    free(ttls);
  return rc < 0 ? rc : KURA_HIT;
}

/* --- cache management ------------------------------------------------------ */

static void do_list(membe *b, const kr_request *r, kr_client_cb cb, void *ud)
{
  char **names = NULL;
  size_t count = 0;
  int rc = kr_store_list_caches(b->store, &names, &count);
  if (rc) {
    complete_err(b, r, kr_client_fail(b->client, rc, "list_caches: %s", kura_strerror(rc)),
                 cb, ud);
    return;
  }
  kr_result res = {.count = count, .names = (const char *const *)names};
  cb(ud, r, &res);
  kr_store_free_names(names, count);
}

static int do_manage(membe *b, const kr_request *r, kr_result *res)
{
  int rc, cl = (int)r->cache_len;
  switch (r->op) {
  case KR_OP_CREATE_CACHE:
    rc = kr_store_create_cache(b->store, r->cache, r->cache_len);
    if (rc == KURA_EEXIST)
      rc = 0, res->outcome = KURA_SKIPPED;
    else if (rc == 0)
      res->outcome = KURA_HIT;
    break;
  case KR_OP_DELETE_CACHE:
    rc = kr_store_delete_cache(b->store, r->cache, r->cache_len);
    table_drop(b, r->cache, r->cache_len);
    break;
  default:
    rc = kr_store_flush_cache(b->store, r->cache, r->cache_len);
    break;
  }
  if (rc == KURA_ENOTFOUND)
    return kr_client_fail(b->client, rc, "cache '%.*s' does not exist", cl, r->cache);
  if (rc)
    return kr_client_fail(b->client, rc, "%s '%.*s': %s", kr_op_name(r->op), cl, r->cache,
                          kura_strerror(rc));
  return 0;
}

/* --- dispatch -------------------------------------------------------------- */

/* The single-item calls: fill res from the store's answer, or return an error. */
static int do_item(membe *b, kr_cache *cache, const kr_request *r, kr_result *res)
{
  int rc;
  switch (r->op) {
  case KR_OP_GET:
    return do_get(b, cache, r, res);
  case KR_OP_SET:
    rc = kr_store_set(cache, r->key, r->klen, r->val, r->vlen, r->ttl_ms);
    break;
  case KR_OP_SET_IF:
    rc = kr_store_set_if(cache, r->cond, r->key, r->klen, r->val, r->vlen, r->cmp, r->cmplen,
                         r->ttl_ms);
    break;
  case KR_OP_DELETE:
    rc = kr_store_delete(cache, r->key, r->klen);
    break;
  case KR_OP_KEY_EXISTS:
    rc = kr_store_exists(cache, r->key, r->klen);
    break;
  case KR_OP_INCREMENT:
    rc = kr_store_increment(cache, r->key, r->klen, r->amount, r->ttl_ms, &res->integer);
    break;
  case KR_OP_TTL_GET:
    rc = kr_store_ttl_get(cache, r->key, r->klen, &res->ttl_ms);
    break;
  case KR_OP_TTL_SET:
    rc = kr_store_ttl_set(cache, r->key, r->klen, r->ttl_ms, r->ttl_mode);
    break;
  case KR_OP_SET_BATCH:
    rc = do_set_batch(cache, r);
    break;
  default:
    return kr_client_fail(b->client, KURA_EUNSUPPORTED, "operation %s is not supported",
                          kr_op_name(r->op));
  }
  if (rc < 0)
    return rc;
  res->outcome = rc;
  return 0;
}

static void dispatch(membe *b, const kr_request *r, kr_client_cb cb, void *ud)
{
  kr_result res = {0};
  kr_cache *cache = NULL;
  int rc;
  switch (r->op) {
  case KR_OP_LIST_CACHES:
    do_list(b, r, cb, ud);
    return;
  case KR_OP_CREATE_CACHE:
  case KR_OP_DELETE_CACHE:
  case KR_OP_FLUSH_CACHE:
    rc = do_manage(b, r, &res);
    break;
  default:
    if ((rc = resolve(b, r, &cache)) != 0)
      break;
    if (r->op == KR_OP_GET_BATCH) {
      do_get_batch(b, cache, r, cb, ud);
      return;
    }
    if (r->op == KR_OP_KEYS_EXIST) {
      do_keys_exist(b, cache, r, cb, ud);
      return;
    }
    if ((rc = do_item(b, cache, r, &res)) != 0)
      rc = store_fail(b, r, rc);
    break;
  }
  if (rc) {
    complete_err(b, r, rc, cb, ud);
    return;
  }
  cb(ud, r, &res);
}

static void mem_free(membe *b)
{
  kr_client *c = b->client;
  for (size_t i = 0; i < b->nslots; i++) {
    for (centry *e = b->slots[i], *next; e; e = next) {
      next = e->next;
      kr_cache_release(e->cache);
      free(e);
    }
  }
  free(b->slots);
  free(b->buf);
  kr_store_release(b->store);
  free(b);
  kr_client_backend_closed(c);
}

static void mem_submit(void *state, const kr_request *r, kr_client_cb cb, void *ud)
{
  membe *b = state;
  b->depth++;
  dispatch(b, r, cb, ud);
  b->depth--;
  if (!b->has_timer && ++b->calls >= LOOPLESS_SWEEP_EVERY) {
    b->calls = 0;
    kr_store_sweep(b->store, SWEEP_BUDGET / 16);
  }
  if (b->close_requested && b->depth == 0)
    mem_free(b);
}

/* --- life cycle ------------------------------------------------------------ */

static void on_sweep(uv_timer_t *t)
{
  membe *b = t->data;
  kr_store_sweep(b->store, SWEEP_BUDGET);
}

static void on_timer_closed(uv_handle_t *h)
{
  mem_free(h->data);
}

static int mem_open(kr_client *c, const kr_client_config *cfg, void **state)
{
  membe *b = calloc(1, sizeof *b);
  if (!b)
    return kr_client_fail(c, KURA_ENOMEM, "out of memory");
  b->client = c;
  const char *name = cfg->store ? cfg->store : "default";
  int rc = kr_store_open(name, &b->store);
  if (rc == 0 && (rc = grow_buf(b, 256)) != 0)
    kr_store_release(b->store);
  if (rc) {
    free(b);
    return kr_client_fail(c, rc, "cannot open store '%s': %s", name, kura_strerror(rc));
  }
  if (cfg->max_memory)
    kr_store_set_max_memory(b->store, cfg->max_memory);
  uv_loop_t *loop = kr_client_loop(c);
  if (loop) {
    uv_timer_init(loop, &b->sweep);
    b->sweep.data = b;
    uv_timer_start(&b->sweep, on_sweep, SWEEP_EVERY_MS, SWEEP_EVERY_MS);
    uv_unref((uv_handle_t *)&b->sweep); /* never keeps the process alive */
    b->has_timer = 1;
  }
  *state = b;
  return 0;
}

/* Nothing is ever pending here: requests complete inside submit. A close
 * requested from inside a callback waits until that request returns. */
static void mem_close(void *state)
{
  membe *b = state;
  if (b->has_timer) {
    uv_timer_stop(&b->sweep);
    uv_close((uv_handle_t *)&b->sweep, on_timer_closed);
  } else if (b->depth) {
    b->close_requested = 1;
  } else {
    mem_free(b);
  }
}

static int mem_stats(void *state, const char *cache, size_t len, kr_store_stats *out)
{
  membe *b = state;
  return kr_store_cache_stats(b->store, cache, len, out);
}

const kr_backend_ops kr_backend_memory_ops = {
  .name = "memory",
  .supports = KR_OPS_ALL,
  .flags = KR_BACKEND_INLINE,
  .open = mem_open,
  .submit = mem_submit,
  .close = mem_close,
  .stats = mem_stats,
};
