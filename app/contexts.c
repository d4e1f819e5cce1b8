/*
 * contexts.c - the bounded contexts compiled into the binary, in start order. Each context
 * describes itself in one descriptor (tk/context.h, commands/<context>/<context>_context.c);
 * a context joins by adding its descriptor here. Subcommands iterate this list instead of
 * naming contexts.
 */
#include "app.h"
#include "auth.h"
#include "expiration.h"
#include "orders_context.h"
#include "payments_context.h"
#include "tickets_context.h"

#include <string.h>

static const tk_context_t *const all[] = {&tk_auth_context,       &tk_tickets_context,
                                          &tk_orders_context,     &tk_payments_context,
                                          &tk_expiration_context, NULL};

const tk_context_t *const *tk_app_contexts(void)
{
    return all;
}

const tk_context_t *tk_app_context_find(const char *name)
{
    for (size_t i = 0; all[i] != NULL; i++)
        if (strcmp(all[i]->name, name) == 0)
            return all[i];
    return NULL;
}
