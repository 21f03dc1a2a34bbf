// A plain WASI (preview 1) C program, built with Debian's clang and wasi-libc
// as a reactor whose exports keycard calls. No keycard or Extism headers:
// everything it does outside itself goes through WASI, and so through Cedar.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <dirent.h>
#include <unistd.h>

__attribute__((export_name("run"))) int run(void) {
  printf("hello from C\n");
  const char *region = getenv("REGION");
  printf("region=%s\n", region ? region : "(none)");
  time_t now = time(NULL);
  printf("clock=%s\n", now > 1600000000 ? "ok" : "denied");
  FILE *in = fopen("/data/x/a.txt", "r");
  if (in) {
    char buffer[64];
    size_t n = fread(buffer, 1, sizeof buffer - 1, in);
    buffer[n] = 0;
    printf("read=%s\n", buffer);
    fclose(in);
  } else {
    printf("read=denied\n");
  }
  FILE *out = fopen("/data/x/from-c.txt", "w");
  if (out) {
    fputs("written by C\n", out);
    fclose(out);
  }
  fflush(stdout);
  return 0;
}

__attribute__((export_name("list"))) int list(void) {
  DIR *dir = opendir("/data/x");
  if (!dir) {
    printf("list=denied\n");
    return 1;
  }
  int count = 0;
  for (struct dirent *entry; (entry = readdir(dir));) {
    printf("entry=%s\n", entry->d_name);
    count++;
  }
  closedir(dir);
  fflush(stdout);
  return count;
}

__attribute__((export_name("remove"))) int remove_file(void) {
  return unlink("/data/x/from-c.txt");
}

__attribute__((export_name("fail"))) int fail(void) {
  exit(3);
}
