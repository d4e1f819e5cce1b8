/*
 * client_addr.h - who the client is, for per-address limits (DESIGN.md section 5, sign-in
 * throttling): the connection's peer, unless the peer is a trusted proxy (TRUSTED_PROXIES), in
 * which case the forwarding headers it set are believed.
 */
#ifndef TK_CLIENT_ADDR_H
#define TK_CLIENT_ADDR_H

#include <stdbool.h>
#include <stddef.h>

#define TK_CLIENT_ADDR_MAX 46 /* INET6_ADDRSTRLEN */

/**
 * @brief True when @p addr (an IPv4 or IPv6 address in text) is in @p trusted, a list of
 *        addresses and CIDR prefixes separated by commas or spaces ("127.0.0.1, ::1,
 *        10.0.0.0/8"). A malformed entry matches nothing.
 */
bool tk_client_addr_trusted(const char *addr, const char *trusted);

/**
 * @brief The client's address: @p peer when it is not trusted; otherwise the right-most address
 *        of @p forwarded_for (X-Forwarded-For, each proxy appends the one it saw) that is not
 *        itself trusted, or, without that header, @p real_ip (X-Real-IP); the peer when neither
 *        gives a valid address. Header entries that are not IP addresses are ignored.
 * @param out receives the address text (at least TK_CLIENT_ADDR_MAX bytes).
 *        All parameters borrowed; @p forwarded_for and @p real_ip may be NULL.
 */
void tk_client_addr_resolve(const char *peer, const char *forwarded_for, const char *real_ip,
                            const char *trusted, char out[TK_CLIENT_ADDR_MAX]);

#endif
