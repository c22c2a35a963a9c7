/*
 * Directory listings for LIST, NLST and MLSD: readdir, sort and lstat on
 * threads of their own, so a 10,000-entry folder is one job off the event
 * loop instead of 10,000 calls through Node's fs layer (docs/performance.md,
 * list_10k). The result is packed: each entry's name and its unique id
 * (hex "dev-ino", the MLSD fact) joined by NUL, and five numbers per entry
 * (kind, size, mtime ms, mode, nlink); kind -1 marks an entry gone since
 * readdir.
 */
#define _GNU_SOURCE
#include "moat.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FIELDS 5
/* Entries a thread takes at a time; past two batches a second thread helps. */
#define BATCH 256
/* "dev-ino" in hex, NUL included. */
#define UNIQUE_MAX 34

typedef struct {
  char *dir;
  char *prefix;
  char *suffix;
  size_t limit;
  int dfd;
  int error;
  /* Every name NUL-terminated in one arena; `offsets` index it, sorted by name. */
  char *arena;
  size_t arena_len, arena_cap;
  size_t *offsets;
  size_t count, cap;
  char *joined;
  size_t joined_len;
  double *nums;
  /* UNIQUE_MAX bytes per entry. */
  char *uniques;
  _Atomic size_t next;
  napi_threadsafe_function done;
} list_t;

static void list_free(list_t *l) {
  free(l->dir);
  free(l->prefix);
  free(l->suffix);
  free(l->arena);
  free(l->offsets);
  free(l->joined);
  free(l->nums);
  free(l->uniques);
  free(l);
}

static int hidden(const list_t *l, const char *name, size_t len) {
  size_t p = strlen(l->prefix), s = strlen(l->suffix);
  if (p == 0 && s == 0) return 0;
  return len >= p + s && memcmp(name, l->prefix, p) == 0 && memcmp(name + len - s, l->suffix, s) == 0;
}

static int add_name(list_t *l, const char *name) {
  size_t len = strlen(name);
  if (hidden(l, name, len)) return 0;
  if (l->arena_len + len + 1 > l->arena_cap) {
    size_t cap = l->arena_cap ? l->arena_cap * 2 : 64 * 1024;
    while (cap < l->arena_len + len + 1) cap *= 2;
    char *grown = realloc(l->arena, cap);
    if (grown == NULL) return ENOMEM;
    l->arena = grown;
    l->arena_cap = cap;
  }
  if (l->count == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 1024;
    size_t *grown = realloc(l->offsets, cap * sizeof *grown);
    if (grown == NULL) return ENOMEM;
    l->offsets = grown;
    l->cap = cap;
  }
  l->offsets[l->count++] = l->arena_len;
  memcpy(l->arena + l->arena_len, name, len + 1);
  l->arena_len += len + 1;
  return 0;
}

static int by_name(const void *a, const void *b, void *arena) {
  return strcmp((const char *)arena + *(const size_t *)a, (const char *)arena + *(const size_t *)b);
}

