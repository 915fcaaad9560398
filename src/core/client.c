/* The cache client: configuration, validation, the backend table, and for
 * backends that complete later from the loop, the pending requests with their
 * deadlines and the retries of idempotent calls. See client.h. */
#include "core/client.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/client_stats.h"
#include "core/json.h"
#include "core/wipe.h"

/* A request handed to a remote backend: the client's own copy (the caller's
 * memory is gone once submit returns), its deadline and attempt count. It
 * lives until the backend completes its current attempt, which may be after
 * the caller was told TIMEOUT (user_done). */
typedef struct pending {
  struct pending *prev, *next; /* the deadline list (FIFO: one timeout) */
  kr_client *c;
  kr_request req;              /* deep copy; points into this allocation */
  kr_client_cb cb;
  void *udata;
  uint64_t deadline;           /* uv_now() ms */
  int attempt;                 /* 1-based */
  int user_done;               /* the caller's callback has run */
  int linked;
  int small;                   /* SPARE_BYTES were allocated: may be kept */
} pending;

#define DEADLINE_GRACE_MS 5    /* see submit_remote */
#define SPARE_MAX 64
#define SPARE_BYTES 256        /* sizeof(pending) + request data, at most */

struct kura_client {
  uv_loop_t *loop;
  const kr_backend_ops *ops;
  void *be;                    /* the backend's state */
  kr_client_config cfg;        /* strings point into `strings` */
  char *strings;               /* owned copies of cfg's strings */
  size_t strings_len;
  uint64_t default_ttl_ms;
  uint64_t timeout_ms;
  int max_attempts;
  uv_timer_t timer;            /* deadlines of pending requests */
  int has_timer;
  pending *head, *tail;
  size_t npending;             /* submitted, not completed by the backend */
  int closing;
  int backend_closed;
  int timer_closed;
  void (*closed)(void *ud);
  void *closed_ud;
  /* The last cache name that passed the whole check, kept to skip the scan
   * when the next call names the same cache (most do). */
  char name_ok[64];
  size_t name_ok_len;          /* 0: none */
  /* Records of completed requests kept for the next ones (small requests
   * only: one malloc and one free less per call). */
  pending *spare[SPARE_MAX];
  int nspare;
  kr_stats *stats;              /* what the client counts of its calls */
  char errstr[256];
};

/* --- policy ---------------------------------------------------------------- */

static const struct {
  const char *name;
  uint64_t timeout_ms;
  int attempts;
} presets[KR_PRESET_COUNT_] = {
  [KR_PRESET_LAPTOP] = {"laptop", 5000, 3},
  [KR_PRESET_IN_REGION] = {"in_region", 1100, 3},
  [KR_PRESET_LOW_LATENCY] = {"low_latency", 500, 3},
  [KR_PRESET_LAMBDA] = {"lambda", 1100, 3},
};

int kr_preset_parse(const char *name, enum kr_preset *out)
{
  for (int i = 0; i < KR_PRESET_COUNT_; i++) {
    if (name && strcmp(name, presets[i].name) == 0) {
      *out = (enum kr_preset)i;
      return 0;
    }
  }
  return KURA_EINVAL;
}

const char *kr_preset_name(enum kr_preset p)
{
  return p < KR_PRESET_COUNT_ ? presets[p].name : "?";
}

uint64_t kr_preset_timeout_ms(enum kr_preset p)
{
  return p < KR_PRESET_COUNT_ ? presets[p].timeout_ms : presets[0].timeout_ms;
}

int kr_preset_max_attempts(enum kr_preset p)
{
  return p < KR_PRESET_COUNT_ ? presets[p].attempts : 1;
}

static const struct {
  const char *name;
  int idempotent;
} ops_info[KR_OP_COUNT_] = {
  [KR_OP_GET] = {"get", 1},
  [KR_OP_SET] = {"set", 1},
  [KR_OP_SET_IF] = {"set_if", 0},
  [KR_OP_DELETE] = {"delete", 1},
  [KR_OP_KEY_EXISTS] = {"key_exists", 1},
  [KR_OP_KEYS_EXIST] = {"keys_exist", 1},
  [KR_OP_GET_BATCH] = {"get_batch", 1},
  [KR_OP_SET_BATCH] = {"set_batch", 1},
  [KR_OP_INCREMENT] = {"increment", 0},
  [KR_OP_TTL_GET] = {"item_get_ttl", 1},
  [KR_OP_TTL_SET] = {"update_ttl", 0},
  [KR_OP_CREATE_CACHE] = {"create_cache", 0},
  [KR_OP_DELETE_CACHE] = {"delete_cache", 0},
  [KR_OP_FLUSH_CACHE] = {"flush_cache", 0},
  [KR_OP_LIST_CACHES] = {"list_caches", 0},
};

