/*
 * err.c - filling and naming tk_err_t. Nothing here prints: errors are returned and logged
 * once at the boundary that owns the request or the message.
 */
#include "tk/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void tk_err_clear(tk_err_t *err)
{
    if (err == NULL)
        return;
    err->code = 0;
    err->field[0] = '\0';
    err->message[0] = '\0';
}

int tk_err_set(tk_err_t *err, int code, const char *field, const char *fmt, ...)
{
    if (err == NULL)
        return code;
    err->code = code;
    snprintf(err->field, sizeof(err->field), "%s", field ? field : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    return code;
}

const char *tk_err_name(int code)
{
    switch (code) {
    case TK_OK:
        return "TK_OK";
    case TK_EINVAL:
        return "TK_EINVAL";
    case TK_ELIMIT:
        return "TK_ELIMIT";
    case TK_ENOTFOUND:
        return "TK_ENOTFOUND";
    case TK_ECONFLICT:
        return "TK_ECONFLICT";
    case TK_EUNAUTH:
        return "TK_EUNAUTH";
    case TK_EUNAVAIL:
        return "TK_EUNAVAIL";
    case TK_EINTERNAL:
        return "TK_EINTERNAL";
    case TK_ETOOLARGE:
        return "TK_ETOOLARGE";
    case TK_EBADGATEWAY:
        return "TK_EBADGATEWAY";
    }
    return "TK_E?";
}