static int read_names(list_t *l) {
  int fd = fcntl(l->dfd, F_DUPFD_CLOEXEC, 0);
  if (fd < 0) return errno;
  DIR *d = fdopendir(fd);
  if (d == NULL) {
    int error = errno;
    close(fd);
    return error;
  }
  int error = 0;
  struct dirent *e;
  errno = 0;
  while (l->count < l->limit && (e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    if ((error = add_name(l, e->d_name)) != 0) break;
    errno = 0;
  }
  if (error == 0 && errno != 0 && l->count < l->limit) error = errno;
  closedir(d);
  return error;
}

static void *stat_batches(void *arg) {
  list_t *l = arg;
  for (;;) {
    size_t from = atomic_fetch_add(&l->next, BATCH);
    if (from >= l->count) return NULL;
    size_t to = from + BATCH < l->count ? from + BATCH : l->count;
    for (size_t i = from; i < to; i++) {
      double *n = l->nums + i * FIELDS;
      struct stat st;
      if (fstatat(l->dfd, l->arena + l->offsets[i], &st, AT_SYMLINK_NOFOLLOW) != 0) {
        n[0] = -1;
        continue;
      }
      n[0] = S_ISREG(st.st_mode) ? 0 : S_ISDIR(st.st_mode) ? 1 : S_ISLNK(st.st_mode) ? 2 : 3;
      n[1] = (double)st.st_size;
      /* Whole milliseconds truncated toward zero, as Node's lstat and Date have them (before 1970 too). */
      long long ms = (long long)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
      if (ms < 0 && st.st_mtim.tv_nsec % 1000000 != 0) ms += 1;
      n[2] = (double)ms;
      n[3] = (double)st.st_mode;
      n[4] = (double)st.st_nlink;
      snprintf(l->uniques + i * UNIQUE_MAX, UNIQUE_MAX, "%llx-%llx", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
    }
  }
}

static void *run(void *arg) {
  list_t *l = arg;
  l->dfd = open(l->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (l->dfd < 0) l->error = errno;
  if (l->error == 0) l->error = read_names(l);
  if (l->error == 0 && l->count > 1) qsort_r(l->offsets, l->count, sizeof *l->offsets, by_name, l->arena);
  if (l->error == 0) {
    /* Zeroed: an entry gone since readdir carries only its kind (-1), no stale memory. */
    l->nums = calloc((l->count ? l->count : 1) * FIELDS, sizeof *l->nums);
    l->uniques = calloc(l->count ? l->count : 1, UNIQUE_MAX);
    l->joined = malloc(l->arena_len + l->count * UNIQUE_MAX + 1);
    if (l->nums == NULL || l->uniques == NULL || l->joined == NULL) l->error = ENOMEM;
  }
  if (l->error == 0) {
    pthread_t helper;
    int helped = l->count > 2 * BATCH && pthread_create(&helper, NULL, stat_batches, l) == 0;
    stat_batches(l);
    if (helped) pthread_join(helper, NULL);
    for (size_t i = 0; i < l->count; i++) {
      const char *name = l->arena + l->offsets[i];
      size_t len = strlen(name);
      memcpy(l->joined + l->joined_len, name, len + 1);
      l->joined_len += len + 1;
      const char *unique = l->uniques + i * UNIQUE_MAX;
      len = strlen(unique);
      memcpy(l->joined + l->joined_len, unique, len);
      l->joined_len += len;
      if (i + 1 < l->count) l->joined[l->joined_len++] = '\0';
    }
  }
  if (l->dfd >= 0) close(l->dfd);
  /* The report may free l before the call below returns: only the local copy is used after it. */
  napi_threadsafe_function done = l->done;
  /* Closing (the environment is shutting down): no report will run to free l. */
  if (napi_call_threadsafe_function(done, NULL, napi_tsfn_blocking) != napi_ok) list_free(l);
  napi_release_threadsafe_function(done, napi_tsfn_release);
  return NULL;
}

static void free_data(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

/* On the JavaScript thread: callback(errno, namesAndUniques, nums); the buffers change owner. */
static void report(napi_env env, napi_value callback, void *context, void *data) {
  (void)data;
  list_t *l = context;
  if (env != NULL && callback != NULL) {
    napi_value argv[3];
    napi_create_int32(env, l->error, &argv[0]);
    napi_get_undefined(env, &argv[1]);
    argv[2] = argv[1];
    if (l->error == 0 &&
        napi_create_external_buffer(env, l->joined_len, l->joined, free_data, NULL, &argv[1]) == napi_ok) {
      l->joined = NULL;
      if (napi_create_external_arraybuffer(env, l->nums, l->count * FIELDS * sizeof *l->nums, free_data, NULL, &argv[2]) == napi_ok)
        l->nums = NULL;
    }
    call_back(env, callback, 3, argv);
  }
  list_free(l);
}

static char *string_arg(napi_env env, napi_value value) {
  size_t len;
  if (napi_get_value_string_utf8(env, value, NULL, 0, &len) != napi_ok) return NULL;
  char *s = malloc(len + 1);
  if (s != NULL) napi_get_value_string_utf8(env, value, s, len + 1, &len);
  /* A NUL inside would make open() see only the part before it: refused. */
  if (s != NULL && strlen(s) != len) {
    free(s);
    return NULL;
  }
  return s;
}

/* list(dir, limit, hiddenPrefix, hiddenSuffix, callback) */
static napi_value list(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  int64_t limit;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 5 ||
      napi_get_value_int64(env, argv[1], &limit) != napi_ok || limit < 0) {
    napi_throw_type_error(env, NULL, "list(dir, limit, hiddenPrefix, hiddenSuffix, callback)");
    return NULL;
  }
  list_t *l = calloc(1, sizeof *l);
  if (l == NULL) return throw_errno(env, "calloc", ENOMEM);
  l->dfd = -1;
  l->limit = (size_t)limit;
  l->dir = string_arg(env, argv[0]);
  l->prefix = string_arg(env, argv[2]);
  l->suffix = string_arg(env, argv[3]);
  if (l->dir == NULL || l->prefix == NULL || l->suffix == NULL) {
    list_free(l);
    napi_throw_type_error(env, NULL, "list: dir, hiddenPrefix and hiddenSuffix must be strings without NUL");
    return NULL;
  }
  napi_value name;
  napi_create_string_utf8(env, "moat-list", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, argv[4], NULL, name, 0, 1, NULL, NULL, l, report, &l->done) != napi_ok) {
    list_free(l);
    napi_throw_error(env, NULL, "list: could not create the completion callback");
    return NULL;
  }
  pthread_attr_t attr;
  pthread_t thread;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  int failed = pthread_create(&thread, &attr, run, l);
  pthread_attr_destroy(&attr);
  if (failed) {
    napi_release_threadsafe_function(l->done, napi_tsfn_abort);
    list_free(l);
    return throw_errno(env, "pthread_create", failed);
  }
  return NULL;
}

void register_list(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"list", NULL, list, NULL, NULL, NULL, napi_default_method, NULL},
  };
  napi_define_properties(env, exports, 1, props);
}
