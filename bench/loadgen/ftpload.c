/*
 * ftpload: a small threaded FTP/FTPS load generator for Moat's side-by-side benchmark.
 *
 * Built by bench/run.ts with:  gcc -O2 -pthread ftpload.c -lssl -lcrypto  (or -DNO_TLS without OpenSSL)
 *
 *   ftpload retr  -H host -p port -u user -w pass -f path [-E] [-T]      one download, MB/s
 *   ftpload stor  ... -f remote -l localfile [-E] [-T]                  one upload from a local file
 *   ftpload small ... -f path -c clients -d seconds [-E] [-z size]       loop PASV+RETR per client
 *   ftpload login ... -c clients -d seconds                              loop connect+USER+PASS+QUIT
 *   ftpload idle  ... -n conns [-j threads]                              hold logged-in connections
 *   ftpload list  ... -f dir [-r reps]                                   time LIST and MLSD
 *   ftpload exec  -- cmd args...                                         run a command, report its CPU
 *
 * Common: -b srcip (bind client sockets to this loopback address), -t timeout seconds.
 * Client sockets take their ephemeral ports from 20000-39999 (IP_LOCAL_PORT_RANGE), which the kernel
 * clamps to the global ip_local_port_range: 32768-39999 by default, ~7,200 connections per source and
 * destination. idle -s N spreads its connections over N source addresses (the -b one, default
 * 127.0.0.1, and the N-1 after it), so 10,000 connections fit.
 * Every mode prints one JSON line on stdout (idle prints a "ready" line first and then waits for a
 * line on stdin before sending NOOP on every connection). client_cpu_s is getrusage of this process
 * (all threads), or of the children for exec.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifndef NO_TLS
#include <openssl/err.h>
#include <openssl/ssl.h>
typedef SSL ssl_t;
typedef SSL_SESSION sess_t;
#else
typedef void ssl_t;
typedef void sess_t;
#endif

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#ifndef IP_LOCAL_PORT_RANGE
#define IP_LOCAL_PORT_RANGE 51
#endif

#define DBUF (256 * 1024)
/* Our own ephemeral ports, kept out of 50000-59999 where the servers bind their passive ports
 * (and out of 40000-41999 used by the project's tests). Linux >= 6.3; ignored elsewhere. */
#define PORT_LO 20000
#define PORT_HI 39999

typedef struct {
  int fd;
  ssl_t *ssl;
  sess_t *sess; /* TLS session of the control connection, offered on data connections */
  size_t off, len;
  char last[512]; /* last line of the last reply */
  char buf[4096];
} conn_t;

static struct {
  const char *host, *user, *pass, *src, *path, *local;
  int port, tls, epsv, clients, conns, threads, reps, timeout, sources;
  double duration;
  long long expect;
} opt = {.host = "127.0.0.1", .user = "bench", .pass = "bench", .port = 21, .clients = 10, .conns = 100, .threads = 8,
         .reps = 5, .timeout = 30, .sources = 1, .duration = 5.0, .expect = -1};

