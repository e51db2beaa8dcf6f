/* The benchmark's frozen PBX: THREADS threads stopped the way a frozen
 * Asterisk's are. Threads 0 and 1 deadlock on each other's mutex; every
 * third thread holds its own mutex and waits for the one before it (a wait
 * chain behind the cycle); every third waits on a rwlock a writer keeps;
 * the rest sleep in a condition wait, like idle channel threads. Each
 * blocked call sits a few frames deep, as Asterisk's lock wrappers put it.
 *
 * Usage: asterisk-bench THREADS   (freeze refuses names not starting with asterisk)
 * Prints "ready" once every thread is blocked, then blocks forever. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static pthread_mutex_t *locks;
static pthread_rwlock_t subs_lock = PTHREAD_RWLOCK_INITIALIZER;
static pthread_mutex_t idle_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t never = PTHREAD_COND_INITIALIZER;
static pthread_barrier_t started;

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
    channel_work((long)arg);
    return NULL;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 400;
    if (n < 2)
        n = 2;
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
