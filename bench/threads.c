/* The benchmark's Asterisk: N threads, as a loaded PBX has, most of them
 * idle on condition variables, and, with "frozen", an ABBA deadlock with two
 * threads stuck behind it.
 *
 * Usage: threads N [frozen|idle]    prints "ready <pid>", then blocks forever. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pthread_mutex_t a = PTHREAD_MUTEX_INITIALIZER, b = PTHREAD_MUTEX_INITIALIZER;
static pthread_barrier_t both;
static pthread_cond_t never = PTHREAD_COND_INITIALIZER;
static pthread_mutex_t idle_lock = PTHREAD_MUTEX_INITIALIZER;

static void *first(void *arg) {
    pthread_mutex_lock(&a);
    pthread_barrier_wait(&both);
    pthread_mutex_lock(&b);
    return NULL;
}

static void *second(void *arg) {
    pthread_mutex_lock(&b);
    pthread_barrier_wait(&both);
    pthread_mutex_lock(&a);
    return NULL;
}

static void *bystander(void *arg) {
    usleep(100000);
    pthread_mutex_lock(&a);
    return NULL;
}

static void *idle(void *arg) {
    pthread_mutex_lock(&idle_lock);
    for (;;)
        pthread_cond_wait(&never, &idle_lock);
    return NULL;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 100;
    int frozen = argc < 3 || strcmp(argv[2], "idle") != 0;
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    int made = 1;
    if (frozen) {
        pthread_barrier_init(&both, NULL, 2);
        pthread_create(&t, &attr, first, NULL);
        pthread_create(&t, &attr, second, NULL);
        pthread_create(&t, &attr, bystander, NULL);
        pthread_create(&t, &attr, bystander, NULL);
        made += 4;
    }
    for (; made < n; made++)
        pthread_create(&t, &attr, idle, NULL);
    usleep(300000);
    printf("ready %d\n", getpid());
    fflush(stdout);
    for (;;)
        pause();
}
