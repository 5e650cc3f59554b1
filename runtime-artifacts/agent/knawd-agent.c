/*
 * knawd-agent: the installer container's long-running process (issue 17, item 1).
 *
 * Node.js is what installs, but it costs ~50 MiB for as long as it runs; the pod stays on every node for the
 * life of the install. So the process that stays is this one: it runs the installer, then sleeps in the
 * kernel (no timers, no polling) until the next drift check or SIGTERM. Static (musl), a few dozen KiB, a few
 * hundred KiB resident.
 *
 *   knawd-agent ready FILE
 *       The readiness probe: exit 0 when FILE exists, 1 when it does not. The installer keeps FILE (its
 *       --ready-file): present exactly while the node is installed and verified.
 *
 *   knawd-agent run [--ready-file FILE] [--check-every SECONDS] -- COMMAND [ARG...]
 *       Removes FILE (a marker that an earlier container of this pod left in the emptyDir), then runs
 *       COMMAND ARG... with KNAWD_READY_FILE=FILE in its environment. When it fails, exits with its status (the
 *       kubelet restarts the container: the installer's own retry). When it succeeds, idles; every SECONDS
 *       (0: never) runs COMMAND ARG... --drift-check the same way.
 *       SIGTERM or SIGINT while a command runs is forwarded to it, and the agent exits with its status once it
 *       ended; while idle, the agent exits 0 at once. Either way nothing on the node is undone: stopping the
 *       pod is not an uninstall.
 *
 * Log lines are JSON objects on stdout, like the installer's. Exit status 2: bad command line.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DRIFT_CHECK_FLAG "--drift-check"
#define READY_ENV "KNAWD_READY_FILE"
#define MAX_CHECK_SECONDS 86400L

static sigset_t handled;    /* SIGTERM, SIGINT, SIGCHLD: blocked, taken with sigwaitinfo/sigtimedwait */
static sigset_t original;   /* the mask the agent started with, restored in children */
static int stopping;        /* a SIGTERM or SIGINT arrived */
static int stop_signal;

static void json_string(const char *s) {
  putchar('"');
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') printf("\\%c", c);
    else if (c < 0x20) printf("\\u%04x", c);
    else putchar(c);
  }
  putchar('"');
}

static void say(const char *level, const char *format, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, format);
  vsnprintf(msg, sizeof msg, format, ap);
  va_end(ap);
  char when[32] = "";
  struct timespec now;
  struct tm tm;
  if (clock_gettime(CLOCK_REALTIME, &now) == 0 && gmtime_r(&now.tv_sec, &tm)) {
    size_t n = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + n, sizeof when - n, ".%03ldZ", now.tv_nsec / 1000000);
  }
  printf("{\"level\":\"%s\",\"msg\":", level);
  json_string(msg);
  printf(",\"time\":\"%s\",\"component\":\"knawd-agent\"}\n", when);
  fflush(stdout);
}

static int usage(const char *why) {
  fprintf(stderr,
          "knawd-agent: %s\n"
          "usage: knawd-agent ready FILE\n"
          "       knawd-agent run [--ready-file FILE] [--check-every SECONDS] -- COMMAND [ARG...]\n",
          why);
  return 2;
}

static int status_code(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

/* Runs argv (plus `extra` when not NULL) and waits for it, forwarding SIGTERM/SIGINT. Returns its exit code. */
static int run_child(char **argv, int argc, const char *extra) {
  char **args = calloc((size_t)argc + 2, sizeof *args);
  if (!args) {
    say("error", "out of memory");
    return 1;
  }
  for (int i = 0; i < argc; i++) args[i] = argv[i];
  if (extra) args[argc] = (char *)extra;
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) {
    say("error", "cannot start %s: %s", argv[0], strerror(errno));
    free(args);
    return 1;
  }
  if (pid == 0) {
    sigprocmask(SIG_SETMASK, &original, NULL);
    execvp(args[0], args);
    say("error", "cannot run %s: %s", args[0], strerror(errno));
    _exit(127);
  }
  free(args);
  for (;;) {
    siginfo_t info;
    int sig = sigwaitinfo(&handled, &info);
    if (sig < 0) {
      if (errno == EINTR) continue;
      say("error", "sigwaitinfo: %s", strerror(errno));
      return 1;
    }
    if (sig == SIGCHLD) {
      int status;
      pid_t done;
      while ((done = waitpid(-1, &status, WNOHANG)) > 0) {
        if (done == pid) return status_code(status);
      }
      continue;
    }
    if (!stopping) say("info", "%s: passing it on to the running installer (pid %d) and waiting for it", sig == SIGTERM ? "SIGTERM" : "SIGINT", (int)pid);
    stopping = 1;
    stop_signal = sig;
    kill(pid, sig);
  }
}

