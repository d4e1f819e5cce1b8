/*
 * static_int.h - the storefront's files compiled into the binary. The table is generated at
 * configure time by cmake/TkEmbedWeb.cmake from web/, sorted by path.
 */
#ifndef TK_STATIC_INT_H
#define TK_STATIC_INT_H

#include <stddef.h>

typedef struct tk_static__file {
    const char *path;          /* "/index.html", "/js/app.js": the URL path */
    const unsigned char *data; /* the file's bytes (NUL-terminated for convenience) */
    size_t len;
    const char *etag; /* "\"<20 hex digits of SHA-256>\"", quotes included */
} tk_static__file_t;

/* tk_static__nfiles entries, sorted by path. */
extern const tk_static__file_t tk_static__files[];
extern const size_t tk_static__nfiles;

#endif
