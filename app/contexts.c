/*
 * contexts.c - the table of bounded contexts compiled into the binary. A context joins by
 * adding one row; subcommands iterate this table instead of naming contexts.
 */
#include "app.h"
#include "auth.h"
#include "orders_context.h"
#include "payments_context.h"
#include "tickets_context.h"

#include <string.h>

static const tk_app_context_t auth = {"auth", tk_auth_routes, NULL, true};
static const tk_app_context_t tickets = {"tickets", tk_tickets_routes, tk_tickets_projectors, true};
static const tk_app_context_t orders = {"orders", tk_orders_routes, tk_orders_projectors, true};
static const tk_app_context_t payments = {"payments", tk_payments_routes, tk_payments_projectors,
                                          true};
/* The scheduler is its own kind of worker (tk_expiration_run): no routes, projectors or outbox. */
static const tk_app_context_t expiration = {"expiration", NULL, NULL, false};

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
