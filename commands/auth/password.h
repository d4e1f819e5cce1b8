/*
 * password.h - scrypt password hashing (OpenSSL EVP_PBE_scrypt) with the parameters stored
 * beside the hash, so they can be raised later without invalidating existing users: a hash made
 * with older parameters still verifies, and tk_password_outdated tells sign-in to re-hash it.
 */
#ifndef TK_AUTH_PASSWORD_H
#define TK_AUTH_PASSWORD_H

#include <stdbool.h>

#include "tk/err.h"

/**
 * @brief Hash @p password with a fresh 16-byte random salt and the configured cost
 *        (SCRYPT_LOG2_N, r=8, p=1).
 * @param[out] out owned (free()): "scrypt$<N>$<r>$<p>$<salt b64>$<key b64>".
 * @return 0; TK_EUNAVAIL when no hashing slot freed up in time (SCRYPT_CONCURRENCY hashes
 *         already run: each takes 128 * r * N bytes); TK_EINTERNAL.
 */
int tk_password_hash(const char *password, char **out, tk_err_t *err);

/**
 * @brief Does @p password match @p stored? Compares in constant time, with the parameters
 *        stored in the hash (a malformed hash matches nothing).
 * @return 1 match, 0 no match, TK_EUNAVAIL as tk_password_hash.
 */
int tk_password_check(const char *password, const char *stored, tk_err_t *err);

/** @brief True when @p stored was made with other parameters than new hashes get. */
bool tk_password_outdated(const char *stored);

/** @brief A well-formed hash of nothing, with the current parameters: sign-in verifies against
 *         it for an unknown email so the time taken does not tell. Static storage. */
const char *tk_password_dummy(void);

#endif