#ifndef NO_TLS
static SSL_CTX *tls_ctx;
#endif

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_of(int who) {
  struct rusage ru;
  getrusage(who, &ru);
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* ---- error histogram -------------------------------------------------------------------- */
#define NERR 32
static struct { char key[48]; long n; } errs[NERR];
/* Why this thread's last tcp_connect failed, for the error kind. */
static __thread int connect_errno;
/* The source address of this thread's next connection when not opt.src (idle -s). */
static __thread const char *connect_src;
static pthread_mutex_t err_mu = PTHREAD_MUTEX_INITIALIZER;
static long err_total;

static void err_add(const char *key) {
  pthread_mutex_lock(&err_mu);
  err_total++;
  for (int i = 0; i < NERR; i++) {
    if (errs[i].key[0] == 0) snprintf(errs[i].key, sizeof errs[i].key, "%s", key);
    if (strcmp(errs[i].key, key) == 0) { errs[i].n++; break; }
  }
  pthread_mutex_unlock(&err_mu);
}
static void err_code(const char *what, int code) {
  char k[48];
  if (code == -1) snprintf(k, sizeof k, "%s:eof", what);
  else if (code == -2) snprintf(k, sizeof k, "%s:garbled", what);
  else if (code == -3) snprintf(k, sizeof k, "%s:connect:%s", what, strerrorname_np(connect_errno) ?: "?");
  else if (code == -4) snprintf(k, sizeof k, "%s:tls", what);
  else snprintf(k, sizeof k, "%s:%d", what, code);
  err_add(k);
}
static void print_errs(void) {
  printf("\"errors\":%ld,\"error_kinds\":{", err_total);
  for (int i = 0, first = 1; i < NERR && errs[i].key[0]; i++, first = 0)
    printf("%s\"%s\":%ld", first ? "" : ",", errs[i].key, errs[i].n);
  printf("}");
}

/* ---- sockets and TLS -------------------------------------------------------------------- */
static int tcp_connect(const char *host, int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) { connect_errno = errno; return -1; }
  int one = 1;
  struct timeval tv = {opt.timeout, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  uint32_t range = ((uint32_t)PORT_HI << 16) | PORT_LO;
  setsockopt(fd, IPPROTO_IP, IP_LOCAL_PORT_RANGE, &range, sizeof range);
  const char *src = connect_src ? connect_src : opt.src;
  if (src) {
    struct sockaddr_in sa = {.sin_family = AF_INET};
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    inet_pton(AF_INET, src, &sa.sin_addr);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) { connect_errno = errno; close(fd); return -1; }
  }
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
  if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) { close(fd); return -1; }
  while (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    if (errno == EINTR) continue;
    connect_errno = errno;
    close(fd);
    return -1;
  }
  return fd;
}

static ssize_t io_read(conn_t *c, void *b, size_t n) {
#ifndef NO_TLS
  if (c->ssl) {
    size_t got = 0;
    int r = SSL_read_ex(c->ssl, b, n, &got);
    if (r > 0) return (ssize_t)got;
    int e = SSL_get_error(c->ssl, r);
    return e == SSL_ERROR_ZERO_RETURN ? 0 : -1;
  }
#endif
  for (;;) {
    ssize_t r = recv(c->fd, b, n, 0);
    if (r < 0 && errno == EINTR) continue;
    return r;
  }
}

static int io_write(conn_t *c, const void *b, size_t n) {
  const char *p = b;
  while (n > 0) {
#ifndef NO_TLS
    if (c->ssl) {
      size_t w = 0;
      if (SSL_write_ex(c->ssl, p, n, &w) <= 0) return -1;
      p += w, n -= w;
      continue;
    }
#endif
    ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w, n -= (size_t)w;
  }
  return 0;
}

static int tls_start(conn_t *c, sess_t *reuse) {
#ifndef NO_TLS
  c->ssl = SSL_new(tls_ctx);
  SSL_set_fd(c->ssl, c->fd);
  if (reuse) SSL_set_session(c->ssl, reuse);
  if (SSL_connect(c->ssl) != 1) { SSL_free(c->ssl); c->ssl = NULL; return -1; }
  return 0;
#else
  (void)c, (void)reuse;
  return -1;
#endif
}

static void conn_close(conn_t *c) {
#ifndef NO_TLS
  if (c->ssl) { SSL_shutdown(c->ssl); SSL_free(c->ssl); c->ssl = NULL; }
  if (c->sess) { SSL_SESSION_free(c->sess); c->sess = NULL; }
#endif
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
  c->off = c->len = 0;
}

/* ---- control replies -------------------------------------------------------------------- */
static int read_line(conn_t *c, char *line, size_t cap) {
  for (;;) {
    char *s = c->buf + c->off, *nl = memchr(s, '\n', c->len - c->off);
    if (nl) {
      size_t n = (size_t)(nl - s), k = n;
      if (k > 0 && s[k - 1] == '\r') k--;
      if (k >= cap) k = cap - 1;
      memcpy(line, s, k);
      line[k] = 0;
      c->off += n + 1;
      return (int)k;
    }
    if (c->off > 0) { memmove(c->buf, c->buf + c->off, c->len - c->off); c->len -= c->off; c->off = 0; }
    if (c->len == sizeof c->buf) c->len = 0; /* an absurdly long line: drop it */
    ssize_t r = io_read(c, c->buf + c->len, sizeof c->buf - c->len);
    if (r <= 0) return -1;
    c->len += (size_t)r;
  }
}

