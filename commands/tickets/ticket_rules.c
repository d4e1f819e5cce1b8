/*
 * ticket_rules.c - the tickets context's pure rules: body validation, the decide functions of
 * an edit and of a reservation change, and the ticket's JSON. No I/O, so
 * tests/unit/test_tickets_rules.c covers every branch.
 *
 * Validation follows the original's express-validator chain: `title` must be a non-empty string
 * (not trimmed: the original's isEmpty() counted blanks as content) and `price` a number or a
 * numeric string greater than 0 (isFloat({gt: 0})). Prices become int64 cents at once, rounded
 * half away from zero, so 0.001 counts as 0 and is refused.
 */
#include "tickets.h"

#include <string.h>

#include "ev_money.h"
#include "tk/http.h"

int tk_ticket_input_parse(const json_t *body, tk_ticket_input_t *out, json_t *errors)
{
    size_t before = json_array_size(errors);
    const json_t *title = json_object_get(body, "title");
    const json_t *price = json_object_get(body, "price");

    memset(out, 0, sizeof(*out));
    if (!json_is_string(title) || json_string_length(title) == 0 ||
        strlen(json_string_value(title)) != json_string_length(title))
        tk_http_errors_add(errors, "title", "Title is required");
    else if (json_string_length(title) > EV_TITLE_MAX)
        tk_http_errors_add(errors, "title", "Title must be at most 256 bytes long");
    else
        memcpy(out->title, json_string_value(title), json_string_length(title) + 1);

    tk_err_t err = {0};
    int64_t cents = 0;
    if (ev_money_from_json(price, true, &cents, &err) != 0 &&
        strstr(err.message, "at most") != NULL)
        tk_http_errors_add(errors, "price", "Price must be at most 1000000000");
    else if (err.code != 0 || cents <= 0)
        tk_http_errors_add(errors, "price", "Price must be greater than 0");
    else
        out->price_cents = cents;
    return json_array_size(errors) > before ? TK_EINVAL : 0;
}

int tk_ticket_decide_update(const tk_ticket_t *t, const char *user_id, tk_err_t *err)
{
    /* The original checks the reservation before the owner; clients rely on the 400. */
    if (t->order_id[0] != '\0')
        return tk_err_set(err, TK_EINVAL, NULL, "Cannot edit a reserved ticket");
    if (user_id == NULL || strcmp(t->user_id, user_id) != 0)
        return tk_err_set(err, TK_EUNAUTH, NULL, "Not authorized");
    return 0;
}

bool tk_ticket_decide_holder(const tk_ticket_t *t, const char *holder)
{
    return strcmp(t->order_id, holder) != 0;
}

json_t *tk_ticket_to_json(const tk_ticket_t *t)
{
    json_t *j = json_pack("{s:s, s:s, s:o, s:s, s:I}", "id", t->id, "title", t->title, "price",
                          ev_money_to_json(t->price_cents), "userId", t->user_id, "version",
                          (json_int_t)t->version);
    if (j != NULL && t->order_id[0] != '\0')
        json_object_set_new(j, "orderId", json_string(t->order_id));
    return j;
}
