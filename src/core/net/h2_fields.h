/* The rules an HTTP/2 request's header fields must follow (RFC 9113,
 * section 8.2 and 8.3), checked by the server itself.
 *
 * nghttp2 can check them ("HTTP messaging"), but its checks cost a sixth of
 * a whole gRPC call's instructions in kura serve (3.3k of 20.7k, callgrind);
 * the server turns them off and calls these instead, once per field, eight
 * bytes at a time where it can. The rules are nghttp2's: a field name is
 * lowercase token characters, a value holds no NUL, CR or LF, pseudo-fields
 * come first, once each, and only the four of a request; fields that belong
 * to a single HTTP/1.1 hop are not allowed, and `te` may only be "trailers".
 */
#ifndef KR_H2_FIELDS_H
#define KR_H2_FIELDS_H

#include <stddef.h>
#include <stdint.h>

/* What a field is, for the request's own bookkeeping. */
enum kr_h2_field {
  KR_H2F_BAD = 0,        /* malformed: the stream is reset (PROTOCOL_ERROR) */
  KR_H2F_REGULAR,        /* a field to keep */
  KR_H2F_METHOD,         /* :method */
  KR_H2F_SCHEME,         /* :scheme */
  KR_H2F_PATH,           /* :path */
  KR_H2F_AUTHORITY,      /* :authority */
  KR_H2F_CONTENT_LENGTH, /* content-length (its value checked: digits) */
};

/* Classifies one field of a request's header block and checks its name and
 * value. Pseudo-fields' values are checked for what they must be (a token
 * method, a path that starts with '/' or is "*"); the order and count of
 * fields are kr_h2_fields_add's. */
enum kr_h2_field kr_h2_field_check(const uint8_t *name, size_t nl, const uint8_t *value,
                                   size_t vl);

/* A regular field name: one or more of RFC 9110's token characters, none
 * uppercase. */
int kr_h2_name_ok(const uint8_t *p, size_t n);

/* A field value: any bytes but NUL, CR and LF. */
int kr_h2_value_ok(const uint8_t *p, size_t n);

/* The state of one request's header block. */
typedef struct kr_h2_fields {
  uint8_t seen;     /* bits: 1 << KR_H2F_METHOD ... KR_H2F_CONTENT_LENGTH */
  uint8_t regular;  /* a regular field was seen: no pseudo-field may follow */
  uint8_t connect;  /* :method is CONNECT */
  int64_t content_length; /* -1: none */
} kr_h2_fields;

void kr_h2_fields_init(kr_h2_fields *f);

/* Adds one field of kind k (kr_h2_field_check's answer for it) to the
 * block: k, or KR_H2F_BAD when it breaks the block's rules (a pseudo-field
 * twice or after a regular one, two content-lengths). */
enum kr_h2_field kr_h2_fields_add(kr_h2_fields *f, enum kr_h2_field k, const uint8_t *value,
                                  size_t vl);

/* At the end of the block: 0 when the request has what it must (:method,
 * and :scheme and :path unless it is CONNECT, which has :authority and
 * neither of them), -1 when it is malformed. */
int kr_h2_fields_complete(const kr_h2_fields *f);

/* A trailer field (after the body): regular fields only. */
int kr_h2_trailer_ok(const uint8_t *name, size_t nl, const uint8_t *value, size_t vl);

#endif
