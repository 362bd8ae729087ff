/*
 * A stand-in for a CUDA application, for the injection library's tests (test/inject-*.test.ts) and
 * bench. It does toward an injection library what NVIDIA's driver and NVTX do toward one:
 *   - "cuInit": reads CUDA_INJECTION64_PATH, dlopens that library and calls its
 *     int InitializeInjection(void) (timed: the library's start-up cost);
 *   - NVTX: at the first NVTX call, reads NVTX_INJECTION64_PATH, dlopens it and calls its
 *     InitializeInjectionNvtx2(getExportTable), handing out function-pointer slots as NVTX v3's
 *     loader does (own minimal loader; with -DGT_REAL_NVTX it uses NVIDIA's nvtx3 headers instead);
 *   - "kernels": launched through the driver simulator (GPU_TELEMETRY_CUPTI_LIB names it: the
 *     simulator is this program's CUDA driver and CUPTI at once), which records them in CUPTI
 *     activity records while a capture has the kinds enabled.
 * Each step is an NVTX range (--step-range, in --domain or the default domain) around
 * --kernels-per-step kernels named step<i>_k<j>, then a synchronize and the range's end; one
 * kernel named gap<i> runs between steps, outside every range.
 *
 * stdout (line-buffered): "READY pid=<pid> injected=<0|1> initUs=<µs>", then answers to commands
 * read from stdin, one per line: "state" -> "STATE subscribed=<0|1> kinds=<k,k,...>" (what the
 * simulated CUPTI has enabled: gtsim_cupti_state); "counters" -> "COUNTERS enableStalledMs=…
 * kernelsLaunched=…" (gtsim_cupti_counters); "usage" -> "USAGE utimeUs=… stimeUs=… rssKb=…
 * threads=… steps=… injectThreadTicks=…" (the library's thread's CPU time); "exit" or end of input -> exits 0. With --steps N it runs N steps, prints
 * USAGE and exits.
 *
 * Options: --steps N (0: until told to exit) --kernels-per-step K (3) --kernel-us U (20)
 * --step-sleep-us U (2000) --step-range NAME (decode_step) --domain NAME (default domain)
 * --scenario FILE (a scenario JSON whose "cupti" part configures the simulator) --no-nvtx
 * --driver PATH (the simulator to run the kernels on, when GPU_TELEMETRY_CUPTI_LIB is meant to
 * send the injection library elsewhere)
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#ifdef GT_REAL_NVTX
#include <nvtx3/nvToolsExt.h>
#endif

typedef unsigned int (*LaunchFn)(const char*, double, unsigned int);
typedef void (*SyncFn)(void);
typedef int (*StateFn)(int*, unsigned int, unsigned int*, int*);
typedef int (*ConfigureFn)(const char*, char*, unsigned int);
typedef int (*CountersFn)(double*, unsigned int);

static LaunchFn launchKernel;
static SyncFn synchronize;
static StateFn cuptiState;
static CountersFn cuptiCounters;
static volatile long stepsDone;

static void die(const char* what, const char* detail) {
  fprintf(stderr, "fake_cuda_app: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
  exit(2);
}

static double nowUs(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

/* ---- NVTX: a minimal loader (NVTX v3's protocol), unless built against the real headers ---- */
#ifndef GT_REAL_NVTX
typedef void (*NvtxFn)(void);
enum { CORE_SIZE = 16, CORE2_SIZE = 16 };
enum { CORE_RangePushA = 9, CORE_RangePop = 11 };
enum { CORE2_DomainRangePushEx = 4, CORE2_DomainRangePop = 5, CORE2_DomainCreateA = 12 };
static NvtxFn coreSlots[CORE_SIZE + 1], core2Slots[CORE2_SIZE + 1];
static NvtxFn* coreTable[CORE_SIZE + 1];
static NvtxFn* core2Table[CORE2_SIZE + 1];

