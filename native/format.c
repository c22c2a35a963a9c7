/*
 * LIST, NLST and MLSD lines straight from a native listing (list.c's packed
 * names and numbers), so a 10,000-entry folder is not 10,000 entry objects,
 * dates and strings in JavaScript (docs/performance.md, list_10k). The lines
 * are byte for byte those of src/listing/format.ts; the tests compare the two
 * on the same folders. `formattable` says up front whether a listing is one
 * this file formats exactly (valid UTF-8 names, years 0-9999); any other goes
 * through the JavaScript formatter whole.
 */
#include "moat.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FIELDS 5
#define KIND_FILE 0
#define KIND_DIR 1
#define KIND_LINK 2
#define KIND_OTHER 3
/* A chunk ends past this many bytes; a line is its name, its id and at most LINE_FIXED_MAX more. */
#define CHUNK_BYTES (64 * 1024)
#define LINE_MAX_BYTES 1024
#define LINE_FIXED_MAX 256

#define FACT_TYPE 1
#define FACT_SIZE 2
#define FACT_MODIFY 4
#define FACT_PERM 8
#define FACT_UNIQUE 16
#define FACT_MODE 32

enum { FORMAT_LS = 0, FORMAT_MLSX = 1, FORMAT_NAMES = 2 };

static const char *const MONTHS[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
/* What format.ts calls SIX_MONTHS_MS and ONE_HOUR_MS: the same doubles, compared the same way. */
static const double SIX_MONTHS_MS = (365.2425 * 24 * 60 * 60 * 1000) / 2;
static const double ONE_HOUR_MS = 60.0 * 60 * 1000;
/* The range of a JavaScript Date. */
static const double DATE_MAX_MS = 8.64e15;

typedef struct {
  int64_t year;
  int month; /* 0-11 */
  int day;   /* 1-31 */
} civil_t;

/* Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's civil_from_days). */
static civil_t civil_from_days(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  civil_t c;
  c.day = (int)(doy - (153 * mp + 2) / 5 + 1);
  c.month = (int)(mp < 10 ? mp + 2 : mp - 10);
  c.year = yoe + era * 400 + (c.month <= 1);
  return c;
}

static int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF), as Node's decoder wants it. */
static int valid_utf8(const unsigned char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned char c = s[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c == 0xE0) len = 3, lo = 0xA0;
    else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) len = 3;
    else if (c == 0xED) len = 3, hi = 0x9F;
    else if (c == 0xF0) len = 4, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3) len = 4;
    else if (c == 0xF4) len = 4, hi = 0x8F;
    else return 0;
    if (i + len > n) return 0;
    if (s[i + 1] < lo || s[i + 1] > hi) return 0;
    for (size_t k = 2; k < len; k++)
      if (s[i + k] < 0x80 || s[i + k] > 0xBF) return 0;
    i += len;
  }
  return 1;
}

static int year_in_range(double ms) {
  if (!((ms < 0 ? -ms : ms) <= DATE_MAX_MS)) return 0;
  civil_t c = civil_from_days(floor_div((int64_t)ms, 86400000));
  return c.year >= 0 && c.year <= 9999;
}

typedef struct {
  char *p;
} out_t;

static void put(out_t *o, const char *s, size_t n) {
  memcpy(o->p, s, n);
  o->p += n;
}

static void puts_(out_t *o, const char *s) { put(o, s, strlen(s)); }

/*
 * printf's %<width>lld (pad ' ') or %0<width>lld (pad '0') by hand: sprintf
 * was a tenth of a listing's CPU (its format parsing, per number).
 */
static void put_int(out_t *o, long long v, int width, char pad) {
  char digits[24];
  int n = 0;
  unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
  do {
    digits[n++] = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  int len = n + (v < 0);
  if (v < 0 && pad == '0') *o->p++ = '-';
  for (; width > len; width--) *o->p++ = pad;
  if (v < 0 && pad != '0') *o->p++ = '-';
  while (n) *o->p++ = digits[--n];
}

static void put_two(out_t *o, int v) {
  *o->p++ = (char)('0' + v / 10);
  *o->p++ = (char)('0' + v % 10);
}

/* safeName: control characters (which in valid UTF-8 are single bytes) become '?'. */
static void put_name(out_t *o, const char *name, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)name[i];
    *o->p++ = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
  }
}

static void put_rwx(out_t *o, int mode) {
  for (int shift = 6; shift >= 0; shift -= 3) {
    int bits = (mode >> shift) & 7;
    *o->p++ = bits & 4 ? 'r' : '-';
    *o->p++ = bits & 2 ? 'w' : '-';
    *o->p++ = bits & 1 ? 'x' : '-';
  }
}

typedef struct {
  int format;
  double now_ms;
  int show_hidden;
  int facts;
  char perms[4][16];
} spec_t;

