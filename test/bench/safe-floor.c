/*
 * The safe floor of a first install (issue 17): what any installer that is atomic and durable must do for
 * the same files, and nothing else. For each source: read it once, write it to a temp file in the target
 * directory, fsync the temp file, rename it into place; then fsync the target directory once. No hashing,
 * no planning, no process start beyond this one.
 *
 *   safe-floor <target dir> <file>...
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char buf[1 << 20];

static void die(const char *what, const char *path) {
  fprintf(stderr, "safe-floor: %s %s: %s\n", what, path, strerror(errno));
  exit(1);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: safe-floor <target dir> <file>...\n");
    return 2;
  }
  const char *dir = argv[1];
  for (int i = 2; i < argc; i++) {
    const char *base = strrchr(argv[i], '/') ? strrchr(argv[i], '/') + 1 : argv[i];
    char tmp[4096], dst[4096];
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, base);
    snprintf(dst, sizeof dst, "%s/%s", dir, base);
    int in = open(argv[i], O_RDONLY);
    if (in < 0) die("open", argv[i]);
    int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out < 0) die("open", tmp);
    for (;;) {
      ssize_t n = read(in, buf, sizeof buf);
      if (n < 0) die("read", argv[i]);
      if (n == 0) break;
      for (ssize_t off = 0; off < n;) {
        ssize_t w = write(out, buf + off, (size_t)(n - off));
        if (w < 0) die("write", tmp);
        off += w;
      }
    }
    if (fsync(out) != 0) die("fsync", tmp);
    close(out);
    close(in);
    if (rename(tmp, dst) != 0) die("rename", dst);
  }
  int d = open(dir, O_RDONLY | O_DIRECTORY);
  if (d < 0 || fsync(d) != 0) die("fsync", dir);
  close(d);
  return 0;
}
