/*
 * password.h - scrypt password hashing (OpenSSL EVP_PBE_scrypt) with the parameters stored
 * beside the hash, so they can be raised later without invalidating existing users.
 */
#ifndef TK_AUTH_PASSWORD_H
#define TK_AUTH_PASSWORD_H

#include <stdbool.h>

#include "tk/err.h"

/**
 * @brief Hash @p password with a fresh 16-byte random salt.
 * @param[out] out owned (free()): "scrypt$<N>$<r>$<p>$<salt b64>$<key b64>".
 */
int tk_password_hash(const char *password, char **out, tk_err_t *err);

/** @brief True when @p password matches @p stored; compares in constant time. */
bool tk_password_verify(const char *password, const char *stored);

#endif
