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

static const ev__field_t registered_fields[] = {
    EV__F_UUID(ev_user_registered_t, "id", id),
    EV__F_STRING(ev_user_registered_t, "email", email, 3),
};

int ev_user_registered_from_json(const json_t *data, ev_user_registered_t *out, tk_err_t *err)
{
    int rc = EV__DECODE(data, registered_fields, out, err);
    if (rc != 0)
        return rc;
    const char *at = strchr(out->email, '@');
    if (at == NULL || at == out->email || at[1] == '\0' || strchr(at + 1, '@') != NULL)
        return tk_err_set(err, TK_EINVAL, "email",
                          "email must hold exactly one '@' between two non-empty parts");
    return 0;
}
