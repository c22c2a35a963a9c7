/*
 * Moat's fast paths for plain data connections, each on a thread of its own so
 * the event loop never waits for it: downloads with sendfile(2) from a file to
 * the socket, and uploads read from the socket straight into the file.
 *
 * Node has no socket sendfile; reading a file into a buffer and writing the
 * buffer to the socket copies every byte twice (docs/performance.md). An
 * upload read by Node lands in a buffer on the event loop and is written from
 * the thread pool: two threads and a hand-off per chunk, where one thread
 * reading into a buffer and writing it out moves a third more (stor_1g). The
 * socket stays Node's: its descriptor is duplicated for the thread, so Node
 * may close the socket at any time (ABOR, a stall, the client leaving) without
 * the number being reused under the thread, and cancel() wakes the thread
 * through an eventfd, so it never outlives the transfer by more than one
 * call. The socket stays non-blocking; the thread polls it.
 */
#include "moat.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

/* The largest count one sendfile call accepts on Linux. */
#define MAX_CALL 0x7ffff000L

/* An upload's reads: large enough for few calls, small enough to stay in the cache for the write. */
#define RECEIVE_BUFFER (512 * 1024)

/* The third argument of a receive's callback. */
#define RECEIVED_PAST_LIMIT 1
#define RECEIVED_FILE_ERROR 2
#define RECEIVED_END 4

typedef struct {
  int sock;
  int file;
  int wake;
  /* Receiving: where the next byte goes in the file, -1 to write at its end (O_APPEND). */
  off_t offset;
  /* Sending: bytes left. Receiving: bytes the file may still take, -1 for no limit. */
  int64_t remaining;
  int receiving;
  int flags;
  _Atomic int64_t sent;
  _Atomic int cancelled;
  /* Owners: the thread until it reports, the JavaScript handle until it is collected. */
  _Atomic int refs;
  int error;
  napi_threadsafe_function done;
} job_t;

static void job_unref(job_t *job) {
  if (atomic_fetch_sub(&job->refs, 1) != 1) return;
  if (job->wake >= 0) close(job->wake);
  free(job);
}

/* Waits until `sock` is ready for `events` or cancel() rings; false (with job->error set) on failure. */
static int wait_ready(job_t *job, short events) {
  struct pollfd fds[2] = {{.fd = job->sock, .events = events}, {.fd = job->wake, .events = POLLIN}};
  if (poll(fds, 2, -1) < 0 && errno != EINTR) {
    job->error = errno;
    return 0;
  }
  return 1;
}

/*
 * Writes all of buf[0..n) at job->offset (or the file's end), moving the
 * offset on and counting each write: after a failed one (ENOSPC) the count
 * is still exactly what reached the file.
 */
static int write_all(job_t *job, const char *buf, size_t n) {
  while (n > 0) {
    ssize_t w = job->offset >= 0 ? pwrite(job->file, buf, n, job->offset) : write(job->file, buf, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      job->error = errno;
      job->flags |= RECEIVED_FILE_ERROR;
      return 0;
    }
    buf += w;
    n -= (size_t)w;
    if (job->offset >= 0) job->offset += w;
    atomic_fetch_add(&job->sent, w);
  }
  return 1;
}

/*
 * Socket to file until the client's end (read returns 0), a socket error
 * (ECONNRESET: a reset is never taken for the end), a write error, or a read
 * that would take the file past its limit, which is not written.
 */
static void receive_all(job_t *job) {
  char *buf = malloc(RECEIVE_BUFFER);
  if (buf == NULL) {
    job->error = ENOMEM;
    return;
  }
  while (!atomic_load(&job->cancelled)) {
    ssize_t n = read(job->sock, buf, RECEIVE_BUFFER);
    if (n == 0) {
      job->flags |= RECEIVED_END;
      break;
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) {
        job->error = errno;
        break;
      }
      if (!wait_ready(job, POLLIN)) break;
      continue;
    }
    if (job->remaining >= 0 && n > job->remaining) {
      job->flags |= RECEIVED_PAST_LIMIT;
      break;
    }
    if (!write_all(job, buf, (size_t)n)) break;
    if (job->remaining >= 0) job->remaining -= n;
  }
  free(buf);
}

