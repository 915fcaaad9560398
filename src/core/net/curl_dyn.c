/* Loads libcurl on first use (see curl_dyn.h for why it is not linked). */
#include "core/net/curl_dyn.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "kura_client.h"

struct kr_curl_api kr_curl;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static int loaded;            /* set by load() on success */
static char load_error[256]; /* why it failed, otherwise */

/* dlsym returns void *; POSIX guarantees it converts to a function pointer. */
static int resolve(void *lib, const char *name, void *slot)
{
  void *sym = dlsym(lib, name);
  if (!sym) {
    snprintf(load_error, sizeof load_error, "libcurl has no symbol %s", name);
    return -1;
  }
  memcpy(slot, &sym, sizeof sym);
  return 0;
}

static void load(void)
{
  void *lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char *why = dlerror();
    snprintf(load_error, sizeof load_error,
             "cannot load libcurl (%s); install Debian's libcurl4", why ? why : "?");
    return;
  }
#define KR_CURL_RESOLVE(field, fn)                                           \
  if (resolve(lib, #fn, &kr_curl.field) != 0)                                \
    return;
  KR_CURL_FUNCS(KR_CURL_RESOLVE)
#undef KR_CURL_RESOLVE
  loaded = 1;
}

int kr_curl_load(char *err, size_t errlen)
{
  pthread_once(&load_once, load);
  if (loaded)
    return 0;
  if (err && errlen)
    snprintf(err, errlen, "%s", load_error);
  return KURA_EUNSUPPORTED;
}
