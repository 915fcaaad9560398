/* A JSON reader: validates RFC 8259 text and hands out its values one token
 * at a time, so that a caller builds what it wants (Lua values, a few fields
 * of a credential) straight from the bytes, with no tree in between. It
 * allocates nothing but a rare long number, keeps no global state (any
 * thread may run its own reader), and is exact:
 *
 *  - Strings are byte spans: \u0000 and every other escape decode into the
 *    bytes they stand for (kr_json_unescape), NUL included. Raw bytes below
 *    0x20 in a string are an error (the grammar forbids them), as are bytes
 *    that are not valid UTF-8 (overlong forms, surrogates, past U+10FFFF) and
 *    a \u escape of a lone surrogate: JSON text is UTF-8, and a reader that
 *    let them through would hand on text no other JSON reader takes back.
 *  - A number without fraction or exponent that fits int64 is an integer,
 *    exactly; any other number is the nearest double (the locale's decimal
 *    point does not matter). A number too large for a double is an error:
 *    JSON has no infinity. (One below the smallest double reads as 0, as
 *    any decimal reads as the nearest double.)
 *  - Nesting deeper than KR_JSON_MAX_DEPTH is an error.
 *
 * Errors name the byte: err_at is the offset (0-based) of the byte where the
 * text stopped being JSON, err says what was wrong there.
 *
 *   kr_json j;
 *   kr_json_init(&j, text, len);
 *   while ((tok = kr_json_next(&j)) > KR_JSON_END) ... ;
 *   if (tok == KR_JSON_ERROR) ... j.err_at, j.err ...
 *
 * Tokens come in document order: OBJECT, then KEY and a value per member,
 * then OBJECT_END; ARRAY, values, ARRAY_END. After the one top-level value
 * only white space may follow; END says the text is done.
 */
#ifndef KR_JSON_H
#define KR_JSON_H

#include <stddef.h>
#include <stdint.h>

#define KR_JSON_MAX_DEPTH 1000 /* arrays and objects inside each other */

typedef enum kr_json_tok {
  KR_JSON_ERROR = -1,
  KR_JSON_END = 0,     /* the text is done (after the top-level value) */
  KR_JSON_NULL,
  KR_JSON_FALSE,
  KR_JSON_TRUE,
  KR_JSON_INT,         /* i */
  KR_JSON_FLOAT,       /* d */
  KR_JSON_STRING,      /* str, len, escaped */
  KR_JSON_KEY,         /* an object member's name: str, len, escaped */
  KR_JSON_ARRAY,
  KR_JSON_ARRAY_END,
  KR_JSON_OBJECT,
  KR_JSON_OBJECT_END,
} kr_json_tok;

typedef struct kr_json {
  /* the token just read */
  const char *str;     /* STRING, KEY: the bytes between the quotes */
  size_t len;
  int escaped;         /* they hold escapes: decode with kr_json_unescape */
  int64_t i;           /* INT */
  double d;            /* FLOAT */
  int depth;           /* arrays and objects open after this token */
  /* after KR_JSON_ERROR */
  size_t err_at;       /* offset of the offending byte (== len at the end) */
  char err[96];        /* what was wrong, e.g. "unexpected byte 'x'" */
  /* the reader's own */
  const unsigned char *start, *p, *end;
  int state;
  unsigned char in_object[KR_JSON_MAX_DEPTH / 8 + 1]; /* one bit per level */
} kr_json;

void kr_json_init(kr_json *j, const void *text, size_t len);
/* The next token; KR_JSON_ERROR stays the answer once it was given. */
kr_json_tok kr_json_next(kr_json *j);
/* After the first token of a value (tok): reads past the rest of it (an
 * array's or object's whole contents). 0, or -1 at an error. */
int kr_json_skip(kr_json *j, kr_json_tok tok);
/* Writes the bytes a STRING or KEY token stands for into out, which has room
 * for len bytes (the decoded form is never longer); returns their number.
 * Only for spans that kr_json_next accepted. */
size_t kr_json_unescape(const char *s, size_t len, char *out);

/* The length of the longest prefix of s that is valid UTF-8 (len when all
 * of it is): the encoder's check that a Lua string is text JSON can carry. */
size_t kr_json_utf8_prefix(const char *s, size_t len);
/* d (finite) as the shortest decimal text that reads back as d, with ".0"
 * added when it would read back as an integer (so that a float stays a
 * float); '.' whatever the locale. buf needs 32 bytes. Returns the length. */
size_t kr_json_format_double(double d, char *buf);

#endif
