/*
 * The WASM HTTP service (image quay.io/knawd/wasm-http): a WASI preview 1 module that answers HTTP/1.1 on $PORT
 * (default 8080), to prove that a WebAssembly service runs and serves on a node this project configured.
 *
 *   GET /healthz  200  ok
 *   GET /         200  hello from wasm: engine=WasmEdge host=<$HOSTNAME> requests=<n, this instance's count>
 *   anything else 404 (405 for another method)
 *
 * WASI preview 1 has no way to open a listening socket; WasmEdge's socket extension (the `*_v2` functions of its
 * wasi_snapshot_preview1 module) has, so this module imports them and runs only where they exist: under
 * crun-wasmedge. crun's wasmtime handler cannot serve (wasmtime's C API 26 preopens no sockets). One connection
 * at a time, `Connection: close`: small and obviously correct, which is what a proof needs.
 *
 * Compiled natively (`gcc -static`, any target but wasm32) the same program listens through POSIX sockets and
 * answers engine=native: the benchmark's native baseline (test/bench/wasm-bench.ts), the same code per request.
 * The wasm build is byte for byte what it was before the native branch existed (the image digest stays).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef __wasm__
#define ENGINE "WasmEdge"
#define ERRNO "WASI errno"
#define WASMEDGE_SOCKET(name) __attribute__((import_module("wasi_snapshot_preview1"), import_name(#name)))

/* WasmEdge 0.14's __wasi_address_t: a buffer of 4 bytes is an IPv4 address. */
struct wasmedge_address {
  uint8_t *buf;
  uint32_t buf_len;
};

WASMEDGE_SOCKET(sock_open_v2) uint32_t sock_open_v2(uint32_t family, uint32_t type, int32_t *fd);
WASMEDGE_SOCKET(sock_bind_v2) uint32_t sock_bind_v2(int32_t fd, struct wasmedge_address *address, uint32_t port);
WASMEDGE_SOCKET(sock_listen_v2) uint32_t sock_listen_v2(int32_t fd, int32_t backlog);
WASMEDGE_SOCKET(sock_accept_v2) uint32_t sock_accept_v2(int32_t fd, uint32_t flags, int32_t *accepted);

enum { FAMILY_INET4 = 1, SOCK_TYPE_STREAM = 2 };
#else
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#define ENGINE "native"
#define ERRNO "errno"
#endif

static unsigned long requests;

static void die(const char *what, uint32_t err) {
  fprintf(stderr, "wasm-http: %s failed (" ERRNO " %u)\n", what, err);
  exit(1);
}

static uint32_t listen_port(void) {
  const char *p = getenv("PORT");
  if (!p || !*p) return 8080;
  char *end;
  unsigned long port = strtoul(p, &end, 10);
  if (*end || port == 0 || port > 65535) {
    fprintf(stderr, "wasm-http: PORT=%s is not a port number (1-65535)\n", p);
    exit(2);
  }
  return (uint32_t)port;
}

static int write_all(int fd, const char *data, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, data, len);
    if (n <= 0) return -1;
    data += n;
    len -= (size_t)n;
  }
  return 0;
}

static void respond(int fd, int status, const char *reason, const char *body) {
  char head[256];
  int n = snprintf(head, sizeof head,
                   "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                   status, reason, strlen(body));
  if (write_all(fd, head, (size_t)n) == 0) write_all(fd, body, strlen(body));
}

/* Reads the request head (up to the blank line, or what fits) and answers it. */
static void serve(int fd) {
  char request[4096];
  size_t got = 0;
  while (got < sizeof request - 1) {
    ssize_t n = read(fd, request + got, sizeof request - 1 - got);
    if (n <= 0) break;
    got += (size_t)n;
    request[got] = '\0';
    if (strstr(request, "\r\n\r\n")) break;
  }
  request[got] = '\0';
  char method[8] = "", path[256] = "";
  if (sscanf(request, "%7s %255s", method, path) != 2) {
    respond(fd, 400, "Bad Request", "bad request\n");
    return;
  }
  int status;
  if (strcmp(method, "GET") != 0) {
    respond(fd, status = 405, "Method Not Allowed", "only GET\n");
  } else if (strcmp(path, "/healthz") == 0) {
    respond(fd, status = 200, "OK", "ok\n");
  } else if (strcmp(path, "/") == 0) {
    char body[256];
    const char *host = getenv("HOSTNAME");
    snprintf(body, sizeof body, "hello from wasm: engine=" ENGINE " host=%s requests=%lu\n", host ? host : "?", ++requests);
    respond(fd, status = 200, "OK", body);
  } else {
    respond(fd, status = 404, "Not Found", "not found\n");
  }
  printf("%s %s %d\n", method, path, status);
  fflush(stdout);
}

#ifdef __wasm__
int main(void) {
  uint32_t port = listen_port();
  int32_t listener;
  uint32_t err;
  if ((err = sock_open_v2(FAMILY_INET4, SOCK_TYPE_STREAM, &listener))) die("sock_open", err);
  uint8_t any[4] = {0, 0, 0, 0};
  struct wasmedge_address address = {any, sizeof any};
  if ((err = sock_bind_v2(listener, &address, port))) die("sock_bind", err);
  if ((err = sock_listen_v2(listener, 128))) die("sock_listen", err);
  printf("wasm-http: listening on port %u\n", port);
  fflush(stdout);
  for (;;) {
    int32_t conn;
    if ((err = sock_accept_v2(listener, 0, &conn))) die("sock_accept", err);
    serve(conn);
    close(conn);
  }
}
#else
int main(void) {
  uint32_t port = listen_port();
  int one = 1;
  struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr = {htonl(INADDR_ANY)}};
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  if (listener < 0) die("socket", (uint32_t)errno);
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(listener, (struct sockaddr *)&address, sizeof address)) die("bind", (uint32_t)errno);
  if (listen(listener, 128)) die("listen", (uint32_t)errno);
  printf("wasm-http: listening on port %u\n", port);
  fflush(stdout);
  for (;;) {
    int conn = accept(listener, NULL, NULL);
    if (conn < 0) die("accept", (uint32_t)errno);
    serve(conn);
    close(conn);
  }
}
#endif