int kr_op_idempotent(enum kr_op op)
{
  return op < KR_OP_COUNT_ && ops_info[op].idempotent;
}

const char *kr_op_name(enum kr_op op)
{
  return op < KR_OP_COUNT_ ? ops_info[op].name : "?";
}

const char *kr_call_name(const kr_request *r)
{
  static const char *const conds[] = {
    "set", "set_if_absent", "set_if_present", "set_if_equal", "set_if_not_equal",
    "set_if_present_and_not_equal", "set_if_absent_or_equal"};
  static const char *const ttls[] = {"update_ttl", "increase_ttl", "decrease_ttl"};
  if (r->op == KR_OP_SET_IF && (size_t)r->cond < sizeof conds / sizeof conds[0])
    return conds[r->cond];
  if (r->op == KR_OP_TTL_SET && (size_t)r->ttl_mode < sizeof ttls / sizeof ttls[0])
    return ttls[r->ttl_mode];
  return kr_op_name(r->op);
}

int kr_err_transient(int err)
{
  return err == KURA_ETIMEOUT || err == KURA_ECONN || err == KURA_EUNAVAIL ||
         err == KURA_EINTERNAL;
}

int kr_err_indeterminate(int err)
{
  return kr_err_transient(err) || err == KURA_EUNKNOWN || err == KURA_ECANCELLED;
}

int kr_result_uncertain(enum kr_op op, const kr_result *res)
{
  return res->err && !res->unapplied && !kr_op_idempotent(op) && kr_err_indeterminate(res->err);
}

int kr_should_retry(enum kr_op op, int err, int attempt, int max_attempts)
{
  return attempt < max_attempts && kr_op_idempotent(op) && kr_err_transient(err);
}

int kr_seconds_to_ms(double seconds, uint64_t *out)
{
  if (!(seconds > 0 && seconds <= KURA_TTL_MAX_SECONDS))
    return KURA_EINVAL; /* also NaN and infinities */
  uint64_t v = (uint64_t)llround(seconds * 1000.0);
  *out = v ? v : 1;
  return 0;
}

int kr_seconds_parse(const char *text, double *out, char *msg, size_t cap)
{
  kr_json j;
  size_t n = strlen(text);
  kr_json_init(&j, text, n);
  /* the number alone: the JSON reader would skip white space on either side */
  int padded = n && (strchr(" \t\r\n", text[0]) || strchr(" \t\r\n", text[n - 1]));
  kr_json_tok tok = padded ? KR_JSON_ERROR : kr_json_next(&j);
  double s = tok == KR_JSON_INT ? (double)j.i : j.d;
  uint64_t ms;
  if ((tok != KR_JSON_INT && tok != KR_JSON_FLOAT) || kr_json_next(&j) != KR_JSON_END ||
      kr_seconds_to_ms(s, &ms)) {
    char shown[64];
    kr_format_key(shown, sizeof shown, text, strlen(text));
    snprintf(msg, cap, "'%s' is not a number of seconds > 0 and <= %d (ten years), "
             "such as 60 or 0.5", shown, KURA_TTL_MAX_SECONDS);
    return KURA_EINVAL;
  }
  *out = s;
  return 0;
}

void kr_format_key(char *out, size_t cap, const void *key, size_t len)
{
  static const char hex[] = "0123456789abcdef";
  const unsigned char *k = key;
  size_t o = 0, limit = 40;
  if (cap == 0)
    return;
  for (size_t i = 0; i < len; i++) {
    unsigned char ch = k[i];
    int plain = ch >= 0x20 && ch < 0x7f && ch != '\\' && ch != '\'';
    if (i >= limit || o + (plain ? 1 : 4) + 4 > cap) {
      if (o + 4 <= cap)
        memcpy(out + o, "...", 3), o += 3;
      break;
    }
    if (plain) {
      out[o++] = (char)ch;
    } else {
      out[o++] = '\\';
      out[o++] = 'x';
      out[o++] = hex[ch >> 4];
      out[o++] = hex[ch & 15];
    }
  }
  out[o] = '\0';
}

/* Control bytes are refused because Momento carries the cache name in a
 * gRPC metadata header, where they (NUL among them) cannot travel; the rule
 * holds on every backend so that scripts move between them unchanged. */
int kr_check_cache_name(const char *name, size_t len, char *msg, size_t cap)
{
  int blank = 1;
  size_t ctl = len; /* the first control byte, if any */
  for (size_t i = 0; i < len; i++) {
    unsigned char ch = (unsigned char)name[i];
    if (ch != ' ' && (ch < '\t' || ch > '\r'))
      blank = 0;
    if ((ch < 0x20 || ch == 0x7f) && ctl == len)
      ctl = i;
  }
  if (blank) {
    snprintf(msg, cap, "cache name must not be %s", len ? "blank" : "empty");
    return KURA_EINVAL;
  }
  char shown[64];
  if (len > KR_STORE_MAX_CACHE_NAME) {
    kr_format_key(shown, sizeof shown, name, len);
    snprintf(msg, cap, "cache name '%s' is %zu bytes, over the %u-byte limit",
             shown, len, KR_STORE_MAX_CACHE_NAME);
    return KURA_EINVAL;
  }
  if (ctl < len) {
    kr_format_key(shown, sizeof shown, name, len);
    snprintf(msg, cap, "cache name '%s' contains a control character (byte %zu)",
             shown, ctl);
    return KURA_EINVAL;
  }
  return 0;
}

