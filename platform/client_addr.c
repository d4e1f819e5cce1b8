/*
 * client_addr.c - the client address behind trusted proxies. X-Forwarded-For is a list each
 * proxy appends its peer to, so only its right end is trustworthy: walking from the right, every
 * address that is a trusted proxy is skipped and the first one that is not is the client (a
 * client can put anything on the left, which is never reached while a real hop is found). A peer
 * that is not trusted has its headers ignored altogether: anyone can send them. Pure functions.
 */
#include "tk/client_addr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parses @p text (len bytes) as an address into @p bytes; returns 4, 16 or 0. */
static int parse_addr(const char *text, size_t len, unsigned char bytes[16])
{
    char buf[TK_CLIENT_ADDR_MAX];
    if (len == 0 || len >= sizeof(buf))
        return 0;
    memcpy(buf, text, len);
    buf[len] = '\0';
    if (inet_pton(AF_INET, buf, bytes) == 1)
        return 4;
    if (inet_pton(AF_INET6, buf, bytes) == 1) {
        /* An IPv4-mapped IPv6 address is that IPv4 address. */
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(bytes, mapped, sizeof(mapped)) == 0) {
            memmove(bytes, bytes + 12, 4);
            return 4;
        }
        return 16;
    }
    return 0;
}

/* Does entry "addr" or "addr/bits" (len bytes) contain the address @p a of @p alen bytes? */
static bool entry_matches(const char *entry, size_t len, const unsigned char *a, int alen)
{
    const char *slash = memchr(entry, '/', len);
    size_t alen_text = slash ? (size_t)(slash - entry) : len;
    unsigned char net[16];
    int nlen = parse_addr(entry, alen_text, net);
    if (nlen == 0 || nlen != alen)
        return false;
    long bits = nlen * 8;
    if (slash != NULL) {
        char tmp[8];
        size_t blen = len - alen_text - 1;
        if (blen == 0 || blen >= sizeof(tmp))
            return false;
        memcpy(tmp, slash + 1, blen);
        tmp[blen] = '\0';
        char *end = NULL;
        bits = strtol(tmp, &end, 10);
        if (*end != '\0' || bits < 0 || bits > nlen * 8)
            return false;
    }
    for (long i = 0; i < bits; i++) {
        unsigned char m = (unsigned char)(0x80 >> (i % 8));
        if ((a[i / 8] & m) != (net[i / 8] & m))
            return false;
    }
    return true;
}

static bool trusted_bytes(const unsigned char *a, int alen, const char *trusted)
{
    const char *p = trusted;
    while (p != NULL && *p) {
        while (*p == ',' || *p == ' ')
            p++;
        size_t len = strcspn(p, ", ");
        if (len > 0 && entry_matches(p, len, a, alen))
            return true;
        p += len;
    }
    return false;
}

bool tk_client_addr_trusted(const char *addr, const char *trusted)
{
    unsigned char a[16];
    int alen = addr ? parse_addr(addr, strlen(addr), a) : 0;
    return alen != 0 && trusted_bytes(a, alen, trusted);
}

/* Copies [s, s+len) trimmed of spaces into @p out when it is an address; true then. */
static bool take(const char *s, size_t len, char out[TK_CLIENT_ADDR_MAX], bool *is_trusted,
                 const char *trusted)
{
    while (len > 0 && (*s == ' ' || *s == '\t'))
        s++, len--;
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    unsigned char a[16];
    int alen = parse_addr(s, len, a);
    if (alen == 0)
        return false;
    memcpy(out, s, len);
    out[len] = '\0';
    *is_trusted = trusted_bytes(a, alen, trusted);
    return true;
}

void tk_client_addr_resolve(const char *peer, const char *forwarded_for, const char *real_ip,
                            const char *trusted, char out[TK_CLIENT_ADDR_MAX])
{
    snprintf(out, TK_CLIENT_ADDR_MAX, "%s", peer ? peer : "");
    if (!tk_client_addr_trusted(peer, trusted))
        return;
    char cand[TK_CLIENT_ADDR_MAX];
    bool cand_trusted = false;
    if (forwarded_for != NULL && *forwarded_for) {
        const char *end = forwarded_for + strlen(forwarded_for);
        while (end > forwarded_for) {
            const char *start = end;
            while (start > forwarded_for && start[-1] != ',')
                start--;
            if (take(start, (size_t)(end - start), cand, &cand_trusted, trusted)) {
                snprintf(out, TK_CLIENT_ADDR_MAX, "%s", cand);
                if (!cand_trusted)
                    return;
            }
            end = start > forwarded_for ? start - 1 : start;
        }
        return; /* every hop trusted: the left-most one is the client */
    }
    if (real_ip != NULL && take(real_ip, strlen(real_ip), cand, &cand_trusted, trusted))
        snprintf(out, TK_CLIENT_ADDR_MAX, "%s", cand);
}
