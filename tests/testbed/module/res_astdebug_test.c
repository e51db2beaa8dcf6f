/*
 * res_astdebug_test: an Asterisk module that puts a real Asterisk, on purpose,
 * in the situations a support engineer meets, so wazo-astdebug's tests can
 * check its answers against the truth. Built by tests/testbed/build inside
 * the test bed's Debian sid root, against Debian's /usr/include/asterisk,
 * once with -g and once stripped.
 *
 * Each scenario appends one line per thread to ROLES:
 *   <scenario> <role> <lwp> <lock address>
 * and the CLI command returns only once the situation is in place.
 */

#include "asterisk.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "asterisk/astobj2.h"
#include "asterisk/cli.h"
#include "asterisk/lock.h"
#include "asterisk/logger.h"
#include "asterisk/module.h"
#include "asterisk/stasis_channels.h"
#include "asterisk/taskprocessor.h"
#include "asterisk/utils.h"

#define ROLES "/var/spool/asterisk/astdebug-roles"

/* Never freed: the threads that block on them never return. */
static ast_mutex_t lock_a;
static ast_mutex_t lock_b;
static ast_mutex_t lock_m;
/* Held by the thread that calls abort(): the lock a freeze check times out on. */
static ast_mutex_t lock_x;
static ast_rwlock_t lock_r;
static pthread_barrier_t pair;
/* Nobody signals it: the task that waits on it never ends. */
static ast_mutex_t lock_t;
static ast_cond_t never;

static void role(const char *scenario, const char *name, const void *lock)
{
	FILE *f = fopen(ROLES, "a");
	if (f) {
		fprintf(f, "%s %s %d %p\n", scenario, name, ast_get_tid(), lock);
		fclose(f);
	}
	/* A line in `full` with this thread's LWP, as real threads leave. */
	ast_log(LOG_NOTICE, "astdebug test %s: %s thread, lock %p\n", scenario, name, lock);
}

/* ABBA: the first takes A then wants B, the second takes B then wants A. */
static void *abba_first(void *unused)
{
	ast_mutex_lock(&lock_a);
	role("abba", "first", &lock_a);
	pthread_barrier_wait(&pair);
	ast_mutex_lock(&lock_b);
	return NULL;
}

static void *abba_second(void *unused)
{
	ast_mutex_lock(&lock_b);
	role("abba", "second", &lock_b);
	pthread_barrier_wait(&pair);
	ast_mutex_lock(&lock_a);
	return NULL;
}

static void *bystander(void *unused)
{
	role("abba", "bystander", &lock_a);
	ast_mutex_lock(&lock_a);
	return NULL;
}

/* A reader holds R and wants M; M's owner wants R as a writer. */
static void *rw_reader(void *unused)
{
	ast_rwlock_rdlock(&lock_r);
	role("rwcycle", "reader", &lock_r);
	pthread_barrier_wait(&pair);
	usleep(100000);
	ast_mutex_lock(&lock_m);
	return NULL;
}

static void *rw_writer(void *unused)
{
	ast_mutex_lock(&lock_m);
	role("rwcycle", "writer", &lock_m);
	pthread_barrier_wait(&pair);
	ast_rwlock_wrlock(&lock_r);
	return NULL;
}

/* Holds the channel cache that "core show channels" reads, sleeping. */
static void *hold_channels(void *unused)
{
	struct ao2_container *cache = ast_channel_cache_by_name();

	if (!cache) {
		role("channels", "nocache", NULL);
		return NULL;
	}
	ao2_wrlock(cache);
	role("channels", "holder", cache);
	for (;;) {
		usleep(200000);
	}
	return NULL;
}

static void *crash_thread(void *unused)
{
	volatile int *nowhere = NULL;

	role("segfault", "crasher", NULL);
	usleep(100000);
	*nowhere = 42;
	return NULL;
}

static void *abort_thread(void *unused)
{
	ast_mutex_lock(&lock_x);
	role("abort", "aborter", &lock_x);
	usleep(100000);
	abort();
	return NULL;
}

/* Wazo's xivo-res-freeze-check, as it ends: the ERROR naming the lock it
 * could not take, then abort() from the checker thread. */
static void *freeze_check_thread(void *unused)
{
	role("freezecheck", "checker", NULL);
	ast_log(LOG_ERROR, "failed to acquire the global queues container lock in under 30 seconds\n");
	ast_log(LOG_ERROR, "asterisk is most likely deadlocked: aborting...\n");
	usleep(200000);
	abort();
	return NULL;
}

/* The first task of "astdebug-blocked": its serving thread never comes back,
 * so every task pushed after it stays queued. */