/* --- validation ------------------------------------------------------------ */

int kr_client_fail(kr_client *c, int err, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->errstr, sizeof c->errstr, fmt, ap);
  va_end(ap);
  return err;
}

static int check_item(kr_client *c, const kr_request *r, const void *key,
                      size_t klen, size_t vlen)
{
  if (klen > KR_STORE_MAX_KEY) {
    char k[64];
    kr_format_key(k, sizeof k, key, klen);
    return kr_client_fail(c, KURA_EINVAL,
                          "key '%s' is %zu bytes, over the %u-byte limit (cache '%.*s')",
                          k, klen, KR_STORE_MAX_KEY, (int)r->cache_len, r->cache);
  }
  if (klen + vlen > KR_STORE_MAX_ITEM) {
    char k[64];
    kr_format_key(k, sizeof k, key, klen);
    return kr_client_fail(c, KURA_EINVAL,
                          "item '%s' is %zu bytes (key + value), over the %u-byte limit",
                          k, klen + vlen, KR_STORE_MAX_ITEM);
  }
  return 0;
}

/* A TTL past KURA_TTL_MAX_SECONDS (a C host can pass any ttl_ms). */
static int check_ttl(kr_client *c, uint64_t ttl_ms)
{
  if (ttl_ms <= KR_TTL_MAX_MS)
    return 0;
  return kr_client_fail(c, KURA_EINVAL, "ttl of %llu ms is over the maximum of %d s (ten years)",
                        (unsigned long long)ttl_ms, KURA_TTL_MAX_SECONDS);
}

static int check_batch(kr_client *c, const kr_request *r)
{
  if (r->n && (!r->keys || !r->klens))
    return kr_client_fail(c, KURA_EINVAL, "%s: no keys given", kr_op_name(r->op));
  if (r->op == KR_OP_SET_BATCH && r->n && (!r->vals || !r->vlens))
    return kr_client_fail(c, KURA_EINVAL, "set_batch: no values given");
  for (size_t i = 0; i < r->n; i++) {
    size_t vlen = r->op == KR_OP_SET_BATCH ? r->vlens[i] : 0;
    int rc = check_item(c, r, r->keys[i], r->klens[i], vlen);
    if (!rc && r->op == KR_OP_SET_BATCH && r->ttls)
      rc = check_ttl(c, r->ttls[i]);
    if (rc)
      return rc;
  }
  return 0;
}

int kr_client_validate(kr_client *c, const kr_request *r)
{
  if (r->op >= KR_OP_COUNT_)
    return kr_client_fail(c, KURA_EINVAL, "unknown operation %d", (int)r->op);
  if (r->op == KR_OP_LIST_CACHES)
    return 0;
  /* The whole check for cache management and for network backends (where a
   * control byte could end up in a header line). Item calls on the embedded
   * store, the hot path, only rule out an empty or blank name (one starting
   * with a visible byte is not blank): a name create_cache refuses never
   * names an existing cache, so such a call ends in NOT_FOUND_ERROR. */
  unsigned char first = r->cache_len ? (unsigned char)r->cache[0] : 0;
  int full = !kr_client_is_inline(c) || r->op == KR_OP_CREATE_CACHE ||
             r->op == KR_OP_DELETE_CACHE || r->op == KR_OP_FLUSH_CACHE;
  if ((full || first <= ' ' || first == 0x7f || r->cache_len > KR_STORE_MAX_CACHE_NAME) &&
      !(c->name_ok_len && r->cache_len == c->name_ok_len &&
        memcmp(r->cache, c->name_ok, r->cache_len) == 0)) {
    int rc = kr_check_cache_name(r->cache, r->cache_len, c->errstr, sizeof c->errstr);
    if (rc)
      return rc;
    if (r->cache_len <= sizeof c->name_ok) {
      memcpy(c->name_ok, r->cache, r->cache_len);
      c->name_ok_len = r->cache_len;
    }
  }
  if (check_ttl(c, r->ttl_ms))
    return KURA_EINVAL;
  switch (r->op) {
  case KR_OP_CREATE_CACHE:
  case KR_OP_DELETE_CACHE:
  case KR_OP_FLUSH_CACHE:
    return 0;
  case KR_OP_KEYS_EXIST:
  case KR_OP_GET_BATCH:
  case KR_OP_SET_BATCH:
    return check_batch(c, r);
  case KR_OP_SET_IF:
    if (r->cond > KURA_SET_IF_ABSENT_OR_EQUAL)
      return kr_client_fail(c, KURA_EINVAL, "unknown set condition %d", (int)r->cond);
    return check_item(c, r, r->key, r->klen, r->vlen > r->cmplen ? r->vlen : r->cmplen);
  case KR_OP_TTL_SET:
    if (r->ttl_mode > KURA_TTL_DECREASE)
      return kr_client_fail(c, KURA_EINVAL, "unknown TTL mode %d", (int)r->ttl_mode);
    return check_item(c, r, r->key, r->klen, 0);
  default:
    return check_item(c, r, r->key, r->klen, r->op == KR_OP_SET ? r->vlen : 0);
  }
}

