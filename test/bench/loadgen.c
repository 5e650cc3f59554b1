/*
 * Bounded HTTP load for `npm run bench` (wasm-bench.ts), run inside the node's network namespace:
 *
 *   loadgen <IPv4> <port> <connections> <requests> <seconds>
 *
 * <connections> threads each send `GET /` on a fresh connection (the service answers Connection: close) and
 * read the answer to its end, until <requests> in all are done or <seconds> have passed, whichever is first.
 * Prints one line: `requests=<ok> errors=<n> seconds=<wall> rps=<ok/wall> p99_ms=<p99 of the ok ones>`.
 * An answer that is not `HTTP/1.1 200` counts as an error. Exit 0 when at least one request succeeded.
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_in target;
static long budget, done_ok, errors;
static double deadline, *latencies;
static atomic_long issued;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int one_request(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  struct timeval tv = {5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int ok = -1;
  if (connect(fd, (struct sockaddr *)&target, sizeof target) == 0) {
    static const char request[] = "GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n";
    if (write(fd, request, sizeof request - 1) == (ssize_t)(sizeof request - 1)) {
      char buf[1024];
      size_t got = 0;
      ssize_t n;
      while ((n = read(fd, buf + got, sizeof buf - 1 - got)) > 0 && got + (size_t)n < sizeof buf - 1) got += (size_t)n;
      buf[got] = '\0';
      if (n >= 0 && strncmp(buf, "HTTP/1.1 200", 12) == 0) ok = 0;
    }
  }
  close(fd);
  return ok;
}

static void *worker(void *arg) {
  (void)arg;
  while (atomic_fetch_add(&issued, 1) < budget && now() < deadline) {
    double start = now();
    int r = one_request();
    double ms = (now() - start) * 1000;
    pthread_mutex_lock(&lock);
    if (r == 0) latencies[done_ok++] = ms;
    else errors++;
    pthread_mutex_unlock(&lock);
  }
  return NULL;
}

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: loadgen <IPv4> <port> <connections 1-256> <requests 1-1000000> <seconds 1-600>\n");
    return 2;
  }
  int connections = atoi(argv[3]);
  budget = atol(argv[4]);
  double seconds = atof(argv[5]);
  target.sin_family = AF_INET;
  target.sin_port = htons((unsigned short)atoi(argv[2]));
  if (inet_pton(AF_INET, argv[1], &target.sin_addr) != 1 || connections < 1 || connections > 256 || budget < 1 || budget > 1000000 || seconds < 1 || seconds > 600) {
    fprintf(stderr, "loadgen: bad arguments (an IPv4 address, a port, 1-256 connections, 1-1000000 requests, 1-600 seconds)\n");
    return 2;
  }
  latencies = calloc((size_t)budget, sizeof *latencies);
  pthread_t threads[256];
  double start = now();
  deadline = start + seconds;
  for (int i = 0; i < connections; i++) pthread_create(&threads[i], NULL, worker, NULL);
  for (int i = 0; i < connections; i++) pthread_join(threads[i], NULL);
  double wall = now() - start;
  qsort(latencies, (size_t)done_ok, sizeof *latencies, by_value);
  double p99 = done_ok ? latencies[(size_t)((double)(done_ok - 1) * 0.99)] : 0;
  printf("requests=%ld errors=%ld seconds=%.3f rps=%.1f p99_ms=%.2f\n", done_ok, errors, wall, (double)done_ok / wall, p99);
  return done_ok > 0 ? 0 : 1;
}
