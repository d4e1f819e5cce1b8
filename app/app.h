/*
 * app.h - the subcommands of the `ticketing` binary (DESIGN.md section 2) and the table of
 * bounded contexts they start. Private to app/.
 */
#ifndef TK_APP_H
#define TK_APP_H

#include "tk/http.h"

/* One bounded context as the binary sees it. */
typedef struct tk_app_context {
    const char *name;                      /* "auth", "tickets", ... */
    void (*routes)(tk_http_server_t *srv); /* registers REST routes; NULL when none */
} tk_app_context_t;

/** @brief The context called @p name, or NULL. */
const tk_app_context_t *tk_app_context_find(const char *name);
/** @brief Contexts in start order; NULL-terminated. */
const tk_app_context_t *const *tk_app_contexts(void);

/** @brief Set by SIGINT/SIGTERM; every long-running subcommand polls it. */
extern volatile int tk_app_stop;
void tk_app_install_signals(void);

int tk_app_serve(int argc, char **argv);
int tk_app_migrate(int argc, char **argv);
int tk_app_topics(int argc, char **argv);

#endif