/* --- pending requests of remote backends ----------------------------------- */

static void list_unlink(kr_client *c, pending *p)
{
  if (!p->linked)
    return;
  if (p->prev)
    p->prev->next = p->next;
  else
    c->head = p->next;
  if (p->next)
    p->next->prev = p->prev;
  else
    c->tail = p->prev;
  p->prev = p->next = NULL;
  p->linked = 0;
  if (!c->head && c->has_timer)
    uv_timer_stop(&c->timer);
}

static void on_deadline(uv_timer_t *t);

static void arm_timer(kr_client *c)
{
  if (!c->head || c->closing)
    return;
  uint64_t now = uv_now(c->loop);
  uint64_t d = c->head->deadline > now ? c->head->deadline - now : 0;
  uv_timer_start(&c->timer, on_deadline, d, 0);
}

static void list_append(kr_client *c, pending *p)
{
  p->prev = c->tail;
  p->next = NULL;
  if (c->tail)
    c->tail->next = p;
  else
    c->head = p;
  c->tail = p;
  p->linked = 1;
  if (c->head == p)
    arm_timer(c);
}

/* --- statistics ------------------------------------------------------------ */

/* The counts of the cache req names: its entry, or the client's other counts
 * (list_caches, a name refused for its length, a full table). */
static kr_counts *counts_of(kr_client *c, const kr_request *req)
{
  kr_counts *k = NULL;
  if (req->cache_len > 0 && req->cache_len <= KR_STORE_MAX_CACHE_NAME)
    k = kr_stats_cache(c->stats, req->cache, req->cache_len);
  return k ? k : kr_stats_other(c->stats);
}

static void count_error(kr_client *c, const kr_request *req, int err)
{
  kr_counts *k = counts_of(c, req);
  k->calls++;
  k->errors[err < 0 && err > -KR_STATS_NERR ? -err : -KURA_EUNKNOWN]++;
}

void kr_client_count_refused(kr_client *c, const kr_request *req, int err)
{
  count_error(c, req, err);
}

/* One completed call: its result as the caller gets it. */
static inline void count_result(kr_client *c, const kr_request *req, const kr_result *res)
{
  if (res->err) {
    count_error(c, req, res->err);
    return;
  }
  kr_counts *k = counts_of(c, req);
  k->calls++;
  if (req->op == KR_OP_GET) {
    if (res->outcome == KURA_HIT)
      k->hits++;
    else
      k->misses++;
  } else if (req->op == KR_OP_GET_BATCH) {
    size_t found = 0;
    for (size_t i = 0; i < res->count; i++)
      found += res->vals[i] != NULL;
    k->hits += found;
    k->misses += res->count - found;
  }
}

/* An inline backend's completion goes through here on its way to the
 * caller, to be counted. */
typedef struct inline_call {
  kr_client *c;
  kr_client_cb cb;
  void *udata;
} inline_call;

static void on_inline_done(void *udata, const kr_request *req, const kr_result *res)
{
  inline_call *ic = udata;
  count_result(ic->c, req, res);
  ic->cb(ic->udata, req, res);
}

/* The client's own deadline: the backend has the request, which may have
 * reached the server. */
static void deliver_error(pending *p, int err, const char *msg)
{
  kr_result res = {.err = err, .msg = msg};
  res.uncertain = kr_result_uncertain(p->req.op, &res);
  p->user_done = 1;
  count_result(p->c, &p->req, &res);
  p->cb(p->udata, &p->req, &res);
}

static void on_deadline(uv_timer_t *t)
{
  kr_client *c = t->data;
  uint64_t now = uv_now(c->loop);
  while (c->head && c->head->deadline <= now) {
    pending *p = c->head;
    char msg[160];
    list_unlink(c, p);
    snprintf(msg, sizeof msg, "%s on cache '%.*s' got no answer within %llu ms",
             kr_op_name(p->req.op), (int)(p->req.cache_len < 64 ? p->req.cache_len : 64),
             p->req.cache ? p->req.cache : "", (unsigned long long)c->timeout_ms);
    deliver_error(p, KURA_ETIMEOUT, msg); /* freed when the backend completes */
  }
  arm_timer(c);
}

