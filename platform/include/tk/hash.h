/*
 * hash.h - one non-cryptographic hash (64-bit FNV-1a) for the lookup tables of platform/: the
 * prepared statements of a connection (pg.c) and the remembered sessions (session.c). Both compare
 * the whole key after the hash matches; the hash only picks or skips a slot. Not for anything a
 * client could use to collide on purpose where a collision would matter.
 */
#ifndef TK_HASH_H
#define TK_HASH_H

#include <stddef.h>
#include <stdint.h>

/** @brief 64-bit FNV-1a of the @p len bytes at @p data. Pure. */
static inline uint64_t tk_hash_bytes(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

#endif
