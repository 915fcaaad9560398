/* Read-through for kura serve (serve.h): a get that missed asks the miss
 * hook for the value. One "flight" per cache and key at a time: the first
 * get that misses starts it and calls the hook, gets of the same key that
 * miss meanwhile join it, and every one of them gets what the hook
 * returned once it is stored (so a get made after the answer finds the
 * value in the cache, even on a backend that stores asynchronously).
 *
 * A flight outlives the server when it must: kr_serve_close detaches the
 * flights (their waiting calls are dropped), and a detached flight only
 * waits for the hook's done (and, if it was storing, the client's answer)
 * to free itself. The hook's contract says done always comes.
 */
#include <stdlib.h>
#include <string.h>

#include "core/serve/serve_int.h"
#include "kura_client.h"

struct kr_serve_flight {
  kr_serve *s;                /* NULL once detached */
  kr_serve_flight *next;      /* the table's chain */
  uint64_t hash;
  kr_serve_call *waiters;
  uint8_t *val;               /* the hook's value, while it is stored */
  size_t vlen;
  size_t clen, klen;
  char name[];                /* the cache name, then the key */
};

static uint64_t flight_hash(const char *cache, size_t clen, const void *key, size_t klen)
{
  uint64_t h = 1469598103934665603u;
  for (size_t i = 0; i < clen; i++)
    h = (h ^ (unsigned char)cache[i]) * 1099511628211u;
  h = (h ^ 0xff) * 1099511628211u; /* no cache+key pair runs into another */
  for (size_t i = 0; i < klen; i++)
    h = (h ^ ((const unsigned char *)key)[i]) * 1099511628211u;
  return h;
}

static kr_serve_flight **slot(kr_serve *s, uint64_t h)
{
  return &s->flights[h & (s->capflights - 1)];
}

static kr_serve_flight *find(kr_serve *s, uint64_t h, const char *cache, size_t clen,
                             const void *key, size_t klen)
{
  if (!s->capflights)
    return NULL;
  for (kr_serve_flight *f = *slot(s, h); f; f = f->next)
    if (f->hash == h && f->clen == clen && f->klen == klen &&
        memcmp(f->name, cache, clen) == 0 && memcmp(f->name + clen, key, klen) == 0)
      return f;
  return NULL;
}

static int grow(kr_serve *s)
{
  size_t cap = s->capflights ? 2 * s->capflights : 64;
  kr_serve_flight **t = calloc(cap, sizeof *t);
  if (!t)
    return KURA_ENOMEM;
  for (size_t i = 0; i < s->capflights; i++) {
    for (kr_serve_flight *f = s->flights[i], *next; f; f = next) {
      next = f->next;
      f->next = t[f->hash & (cap - 1)];
      t[f->hash & (cap - 1)] = f;
    }
  }
  free(s->flights);
  s->flights = t, s->capflights = cap;
  return 0;
}

static void unlink_flight(kr_serve *s, kr_serve_flight *f)
{
  kr_serve_flight **pp = slot(s, f->hash);
  while (*pp != f)
    pp = &(*pp)->next;
  *pp = f->next;
  s->nflights--;
}

/* Answers every waiter (a value, a miss, or err) and frees the flight. */
static void finish(kr_serve_flight *f, int err, const char *msg, const void *val, size_t vlen)
{
  unlink_flight(f->s, f);
  kr_serve_call *w = f->waiters;
  f->waiters = NULL;
  while (w) {
    kr_serve_call *next = w->next_waiter;
    w->flight = NULL;
    if (w->req && err)
      w->kind->error(w, err, msg);
    else if (w->req)
      w->kind->value(w, val, vlen);
    kr_serve_call_release(w);
    w = next;
  }
  free(f->val);
  free(f);
}

static void on_stored(void *ud, const kr_request *req, const kr_result *res)
{
  kr_serve_flight *f = ud;
  if (!f->s) { /* detached while storing */
    free(f->val);
    free(f);
    return;
  }
  /* A store that failed (the cache was deleted meanwhile, the backend is
   * down) fails the gets too: what they would answer is not in the cache. */
  if (res->err)
    finish(f, res->err, res->msg, NULL, 0);
  else
    finish(f, 0, NULL, f->val, f->vlen);
}

static void on_hook_done(void *ud, int err, const char *msg, const void *val, size_t vlen,
                         uint64_t ttl_ms)
{
  kr_serve_flight *f = ud;
  if (!f->s) { /* detached: nobody waits any more */
    free(f);
    return;
  }
  if (err || !val) {
    finish(f, err, msg, NULL, 0);
    return;
  }
  if (!(f->val = malloc(vlen ? vlen : 1))) {
    finish(f, KURA_ENOMEM, "kura serve: out of memory for the loaded value", NULL, 0);
    return;
  }
  memcpy(f->val, val, vlen);
  f->vlen = vlen;
  kr_request r = {.op = KR_OP_SET, .cache = f->name, .cache_len = f->clen,
                  .key = f->name + f->clen, .klen = f->klen, .val = f->val, .vlen = vlen,
                  .ttl_ms = ttl_ms};
  int rc = kr_client_submit(f->s->client, &r, on_stored, f);
  if (rc)
    finish(f, rc, kr_client_errstr(f->s->client), NULL, 0);
}

void kr_serve_miss_join(kr_serve_call *call, const char *cache, size_t clen, const void *key,
                        size_t klen)
{
  kr_serve *s = call->s;
  uint64_t h = flight_hash(cache, clen, key, klen);
  kr_serve_flight *f = find(s, h, cache, clen, key, klen);
  if (f) {
    call->flight = f;
    call->next_waiter = f->waiters;
    f->waiters = call;
    return;
  }
  if ((s->nflights >= s->capflights && grow(s)) ||
      !(f = calloc(1, sizeof *f + clen + klen + 1))) {
    call->kind->error(call, KURA_ENOMEM, "kura serve: out of memory for read-through");
    return;
  }
  f->s = s, f->hash = h, f->clen = clen, f->klen = klen;
  memcpy(f->name, cache, clen);
  if (klen) /* the empty key may come as NULL */
    memcpy(f->name + clen, key, klen);
  f->next = *slot(s, h);
  *slot(s, h) = f;
  s->nflights++;
  s->stats.misses_loaded++;
  call->flight = f;
  f->waiters = call;
  /* The hook may answer before it returns: f may be gone after this. */
  s->on_miss(s->miss_ud, f->name, clen, f->name + clen, klen, on_hook_done, f);
}

void kr_serve_miss_detach_all(kr_serve *s)
{
  for (size_t i = 0; i < s->capflights; i++) {
    for (kr_serve_flight *f = s->flights[i], *next; f; f = next) {
      next = f->next;
      kr_serve_call *w = f->waiters;
      f->waiters = NULL;
      f->s = NULL;
      while (w) {
        kr_serve_call *wn = w->next_waiter;
        w->flight = NULL;
        kr_serve_call_release(w); /* the transport's close drops the rest */
        w = wn;
      }
    }
    s->flights[i] = NULL;
  }
  s->nflights = 0;
}