static void pending_free(kr_client *c, pending *p)
{
  if (p->small && c->nspare < SPARE_MAX && !c->closing)
    c->spare[c->nspare++] = p;
  else
    free(p);
}

/* The backend's result to the caller, counted; an error says whether the
 * call may have been applied. */
static inline void deliver(pending *p, const kr_result *res)
{
  count_result(p->c, &p->req, res);
  if (res->err) {
    kr_result r = *res;
    r.uncertain = kr_result_uncertain(p->req.op, res);
    p->cb(p->udata, &p->req, &r);
  } else {
    p->cb(p->udata, &p->req, res);
  }
}

/* Every call pending when the client closed completes cancelled, as
 * kr_client_close says, also one whose answer is read after the close. */
static void deliver_cancelled(pending *p)
{
  kr_result r = {.err = KURA_ECANCELLED, .msg = "the client is closed"};
  deliver(p, &r);
}

static void on_backend_done(void *udata, const kr_request *req, const kr_result *res)
{
  pending *p = udata;
  kr_client *c = p->c;
  (void)req;
  if (!p->user_done && res->err && !c->closing &&
      kr_should_retry(p->req.op, res->err, p->attempt, c->max_attempts)) {
    p->attempt++;
    c->ops->submit(c->be, &p->req, on_backend_done, p);
    return;
  }
  list_unlink(c, p);
  c->npending--;
  if (!p->user_done) {
    p->user_done = 1;
    if (c->closing && res->err != KURA_ECANCELLED)
      deliver_cancelled(p); /* an answer read after the close */
    else
      deliver(p, res);
  }
  pending_free(c, p);
}

/* Bytes needed to copy r's data after the record (pointer arrays first). */
static size_t request_size(const kr_request *r)
{
  size_t sz = r->cache_len + r->klen + r->vlen + r->cmplen;
  sz += r->n * (2 * sizeof(void *) + 2 * sizeof(size_t) + sizeof(uint64_t));
  for (size_t i = 0; i < r->n; i++)
    sz += r->klens[i] + (r->vlens ? r->vlens[i] : 0);
  return sz;
}

static const void *copy_bytes(char **at, const void *src, size_t len)
{
  char *dst = *at;
  if (len)
    memcpy(dst, src, len);
  *at += len;
  return dst;
}

static void request_copy_batch(kr_request *d, const kr_request *r, char **at)
{
  const void **keys = (const void **)*at;
  size_t *klens = (size_t *)(keys + r->n);
  const void **vals = (const void **)(klens + r->n);
  size_t *vlens = (size_t *)(vals + r->n);
  uint64_t *ttls = (uint64_t *)(vlens + r->n);
  *at = (char *)(ttls + r->n);
  for (size_t i = 0; i < r->n; i++) {
    klens[i] = r->klens[i];
    keys[i] = copy_bytes(at, r->keys[i], klens[i]);
    vlens[i] = r->vlens ? r->vlens[i] : 0;
    vals[i] = r->vals ? copy_bytes(at, r->vals[i], vlens[i]) : NULL;
    ttls[i] = r->ttls ? r->ttls[i] : 0;
  }
  d->keys = keys, d->klens = klens;
  d->vals = r->vals ? vals : NULL, d->vlens = r->vals ? vlens : NULL;
  d->ttls = r->ttls ? ttls : NULL;
}

static pending *pending_new(kr_client *c, const kr_request *r)
{
  size_t size = sizeof(pending) + request_size(r);
  pending *p = size <= SPARE_BYTES && c->nspare ? c->spare[--c->nspare]
                                                 : malloc(size <= SPARE_BYTES ? SPARE_BYTES : size);
  if (!p)
    return NULL;
  memset(p, 0, sizeof *p);
  p->small = size <= SPARE_BYTES;
  char *at = (char *)(p + 1);
  kr_request *d = &p->req;
  *d = *r;
  if (r->n) /* first: its arrays need the alignment the record has */
    request_copy_batch(d, r, &at);
  else /* the caller's arrays are gone once submit returns: point nowhere */
    d->keys = NULL, d->klens = NULL, d->vals = NULL, d->vlens = NULL, d->ttls = NULL;
  d->cache = copy_bytes(&at, r->cache, r->cache_len);
  d->key = copy_bytes(&at, r->key, r->klen);
  d->val = copy_bytes(&at, r->val, r->vlen);
  d->cmp = copy_bytes(&at, r->cmp, r->cmplen);
  p->c = c;
  p->attempt = 1;
  return p;
}