/* Returns the reply code, -1 on EOF/timeout, -2 on a garbled reply. */
static int reply(conn_t *c) {
  char line[512];
  if (read_line(c, line, sizeof line) < 0) return -1;
  if (strlen(line) < 3 || !isdigit((unsigned char)line[0]) || !isdigit((unsigned char)line[1]) || !isdigit((unsigned char)line[2])) return -2;
  int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
  if (line[3] == '-') {
    for (;;) {
      if (read_line(c, line, sizeof line) < 0) return -1;
      if (strlen(line) >= 4 && atoi(line) == code && line[3] == ' ' && isdigit((unsigned char)line[0])) break;
    }
  }
  snprintf(c->last, sizeof c->last, "%s", line);
  return code;
}

static int cmd(conn_t *c, const char *fmt, ...) {
  char b[1100];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(b, sizeof b - 2, fmt, ap);
  va_end(ap);
  b[n++] = '\r', b[n++] = '\n';
  if (io_write(c, b, (size_t)n) < 0) return -1;
  return reply(c);
}

/* Connect and log in (with AUTH TLS, PBSZ 0 and PROT P when tls). Returns 0 or a negative/FTP code. */
static int login(conn_t *c, int tls) {
  memset(c, 0, offsetof(conn_t, buf));
  c->fd = tcp_connect(opt.host, opt.port);
  if (c->fd < 0) return -3;
  int code = reply(c);
  if (code != 220) goto fail;
  if (tls) {
    if ((code = cmd(c, "AUTH TLS")) != 234) goto fail;
    if (tls_start(c, NULL) < 0) { code = -4; goto fail; }
  }
  code = cmd(c, "USER %s", opt.user);
  if (code == 331) code = cmd(c, "PASS %s", opt.pass);
  if (code != 230) goto fail;
  if (tls) {
    if ((code = cmd(c, "PBSZ 0")) != 200) goto fail;
    if ((code = cmd(c, "PROT P")) != 200) goto fail;
#ifndef NO_TLS
    c->sess = SSL_get1_session(c->ssl);
#endif
  }
  return 0;
fail:
  conn_close(c);
  return code == 0 ? -2 : code;
}

/* EPSV or PASV, then connect the data socket. Returns 0, else -1 (c->last says why) with *code set. */
static int open_data(conn_t *c, int epsv, conn_t *d, int *code) {
  *code = cmd(c, epsv ? "EPSV" : "PASV");
  if (*code != (epsv ? 229 : 227)) return -1;
  char host[64];
  int port = -1;
  snprintf(host, sizeof host, "%s", opt.host);
  if (epsv) {
    char *p = strstr(c->last, "|||");
    if (p) port = atoi(p + 3);
  } else {
    int h[4], p1, p2;
    for (char *p = c->last + 4; *p; p++) {
      if (isdigit((unsigned char)*p) && sscanf(p, "%d,%d,%d,%d,%d,%d", &h[0], &h[1], &h[2], &h[3], &p1, &p2) == 6) {
        port = p1 * 256 + p2;
        if (h[0] || h[1] || h[2] || h[3]) snprintf(host, sizeof host, "%d.%d.%d.%d", h[0], h[1], h[2], h[3]);
        break;
      }
    }
  }
  if (port <= 0) { *code = -2; return -1; }
  memset(d, 0, offsetof(conn_t, buf));
  d->fd = tcp_connect(host, port);
  if (d->fd < 0) { *code = -3; return -1; }
  return 0;
}

typedef struct { uint64_t bytes, entries; double t_first; } drain_t;