static void ls_line(out_t *o, const spec_t *spec, const double *n, const char *name, size_t name_len) {
  int kind = (int)n[0];
  *o->p++ = kind == KIND_DIR ? 'd' : kind == KIND_LINK ? 'l' : '-';
  put_rwx(o, (int)n[3] & 0777);
  *o->p++ = ' ';
  put_int(o, (long long)n[4], 4, ' ');
  puts_(o, " ftp      ftp      ");
  put_int(o, kind == KIND_LINK ? 0LL : (long long)n[1], 8, ' ');
  *o->p++ = ' ';
  double ms = n[2];
  double age = spec->now_ms - ms;
  if (age < SIX_MONTHS_MS && age > -ONE_HOUR_MS) {
    int64_t minute = floor_div((int64_t)ms, 60000);
    int64_t days = floor_div(minute, 1440);
    int64_t of_day = minute - days * 1440;
    civil_t c = civil_from_days(days);
    put(o, MONTHS[c.month], 3);
    *o->p++ = ' ';
    put_int(o, c.day, 2, ' ');
    *o->p++ = ' ';
    put_two(o, (int)(of_day / 60));
    *o->p++ = ':';
    put_two(o, (int)(of_day % 60));
    *o->p++ = ' ';
  } else {
    civil_t c = civil_from_days(floor_div((int64_t)ms, 86400000));
    put(o, MONTHS[c.month], 3);
    *o->p++ = ' ';
    put_int(o, c.day, 2, ' ');
    put(o, "  ", 2);
    put_int(o, (long long)c.year, 0, ' ');
    *o->p++ = ' ';
  }
  put_name(o, name, name_len);
}

static const char *const TYPE_FACTS[] = {"type=file;", "type=dir;", "type=OS.unix=symlink;", "type=OS.unix=special;"};

static void mlsx_line(out_t *o, const spec_t *spec, const double *n, const char *name, size_t name_len, const char *unique,
                      size_t unique_len) {
  int kind = (int)n[0];
  if (spec->facts & FACT_TYPE) puts_(o, TYPE_FACTS[kind]);
  if ((spec->facts & FACT_SIZE) && kind != KIND_DIR) {
    puts_(o, "size=");
    put_int(o, kind == KIND_LINK ? 0LL : (long long)n[1], 0, ' ');
    *o->p++ = ';';
  }
  if (spec->facts & FACT_MODIFY) {
    int64_t ms = (int64_t)n[2];
    int64_t second = floor_div(ms, 1000);
    int frac = (int)(ms - second * 1000);
    int64_t days = floor_div(second, 86400);
    int64_t of_day = second - days * 86400;
    civil_t c = civil_from_days(days);
    puts_(o, "modify=");
    put_int(o, (long long)c.year, 4, '0');
    put_two(o, c.month + 1);
    put_two(o, c.day);
    put_two(o, (int)(of_day / 3600));
    put_two(o, (int)(of_day / 60 % 60));
    put_two(o, (int)(of_day % 60));
    if (frac) {
      *o->p++ = '.';
      put_int(o, frac, 3, '0');
    }
    *o->p++ = ';';
  }
  if (spec->facts & FACT_PERM) {
    puts_(o, "perm=");
    puts_(o, spec->perms[kind]);
    *o->p++ = ';';
  }
  if (spec->facts & FACT_UNIQUE) {
    puts_(o, "unique=");
    put(o, unique, unique_len);
    *o->p++ = ';';
  }
  if (spec->facts & FACT_MODE) {
    int mode = (int)n[3] & 0777;
    puts_(o, "UNIX.mode=0");
    *o->p++ = (char)('0' + (mode >> 6));
    *o->p++ = (char)('0' + ((mode >> 3) & 7));
    *o->p++ = (char)('0' + (mode & 7));
    *o->p++ = ';';
  }
  *o->p++ = ' ';
  put_name(o, name, name_len);
}

/* formattable(namesAndUniques, nums): whether every entry can be formatted here exactly. */
static napi_value formattable(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  char *raw;
  size_t raw_len, nums_len;
  double *nums;
  napi_typedarray_type type;
  napi_value result;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_get_buffer_info(env, argv[0], (void **)&raw, &raw_len) != napi_ok ||
      napi_get_typedarray_info(env, argv[1], &type, &nums_len, (void **)&nums, NULL, NULL) != napi_ok || type != napi_float64_array) {
    napi_throw_type_error(env, NULL, "formattable(namesAndUniques: Buffer, nums: Float64Array)");
    return NULL;
  }
  int ok = valid_utf8((const unsigned char *)raw, raw_len);
  for (size_t i = 0; ok && i + FIELDS <= nums_len; i += FIELDS) {
    double kind = nums[i];
    if (kind < 0) continue;
    if (kind != KIND_FILE && kind != KIND_DIR && kind != KIND_LINK && kind != KIND_OTHER) ok = 0;
    else if (!year_in_range(nums[i + 2])) ok = 0;
  }
  napi_get_boolean(env, ok, &result);
  return result;
}