static int submit_remote(kr_client *c, const kr_request *req, kr_client_cb cb, void *udata)
{
  pending *p = pending_new(c, req);
  if (!p)
    return kr_client_fail(c, KURA_ENOMEM, "out of memory queueing %s", kr_op_name(req->op));
  p->cb = cb;
  p->udata = udata;
  /* The loop's cached time is stale after a long synchronous stretch (a big
   * JSON decode): a deadline from it could already be past. The backend
   * gets the same timeout, from the same clock reading; ours comes
   * DEADLINE_GRACE_MS later, so that a backend that keeps its deadlines
   * reports the timeout itself: it knows whether the request went out (see
   * kr_result.unapplied). libuv runs due timers in the order of their due
   * times, so this holds through any stall of the loop. */
  uv_update_time(c->loop);
  p->deadline = uv_now(c->loop) + c->timeout_ms + DEADLINE_GRACE_MS;
  c->npending++;
  list_append(c, p);
  c->ops->submit(c->be, &p->req, on_backend_done, p);
  return 0;
}

int kr_client_submit(kr_client *c, kr_request *req, kr_client_cb cb, void *udata)
{
  if (c->closing)
    return kr_client_fail(c, KURA_ECANCELLED, "the client is closed");
  int rc = kr_client_validate(c, req);
  if (rc) {
    count_error(c, req, rc);
    return rc;
  }
  return kr_client_submit_valid(c, req, cb, udata);
}

int kr_client_submit_valid(kr_client *c, kr_request *req, kr_client_cb cb, void *udata)
{
  if (c->closing)
    return kr_client_fail(c, KURA_ECANCELLED, "the client is closed");
  if (!(c->ops->supports & KR_OP_BIT(req->op))) {
    count_error(c, req, KURA_EUNSUPPORTED);
    return kr_client_fail(c, KURA_EUNSUPPORTED, "%s is not supported by the %s backend: %s",
                          kr_call_name(req), c->ops->name, c->ops->lacks);
  }
  if (req->ttl_ms == 0)
    req->ttl_ms = c->default_ttl_ms;
  if (c->ops->flags & KR_BACKEND_INLINE) {
    inline_call ic = {c, cb, udata};
    c->ops->submit(c->be, req, on_inline_done, &ic);
    return 0;
  }
  int rc = submit_remote(c, req, cb, udata);
  if (rc)
    count_error(c, req, rc);
  return rc;
}

/* --- life cycle ------------------------------------------------------------ */

static const struct {
  const char *prefix; /* "memory" exactly, or a URL scheme with "://" */
  int exact;
  const char *name;
  const kr_backend_ops *ops; /* NULL: not in this kura (why: `missing`) */
  const char *missing;
} backends[] = {
  {"memory", 1, "memory", &kr_backend_memory_ops, NULL},
  {"redis://", 0, "redis", &kr_backend_redis_ops, NULL},
  {"rediss://", 0, "redis", NULL,
   "TLS to Redis (rediss://) is not supported: use redis:// on a trusted network, "
   "or reach a TLS-only server through a local tunnel (stunnel, spiped)"},
  {"redis-cluster://", 0, "redis-cluster", &kr_backend_redis_cluster_ops, NULL},
  {"momento", 1, "momento", &kr_backend_momento_ops, NULL},
  {"momento-http", 1, "momento-http", &kr_backend_momento_http_ops, NULL},
};

/* spec for a message: what comes between the scheme and an '@' (a user and
 * password, "redis://user:pass@host") shows as "***", even in a mistyped
 * URL; other bytes as kr_format_key shows them. */
static void shown_spec(char *out, size_t cap, const char *spec)
{
  const char *at = strrchr(spec, '@'), *colon = strchr(spec, ':');
  char redacted[512];
  if (at) {
    const char *from = colon && colon < at ? colon + 1 : spec;
    while (from < at && *from == '/')
      from++;
    snprintf(redacted, sizeof redacted, "%.*s***%s", (int)(from - spec), spec, at);
    spec = redacted;
  }
  kr_format_key(out, cap, spec, strlen(spec));
}

static int find_backend(const char *spec, const kr_backend_ops **ops, char *err, size_t errlen)
{
  for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++) {
    size_t n = strlen(backends[i].prefix);
    if (backends[i].exact ? strcmp(spec, backends[i].prefix) != 0
                          : strncmp(spec, backends[i].prefix, n) != 0)
      continue;
    if (!backends[i].ops) {
      snprintf(err, errlen, "%s", backends[i].missing);
      return KURA_EINVAL;
    }
    *ops = backends[i].ops;
    return 0;
  }
  char shown[64];
  shown_spec(shown, sizeof shown, spec);
  snprintf(err, errlen,
           "unknown backend '%s' (expected memory, redis://host:port, "
           "redis-cluster://host:port,..., momento or momento-http)", shown);
  return KURA_EINVAL;
}