/* Read a data connection to its end. With count, count listing entries (not "total", ".", ".."). */
static int drain(conn_t *d, drain_t *out, int count) {
  static __thread char *dbuf;
  if (!dbuf) dbuf = malloc(DBUF);
  char head[300];
  size_t hl = 0;
  out->bytes = out->entries = 0;
  out->t_first = 0;
  for (;;) {
    ssize_t r = io_read(d, dbuf, DBUF);
    if (r < 0) return -1;
    if (r == 0) break;
    if (!out->bytes) out->t_first = now();
    out->bytes += (uint64_t)r;
    if (!count) continue;
    for (ssize_t i = 0; i < r; i++) {
      char ch = dbuf[i];
      if (ch != '\n') { if (hl < sizeof head - 1) head[hl++] = ch; continue; }
      head[hl] = 0;
      if (hl > 1 && strncmp(head, "total ", 6) != 0 && !strcasestr(head, "type=cdir") && !strcasestr(head, "type=pdir")) out->entries++;
      hl = 0;
    }
  }
  return 0;
}

static int fail_json(const char *mode, const char *what, conn_t *c, int code) {
  char safe[256];
  size_t k = 0;
  for (const char *p = c ? c->last : ""; *p && k < sizeof safe - 1; p++) safe[k++] = (*p == '"' || *p == '\\' || (unsigned char)*p < 32) ? '\'' : *p;
  safe[k] = 0;
  printf("{\"mode\":\"%s\",\"ok\":false,\"error\":\"%s (code %d): %s\",\"client_cpu_s\":%.3f}\n", mode, what, code, safe, cpu_of(RUSAGE_SELF));
  return 1;
}

/* ---- single transfers ------------------------------------------------------------------- */
static int mode_retr(void) {
  conn_t c, d;
  int code = login(&c, opt.tls);
  if (code) return fail_json("retr", "login", &c, code);
  if ((code = cmd(&c, "TYPE I")) != 200) return fail_json("retr", "TYPE I", &c, code);
  if (open_data(&c, opt.epsv, &d, &code) < 0) return fail_json("retr", opt.epsv ? "EPSV" : "PASV", &c, code);
  double t0 = now();
  char b[1100];
  int n = snprintf(b, sizeof b, "RETR %s\r\n", opt.path);
  if (io_write(&c, b, (size_t)n) < 0) return fail_json("retr", "RETR", &c, -1);
  if (opt.tls && tls_start(&d, c.sess) < 0) return fail_json("retr", "data TLS", &c, -4);
  code = reply(&c);
  if (code != 150 && code != 125) return fail_json("retr", "RETR", &c, code);
  drain_t dr;
  if (drain(&d, &dr, 0) < 0) return fail_json("retr", "data read", &c, -1);
  double t1 = now();
  /* Close our side first (TLS close_notify): vsftpd and ProFTPD wait for it before sending 226. */
  char tlsinfo[200] = "";
#ifndef NO_TLS
  if (d.ssl)
    snprintf(tlsinfo, sizeof tlsinfo, ",\"tls_version\":\"%s\",\"cipher\":\"%s\",\"tls_reused\":%s", SSL_get_version(d.ssl), SSL_get_cipher_name(d.ssl),
             SSL_session_reused(d.ssl) ? "true" : "false");
#endif
  conn_close(&d);
  code = reply(&c);
  double t2 = now();
  if (code != 226 && code != 250) return fail_json("retr", "after RETR", &c, code);
  printf("{\"mode\":\"retr\",\"ok\":true,\"bytes\":%llu,\"secs\":%.6f,\"secs_to_226\":%.6f,\"first_byte_ms\":%.3f,\"mbps\":%.2f",
         (unsigned long long)dr.bytes, t1 - t0, t2 - t0, dr.t_first ? (dr.t_first - t0) * 1e3 : -1.0, dr.bytes / (t1 - t0) / 1e6);
  printf("%s,\"client_cpu_s\":%.3f}\n", tlsinfo, cpu_of(RUSAGE_SELF));
  cmd(&c, "QUIT");
  conn_close(&c);
  return 0;
}

