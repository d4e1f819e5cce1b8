/*
 * mem.h - allocation wrappers that abort on out-of-memory (as h2o does): callers never carry
 * an ENOMEM path for a condition the process cannot recover from anyway.
 */
#ifndef TK_MEM_H
#define TK_MEM_H

#include <stddef.h>

/** @brief malloc or abort. Ownership: owned, free with free(). */
void *tk_mem_alloc(size_t size);
/** @brief calloc(1, size) or abort. Ownership: owned, free with free(). */
void *tk_mem_zalloc(size_t size);
/** @brief strdup or abort; NULL in gives NULL out. Ownership: owned, free with free(). */
char *tk_mem_strdup(const char *s);
/** @brief strndup or abort. Ownership: owned, free with free(). */
char *tk_mem_strndup(const char *s, size_t n);

/**
 * @brief Make room for @p need elements of @p size bytes in the array @p p of capacity @p *cap
 *        (elements), doubling it (from 16) as needed; realloc or abort.
 * @return the array, moved or not; *cap updated. Ownership: @p p consumed, the result owned
 *         (free with free()). Use: v = tk_mem_grow(v, &cap, n + 1, sizeof(*v)); v[n++] = x;
 */
void *tk_mem_grow(void *p, size_t *cap, size_t need, size_t size);

/**
 * @brief Bound what glibc's malloc keeps of memory the process freed: at most 2 arenas (not 8 per
 *        core, one per thread that allocates), and blocks from 128 KiB up mapped on their own, so
 *        freeing one gives it back (glibc otherwise raises that threshold to the largest block
 *        freed, up to 32 MiB, and keeps such blocks in its arenas). For a process of many threads
 *        that pass large buffers around (librdkafka's fetches, projector batches). Call before
 *        any thread starts; MALLOC_ARENA_MAX and MALLOC_MMAP_THRESHOLD_ in the environment win.
 */
void tk_mem_bound_heap(void);

#endif