int kr_backend_check(const char *spec, char *err, size_t errlen)
{
  const kr_backend_ops *ops = NULL;
  int rc = find_backend(spec, &ops, err, errlen);
  if (rc || !ops->check_spec || ops->check_spec(spec) == 0)
    return rc;
  char shown[96];
  shown_spec(shown, sizeof shown, spec);
  snprintf(err, errlen, "bad backend URL '%s': expected %s", shown, ops->usage);
  return KURA_EINVAL;
}

/* Copies cfg's strings into one owned block. */
static int copy_config(kr_client *c, const kr_client_config *cfg)
{
  const char *src[4] = {cfg->backend, cfg->momento_endpoint, cfg->store, cfg->credential};
  size_t lens[4], total = 0;
  for (int i = 0; i < 4; i++) {
    lens[i] = !src[i] ? 0 : i == 3 ? cfg->credential_len : strlen(src[i]);
    total += lens[i] + 1;
  }
  c->cfg = *cfg;
  c->strings = malloc(total);
  if (!c->strings)
    return KURA_ENOMEM;
  c->strings_len = total;
  char *at = c->strings;
  const char **dst[4] = {&c->cfg.backend, &c->cfg.momento_endpoint, &c->cfg.store,
                         &c->cfg.credential};
  for (int i = 0; i < 4; i++) {
    *dst[i] = src[i] ? at : NULL;
    if (src[i])
      memcpy(at, src[i], lens[i]);
    at[lens[i]] = '\0';
    at += lens[i] + 1;
  }
  return 0;
}

static void client_free(kr_client *c)
{
  void (*closed)(void *) = c->closed;
  void *ud = c->closed_ud;
  while (c->nspare)
    free(c->spare[--c->nspare]);
  kr_wipe_free(c->strings, c->strings_len); /* the credential lives there */
  kr_stats_free(c->stats);
  free(c);
  if (closed)
    closed(ud);
}

static void maybe_free(kr_client *c)
{
  if (c->closing && c->backend_closed && (!c->has_timer || c->timer_closed))
    client_free(c);
}

static void on_timer_closed(uv_handle_t *h)
{
  kr_client *c = h->data;
  c->timer_closed = 1;
  maybe_free(c);
}

static int settle_config(kr_client *c, const kr_client_config *cfg, char *err, size_t errlen)
{
  double ttl = cfg->default_ttl > 0 ? cfg->default_ttl : 60;
  if (cfg->preset >= KR_PRESET_COUNT_ || kr_seconds_to_ms(ttl, &c->default_ttl_ms)) {
    snprintf(err, errlen, "invalid default_ttl or configuration");
    return KURA_EINVAL;
  }
  c->timeout_ms = kr_preset_timeout_ms(cfg->preset);
  if (cfg->timeout > 0 && kr_seconds_to_ms(cfg->timeout, &c->timeout_ms)) {
    snprintf(err, errlen, "invalid timeout");
    return KURA_EINVAL;
  }
  c->max_attempts = cfg->max_attempts > 0 ? cfg->max_attempts : kr_preset_max_attempts(cfg->preset);
  return 0;
}

/* A variable's value, or NULL when it is unset or empty. */
static const char *env_value(const char *name)
{
  const char *v = getenv(name);
  return v && *v ? v : NULL;
}

int kr_client_config_env(kr_client_config *cfg, char *msg, size_t cap)
{
  if (!cfg->backend)
    cfg->backend = env_value("KURA_BACKEND");
  if (!cfg->backend && cfg->credential)
    cfg->backend = "momento";
  if (!cfg->momento_endpoint)
    cfg->momento_endpoint = env_value("KURA_MOMENTO_ENDPOINT");
  if (!cfg->credential && cfg->backend && strncmp(cfg->backend, "momento", 7) == 0) {
    const char *key = env_value("MOMENTO_API_KEY");
    cfg->credential = key ? key : env_value("MOMENTO_AUTH_TOKEN");
    cfg->credential_len = cfg->credential ? strlen(cfg->credential) : 0;
  }
  if (cfg->default_ttl > 0)
    return 0;
  const char *ttl = env_value("MOMENTO_TTL_SECONDS");
  double v = 60;
  char why[160];
  if (ttl && kr_seconds_parse(ttl, &v, why, sizeof why)) {
    snprintf(msg, cap, "MOMENTO_TTL_SECONDS: %s", why);
    return KURA_EINVAL;
  }
  cfg->default_ttl = v;
  return 0;
}

