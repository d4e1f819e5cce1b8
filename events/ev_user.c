/*
 * ev_user.c - codec of user:registered.
 *
 * The email rule is deliberately loose (one '@' with something on each side, at most 254 bytes):
 * the auth context validates addresses on sign-up, and an event that was accepted then must stay
 * readable even if that validator changes. The JSON Schema states the same rule as a pattern.
 */
#include "ev_user.h"
#include "ev_json_int.h"

#include <string.h>

json_t *ev_user_registered_to_json(const ev_user_registered_t *e)
{
    if (e == NULL)
        return NULL;
    return ev__object("id", ev__str(e->id), "email", ev__str(e->email), NULL);
}

int ev_user_registered_from_json(const json_t *data, ev_user_registered_t *out, tk_err_t *err)
{
    int rc = 0;
    memset(out, 0, sizeof(*out));
    if ((rc = ev__want_object(data, "data", err)) != 0)
        goto out;
    if ((rc = ev__get_uuid(data, "id", "id", out->id, err)) != 0)
        goto out;
    if ((rc = ev__get_string(data, "email", "email", out->email, sizeof(out->email), 3, err)) != 0)
        goto out;
    const char *at = strchr(out->email, '@');
    if (at == NULL || at == out->email || at[1] == '\0' || strchr(at + 1, '@') != NULL) {
        rc = tk_err_set(err, TK_EINVAL, "email",
                        "email must hold exactly one '@' between two "
                        "non-empty parts");
        goto out;
    }
out:
    return rc;
}
