/*
 * ev_user.h - the auth context's events (DESIGN.md section 3): user:registered on topic "users".
 * Data schema: schemas/events/user.registered.v1.json.
 */
#ifndef EV_USER_H
#define EV_USER_H

#include <jansson.h>

#include "tk/err.h"
#include "tk/ids.h"

#define EV_EMAIL_MAX 254 /* bytes, RFC 5321's limit on a forward path */

/** user:registered data: {"id":<uuid>,"email":<string with one '@'>}. */
typedef struct ev_user_registered {
    char id[TK_UUID_LEN + 1];
    char email[EV_EMAIL_MAX + 1]; /* 3..254 bytes, exactly one '@' neither first nor last */
} ev_user_registered_t;

/**
 * @brief The data member of a user:registered event.
 * @param e borrowed. Serialises as is; ev_envelope_init validates the result.
 * @return Ownership: owned new reference (json_decref), NULL when @p e is NULL or a string is not
 *         UTF-8.
 */
json_t *ev_user_registered_to_json(const ev_user_registered_t *e);

/**
 * @brief Strictly decode user:registered data. Unknown members are ignored.
 * @param data borrowed. @param out zeroed, then filled; meaningful only on success.
 * @return 0, or TK_EINVAL with the member's path in err->field.
 */
int ev_user_registered_from_json(const json_t *data, ev_user_registered_t *out, tk_err_t *err);

#endif
