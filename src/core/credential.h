/* Momento credentials: the key formats Momento hands out, parsed into the
 * secret to send and the endpoints to send it to.
 *
 *  - v1 API key: base64 of a JSON object {"endpoint": "cell-...", "api_key": "..."};
 *    the secret is api_key, the endpoints are cache.<endpoint> and
 *    control.<endpoint>.
 *  - legacy auth token: a JWT whose claims "c" and "cp" name the cache and
 *    control endpoints; the secret is the whole token.
 *  - any other key (a JWT without those claims, an opaque key): the secret is
 *    the key itself and the endpoint comes separately (MOMENTO_ENDPOINT).
 *
 * Nothing here ever copies the secret into a message. No Lua here.
 */
#ifndef KR_CREDENTIAL_H
#define KR_CREDENTIAL_H

#include <stddef.h>

#include "kura_client.h"

#define KR_CRED_HOST_MAX 256

enum kr_cred_kind {
  KR_CRED_V1 = 1,   /* base64 JSON with endpoint and api_key */
  KR_CRED_JWT,      /* legacy token with c / cp claims */
  KR_CRED_OPAQUE,   /* endpoint given separately */
};

typedef struct kr_credential {
  enum kr_cred_kind kind;
  char *secret;                           /* sent as Authorization; wiped on free */
  size_t secret_len;
  char endpoint[KR_CRED_HOST_MAX];        /* "cell-....momentohq.com" or "" */
  char cache_endpoint[KR_CRED_HOST_MAX];  /* "cache.<endpoint>" or the c claim, or "" */
  char control_endpoint[KR_CRED_HOST_MAX];/* "control.<endpoint>" or the cp claim, or "" */
} kr_credential;

/* Parses key (len bytes; surrounding whitespace is ignored). `endpoint`
 * (may be NULL) is the endpoint for keys that carry none. Returns 0, or
 * KURA_EINVAL with a message in err that never contains the key, or
 * KURA_ENOMEM. On success free *out with kr_credential_free. */
int kr_credential_parse(const char *key, size_t len, const char *endpoint,
                        kr_credential *out, char *err, size_t errlen);
/* The messages of a Momento backend that has no key, or no endpoint for its
 * key: they name the variable to set (one wording for both backends). */
#define KR_CRED_MISSING_KEY                                                        \
  "MOMENTO_API_KEY is not set (nor MOMENTO_AUTH_TOKEN): set it to a Momento API " \
  "key, or give credential = kura.credential.from_env(NAME)"
#define KR_CRED_NO_ENDPOINT                                                       \
  "the key names no endpoint: set KURA_MOMENTO_ENDPOINT (kura run "             \
  "--momento-endpoint, the momento_endpoint option) or MOMENTO_ENDPOINT"

/* The credential a Momento backend opens with (one set-up for both): `key`,
 * the client's (its option, else MOMENTO_API_KEY or MOMENTO_AUTH_TOKEN:
 * kr_client_config_env), parsed with MOMENTO_ENDPOINT for keys that carry no
 * endpoint. With no key: 1 when `endpoint` is a plaintext emulator (http://,
 * which needs none), else KURA_EAUTH with KR_CRED_MISSING_KEY. Messages go
 * to err, prefixed with `who` ("momento: ..."), never with the key. On 0,
 * free *out with kr_credential_free. */
int kr_credential_open(const char *who, const char *key, size_t len, const char *endpoint,
                       kr_credential *out, char *err, size_t errlen);

/* Wipes and frees the secret. */
void kr_credential_free(kr_credential *cred);

/* The base URL of Momento's HTTP API for cred: "https://api.cache.<endpoint>",
 * or "https://api.<c claim>". KURA_EINVAL when cred names no endpoint. */
int kr_credential_http_base(const kr_credential *cred, char *out, size_t cap);

/* Decodes standard or URL-safe base64, padding optional. Returns the number
 * of bytes written, or -1 for invalid input or a too small buffer. */
long kr_base64_decode(const char *in, size_t len, unsigned char *out, size_t cap);
/* Standard base64 with padding; out needs 4 * ((len + 2) / 3) + 1 bytes.
 * Returns the length written (NUL-terminated). */
size_t kr_base64_encode(const void *in, size_t len, char *out);

#endif
