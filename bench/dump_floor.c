/* The least work a reader of `core show locks` must do to build its
 * wait-for graph: what bench/graph.sh times `graph` against, beside grep.
 *
 * grep -c 'Thread ID' and wc -l only skim the bytes. Any reader that finds
 * who waits for whom must also, for each `===` line, read the thread id or
 * the lock's address as a number, look it up in a table and record the
 * claim. This does exactly that and nothing else: no names, no sites, no
 * cycles, no checks of what it reads (it trusts the bench's own format),
 * one read(2) buffer at the same place in its page as graph's
 * (src/host/read_buffer.rs). It prints what it counted, so a run that read
 * nothing shows.
 *
 * Built by bench/graph.sh: cc -O2 -o dump_floor bench/dump_floor.c
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BUFFER (256 << 10)

/* Open addressing, keys mixed as graph's lookup tables mix them. */
struct table {
    uint64_t *keys;
    uint32_t *values;
    size_t mask, used;
};

static uint64_t mix(uint64_t value)
{
    uint64_t mixed = (value ^ value >> 31) * 0x9e3779b97f4a7c15ull;
    return mixed ^ mixed >> 29;
}

static void table_init(struct table *t, size_t slots)
{
    t->keys = calloc(slots, sizeof *t->keys);
    t->values = calloc(slots, sizeof *t->values);
    t->mask = slots - 1;
    t->used = 0;
    if (!t->keys || !t->values) {
        perror("calloc");
        exit(1);
    }
}

static uint32_t table_get_or_add(struct table *t, uint64_t key);

static void table_grow(struct table *t)
{
    struct table old = *t;
    table_init(t, (old.mask + 1) * 2);
    for (size_t i = 0; i <= old.mask; i++)
        if (old.values[i]) {
            size_t slot = mix(old.keys[i]) & t->mask;
            while (t->values[slot])
                slot = (slot + 1) & t->mask;
            t->keys[slot] = old.keys[i];
            t->values[slot] = old.values[i];
            t->used++;
        }
    free(old.keys);
    free(old.values);
}

/* 1-based index of `key`, added when new. */
static uint32_t table_get_or_add(struct table *t, uint64_t key)
{
    if (2 * (t->used + 1) > t->mask + 1)
        table_grow(t);
    size_t slot = mix(key) & t->mask;
    while (t->values[slot]) {
        if (t->keys[slot] == key)
            return t->values[slot];
        slot = (slot + 1) & t->mask;
    }
    t->keys[slot] = key;
    t->values[slot] = (uint32_t)++t->used;
    return t->values[slot];
}

static uint64_t hex(const char *p, const char *end)
{
    uint64_t value = 0;
    if (end - p > 2 && p[0] == '0' && p[1] == 'x')
        p += 2;
    for (; p < end; p++) {
        char c = *p;
        unsigned digit = c <= '9' ? (unsigned)(c - '0') : (unsigned)((c | 0x20) - 'a' + 10);
        value = value << 4 | (digit & 15);
    }
    return value;
}

struct claim {
    uint32_t thread, lock, wait;
};

static struct claim *claims;
static size_t nclaims, claims_cap;
static struct table threads, locks;
static uint32_t current;

static void line(const char *p, const char *end)
{
    static const char thread_prefix[] = "=== Thread ID: ";
    static const char lock_prefix[] = "=== ---> ";
    size_t length = (size_t)(end - p);
    if (length > sizeof thread_prefix - 1 && !memcmp(p, thread_prefix, sizeof thread_prefix - 1)) {
        const char *id = p + sizeof thread_prefix - 1;
        const char *space = memchr(id, ' ', (size_t)(end - id));
        current = table_get_or_add(&threads, hex(id, space ? space : end));
    } else if (length > sizeof lock_prefix - 1 && !memcmp(p, lock_prefix, sizeof lock_prefix - 1)) {
        /* `... ADDRESS (COUNT)`: the address is the word before the last. */
        const char *last = memrchr(p, ' ', length);
        if (!last)
            return;
        const char *before = memrchr(p, ' ', (size_t)(last - p));
        if (!before)
            return;
        if (nclaims == claims_cap) {
            claims_cap = claims_cap ? claims_cap * 2 : 1024;
            claims = realloc(claims, claims_cap * sizeof *claims);
            if (!claims) {
                perror("realloc");
                exit(1);
            }
        }
        claims[nclaims].thread = current;
        claims[nclaims].lock = table_get_or_add(&locks, hex(before + 1, last));
        claims[nclaims].wait = p[9] == 'W';
        nclaims++;
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DUMP\n", argv[0]);
        return 2;
    }
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) {
        perror(argv[1]);
        return 1;
    }
    char *raw = malloc(BUFFER + 8192);
    if (!raw) {
        perror("malloc");
        return 1;
    }
    char *buffer = raw + (2048 + 4096 - (uintptr_t)raw % 4096) % 4096;
    table_init(&threads, 1024);
    table_init(&locks, 1024);
    size_t carry = 0, lines = 0;
    for (;;) {
        ssize_t got = read(fd, buffer + carry, BUFFER - carry);
        if (got < 0) {
            perror("read");
            return 1;
        }
        if (got == 0)
            break;
        size_t filled = carry + (size_t)got, start = 0;
        char *newline;
        while ((newline = memchr(buffer + start, '\n', filled - start))) {
            if (buffer[start] == '=')
                line(buffer + start, newline);
            lines++;
            start = (size_t)(newline - buffer) + 1;
        }
        carry = filled - start;
        if (carry == BUFFER)
            carry = 0; /* a line longer than the buffer: dropped */
        memmove(buffer, buffer + start, carry);
    }
    /* The graph's edges: each wait on a lock someone holds. */
    uint32_t *holder = calloc(locks.used + 1, sizeof *holder);
    size_t edges = 0;
    for (size_t i = 0; i < nclaims; i++)
        if (!claims[i].wait)
            holder[claims[i].lock] = claims[i].thread;
    for (size_t i = 0; i < nclaims; i++)
        if (claims[i].wait && holder[claims[i].lock])
            edges++;
    printf("%zu lines, %zu threads, %zu locks, %zu claims, %zu waits on a held lock\n", lines,
           threads.used, locks.used, nclaims, edges);
    return 0;
}