static void send_all(job_t *job) {
  /*
   * Corked, the kernel sends only full segments until the end: without it each
   * call's tail went out as a short segment of its own (TCP_NODELAY is on for
   * the replies' sake), which cost a fifth of the throughput on loopback
   * (docs/performance.md, retr_1g). ProFTPD corks its sendfile the same way.
   */
  int cork = 1;
  setsockopt(job->sock, IPPROTO_TCP, TCP_CORK, &cork, sizeof cork);
  while (job->remaining > 0 && !atomic_load(&job->cancelled)) {
    size_t count = job->remaining > MAX_CALL ? MAX_CALL : (size_t)job->remaining;
    ssize_t n = sendfile(job->sock, job->file, &job->offset, count);
    if (n > 0) {
      job->remaining -= n;
      atomic_fetch_add(&job->sent, n);
      continue;
    }
    if (n == 0) break; /* the file shrank: end early, as a read would */
    if (errno == EINTR) continue;
    if (errno != EAGAIN) {
      job->error = errno;
      break;
    }
    if (!wait_ready(job, POLLOUT)) break;
  }
  /* Uncorking sends the last partial segment now, not after the kernel's 200 ms. */
  cork = 0;
  setsockopt(job->sock, IPPROTO_TCP, TCP_CORK, &cork, sizeof cork);
}

static void *run(void *arg) {
  job_t *job = arg;
  if (job->receiving) receive_all(job);
  else send_all(job);
  close(job->sock);
  close(job->file);
  /* The report may free job before the call below returns: only the local copy is used after it. */
  napi_threadsafe_function done = job->done;
  /* Closing (the environment is shutting down): no report will run to drop this thread's reference. */
  if (napi_call_threadsafe_function(done, NULL, napi_tsfn_blocking) != napi_ok) job_unref(job);
  napi_release_threadsafe_function(done, napi_tsfn_release);
  return NULL;
}

/* On the JavaScript thread, once the thread has stopped: callback(errno, bytesMoved, flags). */
static void report(napi_env env, napi_value callback, void *context, void *data) {
  (void)data;
  job_t *job = context;
  if (env != NULL && callback != NULL) {
    napi_value argv[3];
    napi_create_int32(env, job->error, &argv[0]);
    napi_create_int64(env, atomic_load(&job->sent), &argv[1]);
    napi_create_int32(env, job->flags, &argv[2]);
    call_back(env, callback, 3, argv);
  }
  job_unref(job);
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  job_unref(data);
}

static job_t *unwrap(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want) {
    napi_throw_type_error(env, NULL, "wrong number of arguments");
    return NULL;
  }
  void *job = NULL;
  if (napi_get_value_external(env, argv[0], &job) != napi_ok) {
    napi_throw_type_error(env, NULL, "expected a transfer handle");
    return NULL;
  }
  return job;
}

/*
 * The shared argument list (socketFd, fileFd, offset, count, callback): false,
 * having thrown, when it is not one; `min` is the least offset and count taken.
 */
static int job_args(napi_env env, napi_callback_info info, const char *usage, int64_t min, napi_value *argv, int32_t *sock,
                    int32_t *file, int64_t *offset, int64_t *count) {
  size_t argc = 5;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 5 || napi_get_value_int32(env, argv[0], sock) != napi_ok ||
      napi_get_value_int32(env, argv[1], file) != napi_ok || napi_get_value_int64(env, argv[2], offset) != napi_ok ||
      napi_get_value_int64(env, argv[3], count) != napi_ok || *sock < 0 || *file < 0 || *offset < min || *count < min) {
    napi_throw_type_error(env, NULL, usage);
    return 0;
  }
  return 1;
}