static int getModuleFunctionTable(int module, NvtxFn*** outTable, unsigned int* outSize) {
  if (module == 1) {
    *outTable = coreTable;
    *outSize = CORE_SIZE;
    return 1;
  }
  if (module == 5) {
    *outTable = core2Table;
    *outSize = CORE2_SIZE;
    return 1;
  }
  return 0;
}
static struct {
  size_t structSize;
  int (*get)(int, NvtxFn***, unsigned int*);
} callbacks = {sizeof(callbacks), getModuleFunctionTable};
static const void* getExportTable(uint32_t id) { return id == 1 ? (const void*)&callbacks : NULL; }

struct EventAttributes { /* nvtxEventAttributes_v2 */
  uint16_t version, size;
  uint32_t category;
  int32_t colorType;
  uint32_t color;
  int32_t payloadType, reserved0;
  uint64_t payload;
  int32_t messageType;
  const void* message;
};

static void nvtxInit(void) {
  for (int i = 0; i <= CORE_SIZE; ++i) coreTable[i] = i < CORE_SIZE ? &coreSlots[i] : NULL;
  for (int i = 0; i <= CORE2_SIZE; ++i) core2Table[i] = i < CORE2_SIZE ? &core2Slots[i] : NULL;
  const char* path = getenv("NVTX_INJECTION64_PATH");
  if (path == NULL || path[0] == '\0') return;
  void* lib = dlopen(path, RTLD_LAZY);
  if (lib == NULL) die("NVTX_INJECTION64_PATH does not load", dlerror());
  int (*init)(const void* (*)(uint32_t)) = (int (*)(const void* (*)(uint32_t)))dlsym(lib, "InitializeInjectionNvtx2");
  if (init == NULL || init(getExportTable) == 0) {
    memset(coreSlots, 0, sizeof coreSlots);
    memset(core2Slots, 0, sizeof core2Slots);
  }
}
static const void* domainCreate(const char* name) {
  return core2Slots[CORE2_DomainCreateA] ? ((const void* (*)(const char*))core2Slots[CORE2_DomainCreateA])(name) : NULL;
}
static void rangePush(const void* domain, const char* name) {
  if (domain != NULL) {
    struct EventAttributes a;
    memset(&a, 0, sizeof a);
    a.version = 3;
    a.size = sizeof a;
    a.messageType = 1; /* ASCII */
    a.message = name;
    if (core2Slots[CORE2_DomainRangePushEx]) ((int (*)(const void*, const struct EventAttributes*))core2Slots[CORE2_DomainRangePushEx])(domain, &a);
  } else if (coreSlots[CORE_RangePushA]) {
    ((int (*)(const char*))coreSlots[CORE_RangePushA])(name);
  }
}
static void rangePop(const void* domain) {
  if (domain != NULL) {
    if (core2Slots[CORE2_DomainRangePop]) ((int (*)(const void*))core2Slots[CORE2_DomainRangePop])(domain);
  } else if (coreSlots[CORE_RangePop]) {
    ((int (*)(void))coreSlots[CORE_RangePop])();
  }
}
#else
static void nvtxInit(void) {}
static const void* domainCreate(const char* name) { return nvtxDomainCreateA(name); }
static void rangePush(const void* domain, const char* name) {
  if (domain != NULL) {
    nvtxEventAttributes_t a;
    memset(&a, 0, sizeof a);
    a.version = NVTX_VERSION;
    a.size = NVTX_EVENT_ATTRIB_STRUCT_SIZE;
    a.messageType = NVTX_MESSAGE_TYPE_ASCII;
    a.message.ascii = name;
    nvtxDomainRangePushEx((nvtxDomainHandle_t)domain, &a);
  } else {
    nvtxRangePushA(name);
  }
}
static void rangePop(const void* domain) {
  if (domain != NULL) nvtxDomainRangePop((nvtxDomainHandle_t)domain);
  else nvtxRangePop();
}
#endif