/* kr_client_new_with once cfg holds the environment's defaults. */
static int client_open(uv_loop_t *loop, const kr_client_config *cfg,
                       const kr_backend_ops *ops, kr_client **out,
                       char *err, size_t errlen)
{
  if (!loop && !(ops->flags & KR_BACKEND_INLINE)) {
    snprintf(err, errlen, "backend '%s' needs an event loop", ops->name);
    return KURA_EINVAL;
  }
  kr_client *c = calloc(1, sizeof *c);
  if (!c || !(c->stats = kr_stats_new()) || copy_config(c, cfg)) {
    if (c)
      kr_stats_free(c->stats);
    free(c);
    snprintf(err, errlen, "out of memory");
    return KURA_ENOMEM;
  }
  c->loop = loop;
  c->ops = ops;
  int rc = settle_config(c, cfg, err, errlen);
  if (!rc && (rc = ops->open(c, &c->cfg, &c->be)) != 0)
    snprintf(err, errlen, "%s", c->errstr[0] ? c->errstr : kura_strerror(rc));
  if (rc) {
    c->closing = c->backend_closed = 1;
    client_free(c);
    return rc;
  }
  if (loop && !(ops->flags & KR_BACKEND_INLINE)) {
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    c->has_timer = 1;
  }
  *out = c;
  return 0;
}

int kr_client_new_with(uv_loop_t *loop, const kr_client_config *cfg,
                       const kr_backend_ops *ops, kr_client **out,
                       char *err, size_t errlen)
{
  char dummy[8];
  if (!err)
    err = dummy, errlen = sizeof dummy;
  *out = NULL;
  kr_client_config full = *cfg;
  int rc = kr_client_config_env(&full, err, errlen);
  return rc ? rc : client_open(loop, &full, ops, out, err, errlen);
}

int kr_client_new(uv_loop_t *loop, const kr_client_config *cfg, kr_client **out,
                  char *err, size_t errlen)
{
  const kr_backend_ops *ops = NULL;
  char dummy[8];
  if (!err)
    err = dummy, errlen = sizeof dummy;
  *out = NULL;
  kr_client_config full = *cfg;
  int rc = kr_client_config_env(&full, err, errlen);
  if (!rc)
    rc = find_backend(full.backend ? full.backend : "memory", &ops, err, errlen);
  return rc ? rc : client_open(loop, &full, ops, out, err, errlen);
}

void kr_client_close(kr_client *c, void (*closed)(void *ud), void *ud)
{
  if (c->closing)
    return;
  c->closing = 1;
  c->closed = closed;
  c->closed_ud = ud;
  if (c->has_timer) {
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
  }
  /* The backend fails what is pending (on_backend_done sees `closing` and
   * does not retry), then reports through kr_client_backend_closed. */
  c->ops->close(c->be);
}

void kr_client_backend_closed(kr_client *c)
{
  c->backend_closed = 1;
  c->be = NULL;
  maybe_free(c);
}

/* --- accessors ------------------------------------------------------------- */

uv_loop_t *kr_client_loop(kr_client *c) { return c->loop; }
const kr_client_config *kr_client_config_get(kr_client *c) { return &c->cfg; }
int kr_client_is_inline(const kr_client *c) { return (c->ops->flags & KR_BACKEND_INLINE) != 0; }
const char *kr_client_errstr(const kr_client *c) { return c->errstr; }
const char *kr_client_backend_name(const kr_client *c) { return c->ops->name; }
uint64_t kr_client_default_ttl_ms(const kr_client *c) { return c->default_ttl_ms; }
uint64_t kr_client_timeout_ms(const kr_client *c) { return c->timeout_ms; }
int kr_client_max_attempts(const kr_client *c) { return c->max_attempts; }
size_t kr_client_pending(const kr_client *c) { return c->npending; }

/* --- statistics, read ------------------------------------------------------- */

static int backend_stats(kr_client *c, const char *cache, size_t len, kr_store_stats *out)
{
  memset(out, 0, sizeof *out);
  if (!c->ops->stats || c->closing)
    return KURA_EUNSUPPORTED;
  return c->ops->stats(c->be, cache, len, out);
}

typedef struct stats_sum {
  kr_client *c;
  kr_client_stats *out;
} stats_sum;

static void add_backend_stats(void *ud, const char *name, size_t len, const kr_counts *k)
{
  stats_sum *sum = ud;
  kr_store_stats one;
  (void)k;
  if (backend_stats(sum->c, name, len, &one))
    return;
  sum->out->has_backend = 1;
  sum->out->backend.items += one.items;
  sum->out->backend.bytes += one.bytes;
  sum->out->backend.evictions += one.evictions;
  sum->out->backend.expirations += one.expirations;
}

void kr_client_stats_get(kr_client *c, const char *cache, size_t len, kr_client_stats *out)
{
  memset(out, 0, sizeof *out);
  if (!cache) {
    kr_stats_total(c->stats, &out->counts);
    stats_sum sum = {c, out};
    kr_stats_each(c->stats, add_backend_stats, &sum);
    return;
  }
  const kr_counts *k = kr_stats_find(c->stats, cache, len);
  if (k)
    out->counts = *k;
  out->has_backend = backend_stats(c, cache, len, &out->backend) == 0;
  out->backend.hits = out->backend.misses = 0; /* the store's, all clients': not ours */
}
