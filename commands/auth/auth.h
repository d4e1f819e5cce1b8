/*
 * auth.h - the auth context: sign up, sign in, sign out, current user (DESIGN.md sections 5, 9).
 */
#ifndef TK_AUTH_H
#define TK_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "tk/context.h"
#include "tk/http.h"

/** @brief Register POST /api/users/{signup,signin,signout} and GET /api/users/currentuser, on
 *         @p database (borrowed, must outlive the server). */
void tk_auth_command_routes(tk_http_server_t *srv, const char *database);

/** The auth context (DESIGN.md section 2): users and sessions, no projectors (auth_context.c). */
extern const tk_context_t tk_auth_context;

/** @brief The email check of sign-up and sign-in (express-validator isEmail's common cases). */
bool tk_auth_email_valid(const char *email);

/**
 * @brief Trim ASCII whitespace from both ends of @p password into @p out (cap bytes).
 * @return the trimmed length in characters (UTF-8 code points), or -1 when it does not fit.
 */
long tk_auth_password_trim(const char *password, char *out, size_t cap);

#endif