static int mode_stor(void) {
  int lf = open(opt.local, O_RDONLY);
  if (lf < 0) { perror(opt.local); return 2; }
  struct stat st;
  fstat(lf, &st);
  size_t size = (size_t)st.st_size;
  const char *src = size ? mmap(NULL, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, lf, 0) : "";
  if (src == MAP_FAILED) { perror("mmap"); return 2; }
  conn_t c, d;
  int code = login(&c, opt.tls);
  if (code) return fail_json("stor", "login", &c, code);
  if ((code = cmd(&c, "TYPE I")) != 200) return fail_json("stor", "TYPE I", &c, code);
  if (open_data(&c, opt.epsv, &d, &code) < 0) return fail_json("stor", opt.epsv ? "EPSV" : "PASV", &c, code);
  double t0 = now();
  char b[1100];
  int n = snprintf(b, sizeof b, "STOR %s\r\n", opt.path);
  if (io_write(&c, b, (size_t)n) < 0) return fail_json("stor", "STOR", &c, -1);
  if (opt.tls && tls_start(&d, c.sess) < 0) return fail_json("stor", "data TLS", &c, -4);
  code = reply(&c);
  if (code != 150 && code != 125) return fail_json("stor", "STOR", &c, code);
  for (size_t off = 0; off < size;) {
    size_t k = size - off < (1u << 20) ? size - off : (1u << 20);
    if (io_write(&d, src + off, k) < 0) return fail_json("stor", "data write", &c, -1);
    off += k;
  }
  double t1 = now();
  conn_close(&d);
  code = reply(&c);
  double t2 = now();
  if (code != 226 && code != 250) return fail_json("stor", "after STOR", &c, code);
  printf("{\"mode\":\"stor\",\"ok\":true,\"bytes\":%zu,\"secs\":%.6f,\"secs_written\":%.6f,\"mbps\":%.2f,\"client_cpu_s\":%.3f}\n", size, t2 - t0,
         t1 - t0, size / (t2 - t0) / 1e6, cpu_of(RUSAGE_SELF));
  cmd(&c, "QUIT");
  conn_close(&c);
  return 0;
}

/* ---- many clients ----------------------------------------------------------------------- */
static pthread_barrier_t start_bar;
static double t_start, t_deadline;

typedef struct {
  int idx;
  long done, reconnects;
  double t_end;
  double *lat;
  size_t nlat, cap;
  int ready;
} worker_t;

static void lat_push(worker_t *w, double v) {
  if (w->nlat == w->cap) { w->cap = w->cap ? w->cap * 2 : 1024; w->lat = realloc(w->lat, w->cap * sizeof(double)); }
  w->lat[w->nlat++] = v;
}

static void *small_worker(void *arg) {
  worker_t *w = arg;
  conn_t *c = calloc(1, sizeof *c), *d = calloc(1, sizeof *d);
  /* Log in once, ramped (5 ms apart) so that 200 simultaneous SYNs do not overflow a small listen
   * backlog (vsftpd's is 32); retried a few times before the timed phase starts. */
  usleep((useconds_t)w->idx * 5000);
  int code = -1, alive = 0;
  for (int attempt = 0; attempt < 3 && !alive; attempt++) {
    code = login(c, 0);
    if (code == 0 && (code = cmd(c, "TYPE I")) != 200) conn_close(c);
    alive = code == 0 || code == 200;
  }
  if (!alive) err_code("first-login", code);
  w->ready = alive;
  pthread_barrier_wait(&start_bar); /* all logged in */
  pthread_barrier_wait(&start_bar); /* t_deadline is set */
  while (now() < t_deadline) {
    if (!alive) {
      w->reconnects++;
      if ((code = login(c, 0)) != 0 || (code = cmd(c, "TYPE I")) != 200) { err_code("login", code); conn_close(c); usleep(10000); continue; }
      alive = 1;
    }
    double t0 = now();
    if (open_data(c, opt.epsv, d, &code) < 0) {
      err_code(opt.epsv ? "EPSV" : "PASV", code);
      if (code == -1 || code == -2) { conn_close(c); alive = 0; }
      continue;
    }
    if (io_write(c, "RETR ", 5) < 0 || io_write(c, opt.path, strlen(opt.path)) < 0 || io_write(c, "\r\n", 2) < 0) code = -1;
    else code = reply(c);
    if (code != 150 && code != 125) {
      err_code("RETR", code);
      conn_close(d);
      if (code < 0) { conn_close(c); alive = 0; }
      continue;
    }
    drain_t dr;
    int dok = drain(d, &dr, 0);
    conn_close(d);
    code = reply(c);
    if (code != 226 && code != 250) { err_code("RETR-end", code); if (code < 0) { conn_close(c); alive = 0; } continue; }
    if (dok < 0 || (opt.expect >= 0 && dr.bytes != (uint64_t)opt.expect)) { err_add("RETR:short"); continue; }
    w->done++;
    lat_push(w, now() - t0);
  }
  w->t_end = now();
  if (alive) { cmd(c, "QUIT"); conn_close(c); }
  free(c), free(d);
  return NULL;
}

