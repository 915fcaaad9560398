/* kura: the public C API of the kura cache runtime.
 *
 * Every function returns 0 (KURA_OK) on success or a negative KURA_E* code.
 * The codes follow Momento Cache's error names; kura_errname() gives that
 * name ("NOT_FOUND_ERROR") and kura_strerror() a sentence for people.
 */
#ifndef KURA_H
#define KURA_H

#ifdef __cplusplus
extern "C" {
#endif

#define KURA_VERSION_MAJOR 0
#define KURA_VERSION_MINOR 1
#define KURA_VERSION_PATCH 0

enum kura_error {
  KURA_OK = 0,
  KURA_EINVAL = -1,        /* INVALID_ARGUMENT_ERROR */
  KURA_ENOTFOUND = -2,     /* NOT_FOUND_ERROR: the cache does not exist */
  KURA_EEXIST = -3,        /* ALREADY_EXISTS_ERROR */
  KURA_EPRECOND = -4,      /* FAILED_PRECONDITION_ERROR */
  KURA_ELIMIT = -5,        /* LIMIT_EXCEEDED_ERROR */
  KURA_ETIMEOUT = -6,      /* TIMEOUT_ERROR */
  KURA_ECONN = -7,         /* CONNECTION_ERROR */
  KURA_EUNAVAIL = -8,      /* SERVER_UNAVAILABLE */
  KURA_EAUTH = -9,         /* AUTHENTICATION_ERROR */
  KURA_EPERM = -10,        /* PERMISSION_ERROR */
  KURA_ECANCELLED = -11,   /* CANCELLED_ERROR */
  KURA_EBADREQ = -12,      /* BAD_REQUEST_ERROR */
  KURA_EINTERNAL = -13,    /* INTERNAL_SERVER_ERROR */
  KURA_EUNSUPPORTED = -14, /* UNSUPPORTED_OPERATION_ERROR */
  KURA_EUNKNOWN = -15,     /* UNKNOWN_ERROR */
  KURA_ENOMEM = -16,       /* out of memory (reported as LIMIT_EXCEEDED_ERROR) */
  KURA_ERANGE = -17        /* a caller's buffer is too small (internal) */
};

/* "NOT_FOUND_ERROR" etc.; "UNKNOWN_ERROR" for a code it does not know. */
const char *kura_errname(int err);
/* A short sentence describing the code. */
const char *kura_strerror(int err);
/* 1 when a call that failed with this code may succeed if tried again. */
int kura_err_retryable(int err);

/* "0.1.0" */
const char *kura_version(void);

#ifdef __cplusplus
}
#endif
#endif
