/*
 * wasi-probe: one WASI program (wasm32-wasi, Debian's wasi-libc) whose first argument names the behaviour it shows,
 * for the tests of what crun's handlers give a module (test/image/wasi-behaviour.test.ts, the e2e and node suites):
 *
 *   files            reads /etc/wasi-probe/input.txt (the image's), writes /tmp/wasi-probe-out.txt by absolute path,
 *                    reads it back; prints "files: <input> | <read back>"
 *   volume DIR       reads DIR/from-host.txt, writes DIR/from-wasm.txt ("written by wasm"); prints "volume: <read>"
 *   exit N           prints "exit N" and calls exit(N) (WASI proc_exit)
 *   trap             prints "before trap", then executes `unreachable`
 *   env              prints the environment, one VAR=value per line, as the module got it
 *   stdout           writes exactly "exact output\n" and returns from main
 *   poll-stdin       polls stdin for reading (WASI poll_oneoff, 5 s at most), then reads it; prints
 *                    "poll-stdin: ready, read <bytes>" (stdin /dev/null: "ready, read 0"), or "timed out", or
 *                    "error (revents …)" when the poll reports an error for stdin
 *
 * Anything unexpected: a line on stderr and exit 100.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

static int fail (const char *what, const char *path)
{
  fprintf (stderr, "wasi-probe: %s %s: %s\n", what, path, strerror (errno));
  return 100;
}

static int read_file (const char *path, char *buf, size_t size)
{
  FILE *f = fopen (path, "r");
  size_t n;

  if (f == NULL)
    return -1;
  n = fread (buf, 1, size - 1, f);
  buf[n] = '\0';
  fclose (f);
  while (n > 0 && buf[n - 1] == '\n')
    buf[--n] = '\0';
  return 0;
}

static int write_file (const char *path, const char *text)
{
  FILE *f = fopen (path, "w");

  if (f == NULL)
    return -1;
  if (fputs (text, f) < 0)
    {
      fclose (f);
      return -1;
    }
  return fclose (f);
}

int main (int argc, char **argv)
{
  char input[256], back[256], path[512];
  const char *mode = argc > 1 ? argv[1] : "";

  if (strcmp (mode, "files") == 0)
    {
      if (read_file ("/etc/wasi-probe/input.txt", input, sizeof input) != 0)
        return fail ("reading", "/etc/wasi-probe/input.txt");
      if (write_file ("/tmp/wasi-probe-out.txt", "written by wasm\n") != 0)
        return fail ("writing", "/tmp/wasi-probe-out.txt");
      if (read_file ("/tmp/wasi-probe-out.txt", back, sizeof back) != 0)
        return fail ("reading", "/tmp/wasi-probe-out.txt");
      printf ("files: %s | %s\n", input, back);
      return 0;
    }
  if (strcmp (mode, "volume") == 0 && argc == 3)
    {
      snprintf (path, sizeof path, "%s/from-host.txt", argv[2]);
      if (read_file (path, input, sizeof input) != 0)
        return fail ("reading", path);
      snprintf (path, sizeof path, "%s/from-wasm.txt", argv[2]);
      if (write_file (path, "written by wasm\n") != 0)
        return fail ("writing", path);
      printf ("volume: %s\n", input);
      return 0;
    }
  if (strcmp (mode, "exit") == 0 && argc == 3)
    {
      int code = atoi (argv[2]);
      printf ("exit %d\n", code);
      fflush (stdout);
      exit (code);
    }
  if (strcmp (mode, "trap") == 0)
    {
      printf ("before trap\n");
      fflush (stdout);
      __builtin_trap ();
    }
  if (strcmp (mode, "env") == 0)
    {
      for (char **e = environ; *e != NULL; e++)
        printf ("%s\n", *e);
      return 0;
    }
  if (strcmp (mode, "stdout") == 0)
    {
      fputs ("exact output\n", stdout);
      return 0;
    }
  if (strcmp (mode, "poll-stdin") == 0)
    {
      struct pollfd p = { .fd = STDIN_FILENO, .events = POLLIN };
      int n = poll (&p, 1, 5000);
      char c;

      if (n < 0)
        return fail ("polling", "stdin");
      if (n == 0)
        {
          printf ("poll-stdin: timed out\n");
          return 0;
        }
      if (p.revents & (POLLERR | POLLNVAL))
        {
          printf ("poll-stdin: error (revents %#x)\n", (unsigned) p.revents);
          return 0;
        }
      printf ("poll-stdin: ready, read %zd\n", read (STDIN_FILENO, &c, 1));
      return 0;
    }
  fprintf (stderr, "wasi-probe: unknown mode '%s' (files, volume DIR, exit N, trap, env, stdout, poll-stdin)\n", mode);
  return 100;
}
