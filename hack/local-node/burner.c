/* burner: a container that burns one CPU while a flag file exists, for the real-node tests.
 *
 *   burner [FLAG_FILE]    (default /control/burn)
 *
 * Checks for FLAG_FILE every 100 ms: while it exists, spins; otherwise sleeps. Exits 0 on
 * SIGTERM or SIGINT (as PID 1 of a container it has to handle them itself). Built with
 * gcc -static into an image from scratch (hack/local-node/images.sh). */
#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig) { (void)sig; stop = 1; }

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  const char *flag = argc > 1 ? argv[1] : "/control/burn";
  struct sigaction sa = {0};
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  setvbuf(stdout, NULL, _IOLBF, 0);
  printf("burner: burning while %s exists\n", flag);
  int burning = -1;
  volatile unsigned long spins = 0;
  while (!stop) {
    int want = access(flag, F_OK) == 0;
    if (want != burning) {
      printf("burner: %s\n", want ? "burning" : "idle");
      burning = want;
    }
    if (want) {
      double until = now() + 0.1;
      while (!stop && now() < until) spins++;
    } else {
      struct timespec ts = {0, 100 * 1000 * 1000};
      nanosleep(&ts, NULL);
    }
  }
  printf("burner: stopped\n");
  return 0;
}
