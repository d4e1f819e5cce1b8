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

#endif
