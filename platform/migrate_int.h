/*
 * migrate_int.h - the migration files compiled into the binary. The table is generated at
 * configure time by cmake/TkEmbedSql.cmake from schemas/sql/<dir>/NNN_name.sql, sorted by
 * path, so a deployed binary needs no source tree.
 */
#ifndef TK_MIGRATE_INT_H
#define TK_MIGRATE_INT_H

#include <stddef.h>

typedef struct tk_migrate__file {
    const char *dir;  /* "common" or a context name */
    const char *name; /* "001_backbone.sql" */
    const char *sql;  /* the file's text, NUL-terminated */
} tk_migrate__file_t;

/* tk_migrate__nfiles entries, sorted by dir then name. */
extern const tk_migrate__file_t tk_migrate__files[];
extern const size_t tk_migrate__nfiles;

#endif
