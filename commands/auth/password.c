/*
 * password.c - scrypt hashing, 64-byte key. The original used Node's crypto.scrypt defaults
 * (N=2^14, r=8, p=1: 16 MiB); new hashes use OWASP's current recommendation, N=2^17, r=8, p=1
 * (SCRYPT_LOG2_N, 128 MiB and a few hundred milliseconds per hash). Old hashes keep verifying
 * with the parameters stored in them and are re-hashed on their next successful sign-in.
 *
 * Memory is the cost to bound: each hash holds 128 * r * N bytes while it runs, so at most
 * SCRYPT_CONCURRENCY (default 2, one per core here: more would only queue on the CPU) run at once
 * in a process, whatever the number of HTTP workers: 256 MiB at the default. A caller that cannot
 * get a slot within SLOT_WAIT_MS gets TK_EUNAVAIL (503 + Retry-After) rather than waiting without
 * bound. Hashing runs on a worker thread and outside any transaction.
 */
#include "password.h"
#include "tk/cfg.h"
#include "tk/mem.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <semaphore.h>
#include <errno.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SALT_LEN 16
#define KEY_LEN 64
#define DEFAULT_R 8ULL
#define DEFAULT_P 1ULL
#define MAX_N (1ULL << 20)
#define SLOT_WAIT_MS 10000

static unsigned long long current_n(void)
{
    return 1ULL << tk_cfg()->scrypt_log2_n;
}

static sem_t slots;
static pthread_once_t slots_once = PTHREAD_ONCE_INIT;

static void slots_init(void)
{
    sem_init(&slots, 0, (unsigned)tk_cfg()->scrypt_concurrency);
}

static int slot_acquire(tk_err_t *err)
{
    pthread_once(&slots_once, slots_init);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += SLOT_WAIT_MS / 1000;
    while (sem_timedwait(&slots, &until) != 0) {
        if (errno != EINTR)
            return tk_err_set(err, TK_EUNAVAIL, NULL, "Too many sign-ins at once, retry shortly");
    }
    return 0;
}

static void slot_release(void)
{
    sem_post(&slots);
}

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
    unsigned long long n = current_n();
    if (RAND_bytes(salt, sizeof(salt)) != 1)
        return tk_err_set(err, TK_EINTERNAL, NULL, "no randomness for the salt");
    int rc = slot_acquire(err);
    if (rc != 0)
        return rc;
    rc = derive(password, salt, sizeof(salt), n, DEFAULT_R, DEFAULT_P, key);
    slot_release();
    if (rc != 0)
        return tk_err_set(err, TK_EINTERNAL, NULL, "scrypt failed");
    EVP_EncodeBlock((unsigned char *)salt_b64, salt, sizeof(salt));
    EVP_EncodeBlock((unsigned char *)key_b64, key, sizeof(key));
    size_t cap = strlen(salt_b64) + strlen(key_b64) + 64;
    *out = tk_mem_alloc(cap);
    snprintf(*out, cap, "scrypt$%llu$%llu$%llu$%s$%s", n, DEFAULT_R, DEFAULT_P, salt_b64, key_b64);
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

/* Parses a stored hash: its parameters and where its salt and key are. */
static bool parse(const char *stored, unsigned long long *n, unsigned long long *r,
                  unsigned long long *p, int *salt_at, int *salt_end, int *key_at)
{
    *salt_at = *salt_end = *key_at = 0;
    if (stored == NULL ||
        sscanf(stored, "scrypt$%llu$%llu$%llu$%n%*[^$]%n$%n", n, r, p, salt_at, salt_end, key_at) !=
            3 ||
        *key_at == 0)
        return false;
    return !(*n < 2 || *n > MAX_N || (*n & (*n - 1)) != 0 || *r == 0 || *r > 32 || *p == 0 ||
             *p > 16);
}

int tk_password_check(const char *password, const char *stored, tk_err_t *err)
{
    unsigned long long n, r, p;
    int salt_at, salt_end, key_at;
    if (!parse(stored, &n, &r, &p, &salt_at, &salt_end, &key_at))
        return 0;
    unsigned char salt[SALT_LEN], want[KEY_LEN], got[KEY_LEN];
    if (!b64_exact(stored + salt_at, (size_t)(salt_end - salt_at), salt, sizeof(salt)) ||
        !b64_exact(stored + key_at, strlen(stored + key_at), want, sizeof(want)))
        return 0;
    int rc = slot_acquire(err);
    if (rc != 0)
        return rc;
    rc = derive(password, salt, sizeof(salt), n, r, p, got);
    slot_release();
    if (rc != 0)
        return 0;
    bool ok = CRYPTO_memcmp(got, want, KEY_LEN) == 0;
    OPENSSL_cleanse(got, sizeof(got));
    return ok ? 1 : 0;
}

bool tk_password_outdated(const char *stored)
{
    unsigned long long n, r, p;
    int salt_at, salt_end, key_at;
    return parse(stored, &n, &r, &p, &salt_at, &salt_end, &key_at) &&
           (n != current_n() || r != DEFAULT_R || p != DEFAULT_P);
}

static char dummy[200];
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;

static void dummy_init(void)
{
    snprintf(dummy, sizeof(dummy),
             "scrypt$%llu$%llu$%llu$AAAAAAAAAAAAAAAAAAAAAA==$"
             "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
             "AA==",
             current_n(), DEFAULT_R, DEFAULT_P);
}

const char *tk_password_dummy(void)
{
    pthread_once(&dummy_once, dummy_init);
    return dummy;
}