static void *login_worker(void *arg) {
  worker_t *w = arg;
  conn_t *c = calloc(1, sizeof *c);
  w->ready = 1;
  pthread_barrier_wait(&start_bar);
  pthread_barrier_wait(&start_bar);
  while (now() < t_deadline) {
    double t0 = now();
    int code = login(c, 0);
    if (code) { err_code("login", code); continue; }
    code = cmd(c, "QUIT");
    conn_close(c);
    if (code != 221) { err_code("QUIT", code); continue; }
    w->done++;
    lat_push(w, now() - t0);
  }
  w->t_end = now();
  free(c);
  return NULL;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static int run_workers(const char *mode, void *(*fn)(void *), const char *extra) {
  int n = opt.clients;
  pthread_t *th = calloc((size_t)n, sizeof *th);
  worker_t *w = calloc((size_t)n, sizeof *w);
  pthread_attr_t at;
  pthread_attr_init(&at);
  pthread_attr_setstacksize(&at, 256 * 1024);
  pthread_barrier_init(&start_bar, NULL, (unsigned)n + 1);
  for (int i = 0; i < n; i++) {
    w[i].idx = i;
    pthread_create(&th[i], &at, fn, &w[i]);
  }
  pthread_barrier_wait(&start_bar);
  t_start = now();
  t_deadline = t_start + opt.duration;
  pthread_barrier_wait(&start_bar);
  double cpu0 = cpu_of(RUSAGE_SELF);
  long done = 0, reconn = 0, ready = 0;
  double t_end = t_start;
  size_t nlat = 0;
  for (int i = 0; i < n; i++) {
    pthread_join(th[i], NULL);
    done += w[i].done, reconn += w[i].reconnects, ready += w[i].ready, nlat += w[i].nlat;
    if (w[i].t_end > t_end) t_end = w[i].t_end;
  }
  double *all = malloc((nlat + 1) * sizeof(double));
  size_t k = 0;
  for (int i = 0; i < n; i++) { memcpy(all + k, w[i].lat, w[i].nlat * sizeof(double)); k += w[i].nlat; free(w[i].lat); }
  qsort(all, nlat, sizeof(double), cmp_d);
  double el = t_end - t_start;
  printf("{\"mode\":\"%s\",\"ok\":true,\"clients\":%d,\"ready\":%ld,\"done\":%ld,\"secs\":%.3f,\"rate\":%.1f,\"reconnects\":%ld,", mode, n, ready,
         done, el, el > 0 ? done / el : 0.0, reconn);
  printf("\"p50_ms\":%.3f,\"p99_ms\":%.3f,", nlat ? all[nlat / 2] * 1e3 : -1.0, nlat ? all[(size_t)(nlat * 0.99)] * 1e3 : -1.0);
  if (extra) printf("%s", extra);
  print_errs();
  printf(",\"client_cpu_s\":%.3f}\n", cpu_of(RUSAGE_SELF) - cpu0);
  free(all), free(w), free(th);
  return 0;
}

static int mode_small(void) { return run_workers("small", small_worker, NULL); }

static int mode_login(void) {
  /* One cold login first, alone: for a server that caches verified passwords this is the real hash cost. */
  conn_t c;
  double t0 = now();
  int code = login(&c, 0);
  double first = now() - t0;
  if (code) return fail_json("login", "first login", &c, code);
  cmd(&c, "QUIT");
  conn_close(&c);
  char extra[64];
  snprintf(extra, sizeof extra, "\"first_login_ms\":%.3f,", first * 1e3);
  return run_workers("login", login_worker, extra);
}

/* ---- idle connections ------------------------------------------------------------------- */
static conn_t *idle;
static char (*idle_srcs)[INET_ADDRSTRLEN];
static int idle_phase;
static long idle_ok, idle_fail, noop_ok, noop_fail;

static void *idle_worker(void *arg) {
  long k = (long)arg, ok = 0, bad = 0;
  for (int i = (int)k; i < opt.conns; i += opt.threads) {
    conn_t *c = &idle[i];
    if (idle_phase == 0) {
      if (idle_srcs) connect_src = idle_srcs[i % opt.sources];
      int code = login(c, 0);
      if (code) { c->fd = -1; err_code("login", code); bad++; } else ok++;
    } else if (c->fd >= 0) {
      int code = cmd(c, "NOOP");
      if (code == 200) ok++; else { err_code("NOOP", code); bad++; }
    }
  }
  pthread_mutex_lock(&err_mu);
  if (idle_phase == 0) idle_ok += ok, idle_fail += bad; else noop_ok += ok, noop_fail += bad;
  pthread_mutex_unlock(&err_mu);
  return NULL;
}

static void idle_round(void) {
  pthread_t th[256];
  for (long i = 0; i < opt.threads; i++) pthread_create(&th[i], NULL, idle_worker, (void *)i);
  for (int i = 0; i < opt.threads; i++) pthread_join(th[i], NULL);
}

static int mode_idle(void) {
  if (opt.threads > 256) opt.threads = 256;
  if (opt.threads < 1) opt.threads = 1;
  idle = calloc((size_t)opt.conns, sizeof *idle);
  if (opt.sources > 1) {
    struct in_addr base;
    if (inet_pton(AF_INET, opt.src ? opt.src : "127.0.0.1", &base) != 1) return fail_json("idle", "-b", NULL, -2);
    idle_srcs = calloc((size_t)opt.sources, sizeof *idle_srcs);
    for (int i = 0; i < opt.sources; i++) {
      struct in_addr a = {.s_addr = htonl(ntohl(base.s_addr) + (uint32_t)i)};
      inet_ntop(AF_INET, &a, idle_srcs[i], sizeof idle_srcs[i]);
    }
  }
  double t0 = now();
  idle_round();
  printf("{\"phase\":\"ready\",\"ok\":%ld,\"failed\":%ld,\"secs\":%.3f}\n", idle_ok, idle_fail, now() - t0);
  fflush(stdout);
  char line[64];
  if (!fgets(line, sizeof line, stdin)) { /* harness went away: still finish */ }
  idle_phase = 1;
  double t1 = now();
  idle_round();
  double t2 = now();
  printf("{\"mode\":\"idle\",\"ok\":true,\"conns\":%d,\"logged_in\":%ld,\"login_failed\":%ld,\"noop_ok\":%ld,\"noop_failed\":%ld,\"noop_secs\":%.3f,",
         opt.conns, idle_ok, idle_fail, noop_ok, noop_fail, t2 - t1);
  print_errs();
  printf(",\"client_cpu_s\":%.3f}\n", cpu_of(RUSAGE_SELF));
  fflush(stdout);
  for (int i = 0; i < opt.conns; i++) if (idle[i].fd >= 0) close(idle[i].fd);
  return 0;
}

/* ---- listings --------------------------------------------------------------------------- */
static int mode_list(void) {
  conn_t c, d;
  int code = login(&c, 0);
  if (code) return fail_json("list", "login", &c, code);
  if (opt.path && (code = cmd(&c, "CWD %s", opt.path)) != 250) return fail_json("list", "CWD", &c, code);
  printf("{\"mode\":\"list\",\"ok\":true");
  const char *cmds[2] = {"LIST", "MLSD"};
  for (int m = 0; m < 2; m++) {
    double ms[64];
    int reps = opt.reps > 64 ? 64 : opt.reps, got = 0, last = 0;
    uint64_t entries = 0, bytes = 0;
    for (int r = 0; r < reps; r++) {
      if (open_data(&c, 1, &d, &code) < 0) { last = code; break; }
      double t0 = now();
      char b[16];
      int n = snprintf(b, sizeof b, "%s\r\n", cmds[m]);
      io_write(&c, b, (size_t)n);
      code = reply(&c);
      if (code != 150 && code != 125) { last = code; conn_close(&d); break; }
      drain_t dr;
      drain(&d, &dr, 1);
      conn_close(&d);
      code = reply(&c);
      double t1 = now();
      last = code;
      if (code != 226 && code != 250) break;
      ms[got++] = (t1 - t0) * 1e3;
      entries = dr.entries, bytes = dr.bytes;
    }
    printf(",\"%s\":{\"code\":%d,\"entries\":%llu,\"bytes\":%llu,\"ms\":[", cmds[m], last, (unsigned long long)entries, (unsigned long long)bytes);
    for (int i = 0; i < got; i++) printf("%s%.3f", i ? "," : "", ms[i]);
    printf("]}");
    if (last < 0) break; /* control connection lost */
  }
  printf(",\"client_cpu_s\":%.3f}\n", cpu_of(RUSAGE_SELF));
  cmd(&c, "QUIT");
  conn_close(&c);
  return 0;
}

/* ---- exec ------------------------------------------------------------------------------- */
static int mode_exec(char **argv) {
  pid_t p = fork();
  if (p == 0) { execvp(argv[0], argv); perror(argv[0]); _exit(127); }
  int st = 0;
  waitpid(p, &st, 0);
  fflush(stdout);
  printf("\n{\"mode\":\"exec\",\"status\":%d,\"client_cpu_s\":%.3f}\n", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), cpu_of(RUSAGE_CHILDREN));
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) { fprintf(stderr, "usage: ftpload retr|stor|small|login|idle|list|exec [options]\n"); return 2; }
  const char *mode = argv[1];
  if (strcmp(mode, "exec") == 0) return mode_exec(argv + (argc > 2 && strcmp(argv[2], "--") == 0 ? 3 : 2));
  signal(SIGPIPE, SIG_IGN);
  optind = 2;
  int ch;
  while ((ch = getopt(argc, argv, "H:p:u:w:b:f:l:c:d:n:j:r:s:t:z:ET")) != -1) {
    switch (ch) {
      case 'H': opt.host = optarg; break;
      case 'p': opt.port = atoi(optarg); break;
      case 'u': opt.user = optarg; break;
      case 'w': opt.pass = optarg; break;
      case 'b': opt.src = optarg; break;
      case 's': opt.sources = atoi(optarg); break;
      case 'f': opt.path = optarg; break;
      case 'l': opt.local = optarg; break;
      case 'c': opt.clients = atoi(optarg); break;
      case 'd': opt.duration = atof(optarg); break;
      case 'n': opt.conns = atoi(optarg); break;
      case 'j': opt.threads = atoi(optarg); break;
      case 'r': opt.reps = atoi(optarg); break;
      case 't': opt.timeout = atoi(optarg); break;
      case 'z': opt.expect = atoll(optarg); break;
      case 'E': opt.epsv = 1; break;
      case 'T': opt.tls = 1; break;
      default: return 2;
    }
  }
  /* Room for many sockets: as root the hard limit can be raised too. */
  struct rlimit rl = {1 << 18, 1 << 18};
  if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
#ifndef NO_TLS
  tls_ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_NONE, NULL);
  SSL_CTX_set_options(tls_ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
  SSL_CTX_set_session_cache_mode(tls_ctx, SSL_SESS_CACHE_CLIENT);
#else
  if (opt.tls) { fprintf(stderr, "built without TLS\n"); return 3; }
#endif
  if (!strcmp(mode, "retr")) return mode_retr();
  if (!strcmp(mode, "stor")) return mode_stor();
  if (!strcmp(mode, "small")) return mode_small();
  if (!strcmp(mode, "login")) return mode_login();
  if (!strcmp(mode, "idle")) return mode_idle();
  if (!strcmp(mode, "list")) return mode_list();
  fprintf(stderr, "unknown mode %s\n", mode);
  return 2;
}