/* Sleeps until `seconds` passed (0: forever) or SIGTERM/SIGINT came. Returns 1 when it is time to check. */
static int idle(long seconds) {
  struct timespec deadline;
  clock_gettime(CLOCK_MONOTONIC, &deadline);
  deadline.tv_sec += seconds;
  for (;;) {
    siginfo_t info;
    int sig;
    if (seconds == 0) {
      sig = sigwaitinfo(&handled, &info);
    } else {
      struct timespec now, left;
      clock_gettime(CLOCK_MONOTONIC, &now);
      left.tv_sec = deadline.tv_sec - now.tv_sec;
      left.tv_nsec = deadline.tv_nsec - now.tv_nsec;
      if (left.tv_nsec < 0) {
        left.tv_sec -= 1;
        left.tv_nsec += 1000000000L;
      }
      if (left.tv_sec < 0) return 1;
      sig = sigtimedwait(&handled, &info, &left);
      if (sig < 0 && errno == EAGAIN) return 1;
    }
    if (sig < 0) {
      if (errno == EINTR) continue;
      say("error", "waiting for signals: %s", strerror(errno));
      exit(1);
    }
    if (sig == SIGCHLD) {
      while (waitpid(-1, NULL, WNOHANG) > 0) {
      }
      continue;
    }
    stopping = 1;
    stop_signal = sig;
    return 0;
  }
}

static int ready(const char *file) {
  struct stat st;
  return stat(file, &st) == 0 ? 0 : 1;
}

static int run(int argc, char **argv) {
  const char *ready_file = NULL;
  long every = 0;
  int i = 0;
  for (; i < argc; i++) {
    if (strcmp(argv[i], "--") == 0) {
      i++;
      break;
    }
    if (strcmp(argv[i], "--ready-file") == 0 && i + 1 < argc) {
      ready_file = argv[++i];
    } else if (strcmp(argv[i], "--check-every") == 0 && i + 1 < argc) {
      char *end;
      errno = 0;
      every = strtol(argv[++i], &end, 10);
      if (errno || *end || end == argv[i] || every < 0 || every > MAX_CHECK_SECONDS) return usage("--check-every takes a whole number of seconds from 0 (never) to 86400");
    } else {
      return usage("unknown flag (the command follows --)");
    }
  }
  if (i >= argc) return usage("no command given after --");
  char **command = argv + i;
  int command_argc = argc - i;

  if (ready_file) {
    if (ready_file[0] != '/') return usage("--ready-file takes an absolute path");
    if (unlink(ready_file) != 0 && errno != ENOENT) {
      say("error", "cannot remove the stale readiness marker %s: %s", ready_file, strerror(errno));
      return 1;
    }
    if (setenv(READY_ENV, ready_file, 1) != 0) {
      say("error", "cannot set %s: %s", READY_ENV, strerror(errno));
      return 1;
    }
  }

  int code = run_child(command, command_argc, NULL);
  for (;;) {
    if (stopping) {
      say("info", "the installer ended (exit %d) after %s; stopping", code, stop_signal == SIGTERM ? "SIGTERM" : "SIGINT");
      return code;
    }
    if (code != 0) {
      say("error", "the installer failed (exit %d); exiting with its status so that the container is restarted", code);
      return code;
    }
    if (every > 0) say("info", "the installer succeeded; idle until the next drift check in %ld s, or SIGTERM", every);
    else say("info", "the installer succeeded; idle until SIGTERM (no drift checks)");
    if (!idle(every)) {
      say("info", "%s while idle: stopping; the node is left as it is", stop_signal == SIGTERM ? "SIGTERM" : "SIGINT");
      return 0;
    }
    code = run_child(command, command_argc, DRIFT_CHECK_FLAG);
  }
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc >= 2 && strcmp(argv[1], "ready") == 0) {
    if (argc != 3) return usage("ready takes one FILE");
    return ready(argv[2]);
  }
  if (argc < 2 || strcmp(argv[1], "run") != 0) return usage("the command is ready or run");
  sigemptyset(&handled);
  sigaddset(&handled, SIGTERM);
  sigaddset(&handled, SIGINT);
  sigaddset(&handled, SIGCHLD);
  if (sigprocmask(SIG_BLOCK, &handled, &original) != 0) {
    say("error", "sigprocmask: %s", strerror(errno));
    return 1;
  }
  return run(argc - 2, argv + 2);
}