static void usage(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  long threads = 0, rss = 0;
  FILE* f = fopen("/proc/self/status", "r");
  char line[256];
  while (f != NULL && fgets(line, sizeof line, f) != NULL) {
    if (strncmp(line, "Threads:", 8) == 0) threads = strtol(line + 8, NULL, 10);
    if (strncmp(line, "VmRSS:", 6) == 0) rss = strtol(line + 6, NULL, 10);
  }
  if (f != NULL) fclose(f);
  /* The CPU time (clock ticks) of the injection library's thread ("gt-inject"), -1 without it. */
  long injectTicks = -1;
  DIR* tasks = opendir("/proc/self/task");
  struct dirent* e;
  while (tasks != NULL && (e = readdir(tasks)) != NULL) {
    if (e->d_name[0] == '.') continue;
    char path[300], comm[32] = "", stat[1024] = "";
    snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
    FILE* c = fopen(path, "r");
    if (c == NULL) continue;
    if (fgets(comm, sizeof comm, c) == NULL) comm[0] = '\0';
    fclose(c);
    if (strncmp(comm, "gt-inject", 9) != 0) continue;
    snprintf(path, sizeof path, "/proc/self/task/%s/stat", e->d_name);
    FILE* st = fopen(path, "r");
    if (st == NULL) continue;
    if (fgets(stat, sizeof stat, st) == NULL) stat[0] = '\0';
    fclose(st);
    const char* after = strrchr(stat, ')');
    long utime = 0, stime = 0;
    /* fields after the name: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
    if (after != NULL && sscanf(after + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld", &utime, &stime) == 2) injectTicks = utime + stime;
  }
  if (tasks != NULL) closedir(tasks);
  printf("USAGE utimeUs=%ld stimeUs=%ld rssKb=%ld maxRssKb=%ld threads=%ld steps=%ld injectThreadTicks=%ld\n",
         (long)ru.ru_utime.tv_sec * 1000000L + (long)ru.ru_utime.tv_usec, (long)ru.ru_stime.tv_sec * 1000000L + (long)ru.ru_stime.tv_usec,
         rss, ru.ru_maxrss, threads, stepsDone, injectTicks);
}

static void* commands(void* arg) {
  (void)arg;
  char line[128];
  while (fgets(line, sizeof line, stdin) != NULL) {
    if (strncmp(line, "state", 5) == 0) {
      int kinds[64];
      unsigned int count = 0;
      int subscribed = 0;
      cuptiState(kinds, 64, &count, &subscribed);
      char list[512] = "";
      for (unsigned int i = 0; i < count && i < 64; ++i) {
        char k[16];
        snprintf(k, sizeof k, i ? ",%d" : "%d", kinds[i]);
        strncat(list, k, sizeof list - strlen(list) - 1);
      }
      printf("STATE subscribed=%d kinds=%s\n", subscribed, list);
    } else if (strncmp(line, "counters", 8) == 0) {
      double c[16] = {0};
      if (cuptiCounters != NULL) cuptiCounters(c, 16);
      printf("COUNTERS enableStalledMs=%.0f kernelsLaunched=%.0f\n", c[10], c[9]);
    } else if (strncmp(line, "usage", 5) == 0) {
      usage();
    } else if (strncmp(line, "exit", 4) == 0) {
      exit(0);
    }
  }
  exit(0); /* end of input: whoever started us is gone */
  return NULL;
}

int main(int argc, char** argv) {
  long steps = 0, kernelsPerStep = 3, stepSleepUs = 2000;
  double kernelUs = 20;
  const char* stepRange = "decode_step";
  const char* domainName = NULL;
  const char* scenario = NULL;
  const char* driverPath = getenv("GPU_TELEMETRY_CUPTI_LIB");
  int nvtx = 1;
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--no-nvtx") == 0) {
      nvtx = 0;
      continue;
    }
    if (v == NULL) die("missing value for", a);
    ++i;
    if (strcmp(a, "--steps") == 0) steps = atol(v);
    else if (strcmp(a, "--kernels-per-step") == 0) kernelsPerStep = atol(v);
    else if (strcmp(a, "--kernel-us") == 0) kernelUs = atof(v);
    else if (strcmp(a, "--step-sleep-us") == 0) stepSleepUs = atol(v);
    else if (strcmp(a, "--step-range") == 0) stepRange = v;
    else if (strcmp(a, "--domain") == 0) domainName = v;
    else if (strcmp(a, "--scenario") == 0) scenario = v;
    else if (strcmp(a, "--driver") == 0) driverPath = v;
    else die("unknown option", a);
  }
  setvbuf(stdout, NULL, _IOLBF, 0);

  /* The "driver": the simulator library, which also plays CUPTI for whoever loads it. */
  if (driverPath == NULL) die("GPU_TELEMETRY_CUPTI_LIB (or --driver) must name the simulator library", NULL);
  void* driver = dlopen(driverPath, RTLD_NOW | RTLD_LOCAL);
  if (driver == NULL) die("the simulator does not load", dlerror());
  launchKernel = (LaunchFn)dlsym(driver, "gtsim_cuda_launch_kernel");
  synchronize = (SyncFn)dlsym(driver, "gtsim_cuda_synchronize");
  cuptiState = (StateFn)dlsym(driver, "gtsim_cupti_state");
  cuptiCounters = (CountersFn)dlsym(driver, "gtsim_cupti_counters");
  if (!launchKernel || !synchronize || !cuptiState) die("the simulator lacks gtsim_cuda_* / gtsim_cupti_state", NULL);
  if (scenario != NULL) {
    FILE* f = fopen(scenario, "r");
    if (f == NULL) die("cannot read", scenario);
    static char text[1 << 20];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    char error[512];
    ConfigureFn configure = (ConfigureFn)dlsym(driver, "gtsim_cupti_configure");
    if (configure == NULL || configure(text, error, sizeof error) != 0) die("the scenario was refused", error);
  }

  /* cuInit: the driver loads the injection library and calls its entry point. */
  int injected = 0;
  double initUs = 0;
  const char* injection = getenv("CUDA_INJECTION64_PATH");
  if (injection != NULL && injection[0] != '\0') {
    void* lib = dlopen(injection, RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) die("CUDA_INJECTION64_PATH does not load", dlerror());
    int (*init)(void) = (int (*)(void))dlsym(lib, "InitializeInjection");
    if (init == NULL) die("the injection library has no InitializeInjection", NULL);
    const double t0 = nowUs();
    const int rc = init();
    initUs = nowUs() - t0;
    if (rc != 1) die("InitializeInjection did not return 1", NULL);
    injected = 1;
  }
  const void* domain = NULL;
  if (nvtx) {
    nvtxInit();
    if (domainName != NULL) domain = domainCreate(domainName);
  }
  printf("READY pid=%d injected=%d initUs=%.1f\n", (int)getpid(), injected, initUs);
  pthread_t t;
  if (steps == 0) pthread_create(&t, NULL, commands, NULL);

  char name[64];
  for (long i = 0; steps == 0 || i < steps; ++i) {
    if (nvtx) rangePush(domain, stepRange);
    for (long j = 0; j < kernelsPerStep; ++j) {
      snprintf(name, sizeof name, "step%ld_k%ld", i, j);
      launchKernel(name, kernelUs, 7);
    }
    synchronize();
    if (nvtx) rangePop(domain);
    snprintf(name, sizeof name, "gap%ld", i);
    launchKernel(name, kernelUs, 7);
    synchronize();
    stepsDone = i + 1;
    if (stepSleepUs > 0) usleep((useconds_t)stepSleepUs);
  }
  usage();
  return 0;
}
