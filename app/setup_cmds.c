/*
 * setup_cmds.c - `ticketing migrate` and `ticketing topics`: idempotent creation of the
 * databases/tables of every context and of the Kafka topics of DESIGN.md section 3.
 */
#include "app.h"
#include "tk/kafka.h"
#include "tk/migrate.h"

#include <stdio.h>

int tk_app_migrate(int argc, char **argv)
{
    tk_err_t err = {0};
    if (tk_migrate_all(&err) != 0) {
        fprintf(stderr, "ticketing migrate: %s\n", err.message);
        return 1;
    }
    printf("migrations applied\n");
    return 0;
}

int tk_app_topics(int argc, char **argv)
{
    tk_err_t err = {0};
    if (tk_kafka_topics_create(&err) != 0) {
        fprintf(stderr, "ticketing topics: %s\n", err.message);
        return 1;
    }
    printf("topics ready\n");
    return 0;
}
