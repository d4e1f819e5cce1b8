/*
 * contexts.c - the table of bounded contexts compiled into the binary. A context joins by
 * adding one row; subcommands iterate this table instead of naming contexts.
 */
#include "app.h"

#include <string.h>

static const tk_app_context_t auth = {"auth", NULL};
static const tk_app_context_t tickets = {"tickets", NULL};
static const tk_app_context_t orders = {"orders", NULL};
static const tk_app_context_t payments = {"payments", NULL};
static const tk_app_context_t expiration = {"expiration", NULL};

static const tk_app_context_t *const all[] = {&auth,     &tickets,    &orders,
                                              &payments, &expiration, NULL};

const tk_app_context_t *const *tk_app_contexts(void)
{
    return all;
}

const tk_app_context_t *tk_app_context_find(const char *name)
{
    for (size_t i = 0; all[i] != NULL; i++)
        if (strcmp(all[i]->name, name) == 0)
            return all[i];
    return NULL;
}