static napi_value launch(napi_env env, napi_value callback, int receiving, int32_t sock, int32_t file, int64_t offset, int64_t count) {
  job_t *job = calloc(1, sizeof *job);
  if (job == NULL) return throw_errno(env, "calloc", errno);
  job->sock = job->file = job->wake = -1;
  job->offset = offset;
  job->remaining = count;
  job->receiving = receiving;
  atomic_store(&job->refs, 2);
  job->sock = fcntl(sock, F_DUPFD_CLOEXEC, 0);
  job->file = job->sock < 0 ? -1 : fcntl(file, F_DUPFD_CLOEXEC, 0);
  job->wake = job->file < 0 ? -1 : eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (job->wake < 0) {
    int saved = errno;
    if (job->sock >= 0) close(job->sock);
    if (job->file >= 0) close(job->file);
    free(job);
    return throw_errno(env, "dup/eventfd", saved);
  }
  napi_value name, handle = NULL;
  napi_create_string_utf8(env, receiving ? "moat-receive" : "moat-sendfile", NAPI_AUTO_LENGTH, &name);
  pthread_attr_t attr;
  pthread_t thread;
  int thread_error = 0;
  int failed = napi_create_threadsafe_function(env, callback, NULL, name, 0, 1, NULL, NULL, job, report, &job->done) != napi_ok;
  if (!failed) failed = napi_create_external(env, job, finalize, NULL, &handle) != napi_ok;
  if (!failed) {
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    thread_error = pthread_create(&thread, &attr, run, job);
    failed = thread_error != 0;
    pthread_attr_destroy(&attr);
  }
  if (failed) {
    /* No thread: drop its reference by hand; the external, if made, frees the job when collected. */
    close(job->sock);
    close(job->file);
    if (job->done != NULL) napi_release_threadsafe_function(job->done, napi_tsfn_abort);
    job_unref(job);
    if (handle == NULL) job_unref(job);
    if (thread_error != 0) return throw_errno(env, "pthread_create", thread_error);
    napi_throw_error(env, NULL, "could not start the transfer thread");
    return NULL;
  }
  return handle;
}

/* start(socketFd, fileFd, offset, length, callback) -> handle: sendfile `length` bytes from `offset`. */
static napi_value start(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  int32_t sock, file;
  int64_t offset, length;
  if (!job_args(env, info, "start(socketFd, fileFd, offset, length, callback)", 0, argv, &sock, &file, &offset, &length)) return NULL;
  return launch(env, argv[4], 0, sock, file, offset, length);
}

/*
 * receive(socketFd, fileFd, offset, limit, callback) -> handle: the socket's
 * bytes into the file from `offset` (-1: at its end, for O_APPEND), at most
 * `limit` of them (-1: no limit), until the client's end.
 */
static napi_value receive(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  int32_t sock, file;
  int64_t offset, limit;
  if (!job_args(env, info, "receive(socketFd, fileFd, offset, limit, callback)", -1, argv, &sock, &file, &offset, &limit)) return NULL;
  return launch(env, argv[4], 1, sock, file, offset, limit);
}

/* sent(handle) -> bytes moved so far (sent, or received and written) */
static napi_value sent(napi_env env, napi_callback_info info) {
  napi_value argv[1], result;
  job_t *job = unwrap(env, info, 1, argv);
  if (job == NULL) return NULL;
  napi_create_int64(env, atomic_load(&job->sent), &result);
  return result;
}

/* cancel(handle): the thread stops before its next call. */
static napi_value cancel(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  job_t *job = unwrap(env, info, 1, argv);
  if (job == NULL) return NULL;
  atomic_store(&job->cancelled, 1);
  uint64_t one = 1;
  ssize_t ignored = write(job->wake, &one, sizeof one);
  (void)ignored;
  return NULL;
}

void register_sendfile(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"start", NULL, start, NULL, NULL, NULL, napi_default_method, NULL},
      {"receive", NULL, receive, NULL, NULL, NULL, napi_default_method, NULL},
      {"sent", NULL, sent, NULL, NULL, NULL, napi_default_method, NULL},
      {"cancel", NULL, cancel, NULL, NULL, NULL, napi_default_method, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
