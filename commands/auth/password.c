/*
 * password.c - scrypt hashing. N=2^14, r=8, p=1 and a 64-byte key, as Node's
 * crypto.scrypt defaults the original used; about 16 MiB and tens of milliseconds per hash,
 * which is why signup and signin hash on a worker thread and outside any transaction.
 */
#include "password.h"
#include "tk/mem.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SALT_LEN 16
#define KEY_LEN 64
#define DEFAULT_N 16384ULL
#define DEFAULT_R 8ULL
#define DEFAULT_P 1ULL
#define MAX_N (1ULL << 20)

static int derive(const char *password, const unsigned char *salt, size_t salt_len,
                  unsigned long long n, unsigned long long r, unsigned long long p,
                  unsigned char key[KEY_LEN])
{
    uint64_t maxmem = 128 * r * n + 128 * r * p + 1024 * 1024;
    return EVP_PBE_scrypt(password, strlen(password), salt, salt_len, n, r, p, maxmem, key,
                          KEY_LEN) == 1
               ? 0
               : TK_EINTERNAL;
}

int tk_password_hash(const char *password, char **out, tk_err_t *err)
{
    unsigned char salt[SALT_LEN], key[KEY_LEN];
    char salt_b64[64], key_b64[128];
    if (RAND_bytes(salt, sizeof(salt)) != 1)
        return tk_err_set(err, TK_EINTERNAL, NULL, "no randomness for the salt");
    if (derive(password, salt, sizeof(salt), DEFAULT_N, DEFAULT_R, DEFAULT_P, key) != 0)
        return tk_err_set(err, TK_EINTERNAL, NULL, "scrypt failed");
    EVP_EncodeBlock((unsigned char *)salt_b64, salt, sizeof(salt));
    EVP_EncodeBlock((unsigned char *)key_b64, key, sizeof(key));
    size_t cap = strlen(salt_b64) + strlen(key_b64) + 64;
    *out = tk_mem_alloc(cap);
    snprintf(*out, cap, "scrypt$%llu$%llu$%llu$%s$%s", DEFAULT_N, DEFAULT_R, DEFAULT_P, salt_b64,
             key_b64);
    OPENSSL_cleanse(key, sizeof(key));
    return 0;
}

/* Decodes standard base64 of exactly @p want bytes. */
static bool b64_exact(const char *in, size_t len, unsigned char *out, size_t want)
{
    unsigned char buf[256];
    if (len == 0 || len % 4 != 0 || len / 4 * 3 > sizeof(buf))
        return false;
    int n = EVP_DecodeBlock(buf, (const unsigned char *)in, (int)len);
    if (n < 0)
        return false;
    if (in[len - 1] == '=')
        n--;
    if (in[len - 2] == '=')
        n--;
    if ((size_t)n != want)
        return false;
    memcpy(out, buf, want);
    return true;
}

bool tk_password_verify(const char *password, const char *stored)
{
    unsigned long long n, r, p;
    int salt_at = 0, salt_end = 0, key_at = 0;
    if (stored == NULL ||
        sscanf(stored, "scrypt$%llu$%llu$%llu$%n%*[^$]%n$%n", &n, &r, &p, &salt_at, &salt_end,
               &key_at) != 3 ||
        key_at == 0)
        return false;
    if (n < 2 || n > MAX_N || (n & (n - 1)) != 0 || r == 0 || r > 32 || p == 0 || p > 16)
        return false;
    unsigned char salt[SALT_LEN], want[KEY_LEN], got[KEY_LEN];
    if (!b64_exact(stored + salt_at, (size_t)(salt_end - salt_at), salt, sizeof(salt)) ||
        !b64_exact(stored + key_at, strlen(stored + key_at), want, sizeof(want)))
        return false;
    if (derive(password, salt, sizeof(salt), n, r, p, got) != 0)
        return false;
    bool ok = CRYPTO_memcmp(got, want, KEY_LEN) == 0;
    OPENSSL_cleanse(got, sizeof(got));
    return ok;
}
