/* The benchmark's frozen PBX: THREADS threads stopped the way a frozen
 * Asterisk's are. Threads 0 and 1 deadlock on each other's mutex; every
 * third thread holds its own mutex and waits for the one before it (a wait
 * chain behind the cycle); every third waits on a rwlock a writer keeps;
 * the rest sleep in a condition wait, like idle channel threads. Each
 * blocked call sits a few frames deep, as Asterisk's lock wrappers put it.
 *
 * With MODULE_DIR, every *.so in it is dlopen'd (RTLD_NOW, in name order)
 * before the threads start, as Asterisk loads its modules, and one thread in
 * ten (at least one) blocks through a module: its channel_work runs as a
 * callback of the module's `<name>_call(fn, arg)`, so that its backtrace
 * passes through a frame of that module, as a real channel thread's passes
 * through chan_pjsip or app_dial. Those threads are spread over the first
 * eight modules. What each thread blocks on is the same with or without.
 *
 * Usage: asterisk-bench THREADS [MODULE_DIR]   (freeze refuses names not starting with asterisk)
 * Prints "ready" once every thread is blocked, then blocks forever. */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pthread_mutex_t *locks;
static pthread_rwlock_t subs_lock = PTHREAD_RWLOCK_INITIALIZER;
static pthread_mutex_t idle_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t never = PTHREAD_COND_INITIALIZER;
static pthread_barrier_t started;

/* A module's entry point: calls fn(arg) and does not return before it does. */
typedef void (*module_call)(void (*fn)(long), long arg);
static module_call *module_calls;
static long module_count;
static long module_thread = 5; /* i % 10 == module_thread goes through a module */

static void __attribute__((noinline)) wait_for(pthread_mutex_t *lock) {
    pthread_mutex_lock(lock);
}

static void __attribute__((noinline)) channel_work(long i) {
    pthread_mutex_lock(&locks[i]);
    pthread_barrier_wait(&started);
    usleep(100000);
    if (i == 0)
        wait_for(&locks[1]);
    else if (i == 1)
        wait_for(&locks[0]);
    else if (i % 3 == 2)
        wait_for(&locks[i - 1]);
    else if (i % 3 == 0)
        pthread_rwlock_rdlock(&subs_lock);
    pthread_mutex_lock(&idle_lock);
    for (;;)
        pthread_cond_wait(&never, &idle_lock);
}

static void *channel_thread(void *arg) {
    long i = (long)arg;
    if (module_count > 0 && i % 10 == module_thread)
        module_calls[(i / 10) % (module_count < 8 ? module_count : 8)](channel_work, i);
    else
        channel_work(i);
    return NULL;
}

static int by_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* dlopens every *.so of dir and keeps each one's <name>_call. */
static int load_modules(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) {
        perror(dir);
        return -1;
    }
    char **names = NULL;
    long count = 0, size = 0;
    struct dirent *entry;
    while ((entry = readdir(d))) {
        size_t len = strlen(entry->d_name);
        if (len <= 3 || strcmp(entry->d_name + len - 3, ".so") != 0)
            continue;
        if (count == size)
            names = realloc(names, (size = size ? 2 * size : 64) * sizeof *names);
        names[count++] = strdup(entry->d_name);
    }
    closedir(d);
    qsort(names, count, sizeof *names, by_name);
    module_calls = calloc(count ? count : 1, sizeof *module_calls);
    for (long m = 0; m < count; m++) {
        char path[4096], symbol[512];
        snprintf(path, sizeof path, "%s/%s", dir, names[m]);
        void *module = dlopen(path, RTLD_NOW);
        if (!module) {
            fprintf(stderr, "dlopen: %s\n", dlerror());
            return -1;
        }
        snprintf(symbol, sizeof symbol, "%.*s_call", (int)(strlen(names[m]) - 3), names[m]);
        module_calls[m] = (module_call)dlsym(module, symbol);
        if (!module_calls[m]) {
            fprintf(stderr, "dlsym %s: %s\n", symbol, dlerror());
            return -1;
        }
        free(names[m]);
    }
    free(names);
    module_count = count;
    return 0;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 400;
    if (n < 2)
        n = 2;
    if (argc > 2 && load_modules(argv[2]) != 0)
        return 1;
    if (n <= module_thread)
        module_thread = n - 1;
    locks = calloc(n, sizeof *locks);
    for (long i = 0; i < n; i++)
        pthread_mutex_init(&locks[i], NULL);
    pthread_rwlock_wrlock(&subs_lock);
    pthread_barrier_init(&started, NULL, n + 1);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    for (long i = 0; i < n; i++) {
        pthread_t thread;
        if (pthread_create(&thread, &attr, channel_thread, (void *)i) != 0) {
            perror("pthread_create");
            return 1;
        }
    }
    pthread_barrier_wait(&started);
    usleep(500000);
    printf("ready\n");
    fflush(stdout);
    for (;;)
        pause();
}