static volatile int blocked_started;

static int blocking_task(void *tps)
{
	role("taskprocessor", "server", tps);
	ast_atomic_fetchadd_int(&blocked_started, 1);
	ast_mutex_lock(&lock_t);
	for (;;) {
		ast_cond_wait(&never, &lock_t);
	}
	return 0;
}

static int noop_task(void *unused)
{
	return 0;
}

static int start(void *(*fn)(void *))
{
	pthread_t id;

	return ast_pthread_create_detached(&id, NULL, fn, NULL);
}

static char *cli_scenario(struct ast_cli_entry *e, int cmd, struct ast_cli_args *a)
{
	const char *what;
	int i, n;

	switch (cmd) {
	case CLI_INIT:
		e->command = "astdebug test";
		e->usage = "Usage: astdebug test {abba [N]|rwcycle|channels|taskprocessor [N [COUNT]]|segfault|abort|freezecheck}\n"
			"       Puts Asterisk in a broken state, on purpose (wazo-astdebug's test bed).\n";
		return NULL;
	case CLI_GENERATE:
		return NULL;
	}
	if (a->argc < 3) {
		return CLI_SHOWUSAGE;
	}
	what = a->argv[2];
	if (!strcmp(what, "abba")) {
		n = a->argc > 3 ? atoi(a->argv[3]) : 0;
		pthread_barrier_init(&pair, NULL, 2);
		start(abba_first);
		start(abba_second);
		usleep(300000);
		for (i = 0; i < n; i++) {
			start(bystander);
		}
		usleep(300000 + n * 2000);
	} else if (!strcmp(what, "rwcycle")) {
		pthread_barrier_init(&pair, NULL, 2);
		start(rw_reader);
		start(rw_writer);
		usleep(500000);
	} else if (!strcmp(what, "channels")) {
		start(hold_channels);
		usleep(300000);
	} else if (!strcmp(what, "taskprocessor")) {
		/* Above the default high water mark (500): Asterisk logs its warning. */
		int count = a->argc > 4 ? atoi(a->argv[4]) : 1;
		int t, started, wait;

		n = a->argc > 3 ? atoi(a->argv[3]) : 600;
		for (t = 0; t < count; t++) {
			char name[64];
			struct ast_taskprocessor *tps;

			/* The first keeps the plain name the tests look for. */
			if (t) {
				snprintf(name, sizeof(name), "astdebug-blocked-%d", t + 1);
			} else {
				snprintf(name, sizeof(name), "astdebug-blocked");
			}
			/* Never unreferenced: its thread is stuck for good. */
			tps = ast_taskprocessor_get(name, TPS_REF_DEFAULT);
			if (!tps) {
				ast_cli(a->fd, "astdebug test taskprocessor: no taskprocessor %s\n", name);
				return CLI_FAILURE;
			}
			started = blocked_started;
			ast_taskprocessor_push(tps, blocking_task, tps);
			/* Its role written before the CLI says "in place", even on a loaded machine. */
			for (wait = 0; blocked_started == started && wait < 1000; wait++) {
				usleep(10000);
			}
			for (i = 0; i < n; i++) {
				ast_taskprocessor_push(tps, noop_task, NULL);
			}
		}
	} else if (!strcmp(what, "segfault")) {
		start(crash_thread);
		usleep(50000);
	} else if (!strcmp(what, "abort")) {
		start(abort_thread);
		usleep(50000);
	} else if (!strcmp(what, "freezecheck")) {
		start(freeze_check_thread);
		usleep(50000);
	} else {
		return CLI_SHOWUSAGE;
	}
	ast_cli(a->fd, "astdebug test %s: in place\n", what);
	return CLI_SUCCESS;
}

static struct ast_cli_entry cli_entries[] = {
	AST_CLI_DEFINE(cli_scenario, "Break Asterisk on purpose (test bed)"),
};

static int load_module(void)
{
	ast_mutex_init(&lock_a);
	ast_mutex_init(&lock_b);
	ast_mutex_init(&lock_m);
	ast_mutex_init(&lock_x);
	ast_rwlock_init(&lock_r);
	ast_mutex_init(&lock_t);
	ast_cond_init(&never, NULL);
	ast_cli_register_multiple(cli_entries, ARRAY_LEN(cli_entries));
	return AST_MODULE_LOAD_SUCCESS;
}

static int unload_module(void)
{
	/* A thread may still block on the locks: this module never unloads. */
	return -1;
}

AST_MODULE_INFO_STANDARD(ASTERISK_GPL_KEY, "wazo-astdebug test bed");
