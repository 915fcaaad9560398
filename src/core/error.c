/* Error codes of the public API: names (Momento's), sentences, retryability. */
#include "kura_client.h"

#include <stddef.h>

struct errinfo {
  int code;
  const char *name;
  const char *text;
  int retryable;
};

static const struct errinfo errors[] = {
  {KURA_OK, "OK", "success", 0},
  {KURA_EINVAL, "INVALID_ARGUMENT_ERROR", "invalid argument", 0},
  {KURA_ENOTFOUND, "NOT_FOUND_ERROR", "cache not found", 0},
  {KURA_EEXIST, "ALREADY_EXISTS_ERROR", "already exists", 0},
  {KURA_EPRECOND, "FAILED_PRECONDITION_ERROR", "failed precondition", 0},
  {KURA_ELIMIT, "LIMIT_EXCEEDED_ERROR", "limit exceeded", 0},
  {KURA_ETIMEOUT, "TIMEOUT_ERROR", "request timed out", 1},
  {KURA_ECONN, "CONNECTION_ERROR", "connection failed", 1},
  {KURA_EUNAVAIL, "SERVER_UNAVAILABLE", "server unavailable", 1},
  {KURA_EAUTH, "AUTHENTICATION_ERROR", "authentication failed", 0},
  {KURA_EPERM, "PERMISSION_ERROR", "permission denied", 0},
  {KURA_ECANCELLED, "CANCELLED_ERROR", "request cancelled", 0},
  {KURA_EBADREQ, "BAD_REQUEST_ERROR", "bad request", 0},
  {KURA_EINTERNAL, "INTERNAL_SERVER_ERROR", "internal server error", 1},
  {KURA_EUNSUPPORTED, "UNSUPPORTED_OPERATION_ERROR", "operation not supported by this backend", 0},
  {KURA_EUNKNOWN, "UNKNOWN_ERROR", "unknown error", 0},
  {KURA_ENOMEM, "LIMIT_EXCEEDED_ERROR", "out of memory", 0},
  {KURA_ERANGE, "INTERNAL_SERVER_ERROR", "buffer too small", 0},
};

static const struct errinfo *lookup(int err)
{
  for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++)
    if (errors[i].code == err)
      return &errors[i];
  return NULL;
}

const char *kura_errname(int err)
{
  const struct errinfo *e = lookup(err);
  return e ? e->name : "UNKNOWN_ERROR";
}

const char *kura_strerror(int err)
{
  const struct errinfo *e = lookup(err);
  return e ? e->text : "unknown error";
}

int kura_err_retryable(int err)
{
  const struct errinfo *e = lookup(err);
  return e ? e->retryable : 0;
}

const char *kura_version(void)
{
  return KURA_VERSION_STRING;
}