/*
 * formatLines(namesAndUniques, nums, cursor, format, nowMs, showHidden, facts, perms)
 * Lines from entry cursor[0] (at byte cursor[1] of namesAndUniques) on, until
 * a chunk is full: a Buffer, with the cursor moved past it; undefined at the end.
 */
static napi_value format_lines(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  char *raw;
  size_t raw_len, nums_len, cursor_len;
  double *nums, *cursor;
  napi_typedarray_type type, cursor_type;
  spec_t spec;
  bool show_hidden;
  uint32_t perms_len = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 8 ||
      napi_get_buffer_info(env, argv[0], (void **)&raw, &raw_len) != napi_ok ||
      napi_get_typedarray_info(env, argv[1], &type, &nums_len, (void **)&nums, NULL, NULL) != napi_ok || type != napi_float64_array ||
      napi_get_typedarray_info(env, argv[2], &cursor_type, &cursor_len, (void **)&cursor, NULL, NULL) != napi_ok ||
      cursor_type != napi_float64_array || cursor_len < 2 || napi_get_value_int32(env, argv[3], &spec.format) != napi_ok ||
      napi_get_value_double(env, argv[4], &spec.now_ms) != napi_ok || napi_get_value_bool(env, argv[5], &show_hidden) != napi_ok ||
      napi_get_value_int32(env, argv[6], &spec.facts) != napi_ok || napi_get_array_length(env, argv[7], &perms_len) != napi_ok ||
      perms_len != 4) {
    napi_throw_type_error(env, NULL, "formatLines(namesAndUniques, nums, cursor, format, nowMs, showHidden, facts, perms[4])");
    return NULL;
  }
  spec.show_hidden = show_hidden;
  for (uint32_t k = 0; k < 4; k++) {
    napi_value s;
    size_t len;
    if (napi_get_element(env, argv[7], k, &s) != napi_ok ||
        napi_get_value_string_utf8(env, s, spec.perms[k], sizeof spec.perms[k], &len) != napi_ok) {
      napi_throw_type_error(env, NULL, "formatLines: perms must be four strings");
      return NULL;
    }
  }
  size_t count = nums_len / FIELDS;
  size_t i = (size_t)cursor[0];
  size_t at = (size_t)cursor[1];
  napi_value result;
  if (i >= count || at >= raw_len) {
    napi_get_undefined(env, &result);
    return result;
  }
  size_t cap = CHUNK_BYTES + LINE_MAX_BYTES;
  char *chunk = malloc(cap);
  if (chunk == NULL) return throw_errno(env, "formatLines", ENOMEM);
  out_t o = {chunk};
  for (; i < count && at < raw_len && o.p - chunk < CHUNK_BYTES; i++) {
    const char *name = raw + at;
    size_t name_len = strnlen(name, raw_len - at);
    at += name_len + 1;
    const char *unique = "";
    size_t unique_len = 0;
    if (at < raw_len) {
      unique = raw + at;
      unique_len = strnlen(unique, raw_len - at);
      at += unique_len + 1;
    }
    /* Room for the longest line this entry can make: its name and id, and the fixed columns. */
    size_t used = (size_t)(o.p - chunk);
    if (used + name_len + unique_len + LINE_FIXED_MAX > cap) {
      char *grown = realloc(chunk, cap = used + name_len + unique_len + LINE_FIXED_MAX);
      if (grown == NULL) {
        free(chunk);
        return throw_errno(env, "formatLines", ENOMEM);
      }
      chunk = grown;
      o.p = chunk + used;
    }
    const double *n = nums + i * FIELDS;
    /* Gone since readdir (-1); anything else unknown is skipped too, never used as an index. */
    if (!(n[0] == KIND_FILE || n[0] == KIND_DIR || n[0] == KIND_LINK || n[0] == KIND_OTHER)) continue;
    if (!spec.show_hidden && name[0] == '.') continue;
    if (spec.format == FORMAT_LS) ls_line(&o, &spec, n, name, name_len);
    else if (spec.format == FORMAT_MLSX) mlsx_line(&o, &spec, n, name, name_len, unique, unique_len);
    else put_name(&o, name, name_len);
    put(&o, "\r\n", 2);
  }
  cursor[0] = (double)i;
  cursor[1] = (double)at;
  napi_status status = napi_create_buffer_copy(env, (size_t)(o.p - chunk), chunk, NULL, &result);
  free(chunk);
  /* Never a silently short listing: the caller's transfer fails instead. */
  if (status != napi_ok) return throw_errno(env, "formatLines", ENOMEM);
  return result;
}

void register_format(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"formattable", NULL, formattable, NULL, NULL, NULL, napi_default_method, NULL},
      {"formatLines", NULL, format_lines, NULL, NULL, NULL, napi_default_method, NULL},
  };
  napi_define_properties(env, exports, 2, props);
}
