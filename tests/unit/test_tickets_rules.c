/*
 * test_tickets_rules.c - the tickets context's pure rules: body validation (T4, T5, T14 at the
 * unit level), the edit rule (reserved before owner, T13, T17), the reservation rule of the
 * reactions (T20, T23) and the ticket's JSON.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tk_test_json.h"
#include "tk_test_main.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tickets.h"

#define OWNER "11111111-1111-4111-8111-111111111111"
#define OTHER "22222222-2222-4222-8222-222222222222"
#define ORDER_A "33333333-3333-4333-8333-333333333333"
#define ORDER_B "44444444-4444-4444-8444-444444444444"

/* Parses @p body_text; returns the rc and leaves the errors array in *errors (owned). */
static int parse(const char *body_text, tk_ticket_input_t *in, json_t **errors)
{
    json_t *body = tk_test_json(body_text);
    *errors = json_array();
    int rc = tk_ticket_input_parse(body, in, *errors);
    json_decref(body);
    return rc;
}

static void valid_bodies(void **state)
{
    (void)state;
    tk_ticket_input_t in;
    json_t *errors;
    assert_int_equal(parse("{\"title\":\"concert\",\"price\":20}", &in, &errors), 0);
    assert_string_equal(in.title, "concert");
    assert_int_equal(in.price_cents, 2000);
    assert_int_equal(json_array_size(errors), 0);
    json_decref(errors);

    assert_int_equal(parse("{\"title\":\"x\",\"price\":\"19.99\"}", &in, &errors), 0);
    assert_int_equal(in.price_cents, 1999);
    json_decref(errors);

    assert_int_equal(parse("{\"title\":\" \",\"price\":0.01}", &in, &errors), 0);
    assert_int_equal(in.price_cents, 1);
    json_decref(errors);
}

/* Each of the @p n bodies is refused with one error: @p message on @p field (the failing body
 * is printed). */
static void refused_with_one_error(const char *const *bodies, size_t n, const char *field,
                                   const char *message)
{
    for (size_t i = 0; i < n; i++) {
        tk_ticket_input_t in;
        json_t *errors;
        print_message("body %s\n", bodies[i]);
        assert_int_equal(parse(bodies[i], &in, &errors), TK_EINVAL);
        assert_int_equal(json_array_size(errors), 1);
        assert_string_equal(tk_test_error_at(errors, 0, "message"), message);
        assert_string_equal(tk_test_error_at(errors, 0, "field"), field);
        json_decref(errors);
    }
}

/* T4: empty or missing title. */
static void invalid_title(void **state)
{
    (void)state;
    const char *bodies[] = {"{\"title\":\"\",\"price\":10}", "{\"price\":10}",
                            "{\"title\":5,\"price\":10}", "{\"title\":null,\"price\":10}"};
    refused_with_one_error(bodies, sizeof(bodies) / sizeof(bodies[0]), "title",
                           "Title is required");
    char body[400];
    char title[258];
    memset(title, 'a', 257);
    title[257] = '\0';
    snprintf(body, sizeof(body), "{\"title\":\"%s\",\"price\":1}", title);
    tk_ticket_input_t in;
    json_t *errors;
    assert_int_equal(parse(body, &in, &errors), TK_EINVAL);
    assert_string_equal(tk_test_error_at(errors, 0, "field"), "title");
    json_decref(errors);
    title[256] = '\0'; /* exactly 256 bytes is fine */
    snprintf(body, sizeof(body), "{\"title\":\"%s\",\"price\":1}", title);
    assert_int_equal(parse(body, &in, &errors), 0);
    json_decref(errors);
}

/* T5: negative, zero, missing or non-numeric price. */
static void invalid_price(void **state)
{
    (void)state;
    const char *bodies[] = {
        "{\"title\":\"t\",\"price\":-10}",   "{\"title\":\"t\"}",
        "{\"title\":\"t\",\"price\":0}",     "{\"title\":\"t\",\"price\":\"abc\"}",
        "{\"title\":\"t\",\"price\":0.001}", "{\"title\":\"t\",\"price\":[1]}",
        "{\"title\":\"t\",\"price\":true}"};
    refused_with_one_error(bodies, sizeof(bodies) / sizeof(bodies[0]), "price",
                           "Price must be greater than 0");
    tk_ticket_input_t in;
    json_t *errors;
    assert_int_equal(parse("{\"title\":\"t\",\"price\":1e12}", &in, &errors), TK_EINVAL);
    assert_string_equal(tk_test_error_at(errors, 0, "message"), "Price must be at most 1000000000");
    json_decref(errors);
    /* Both fields wrong: both reported. */
    assert_int_equal(parse("{}", &in, &errors), TK_EINVAL);
    assert_int_equal(json_array_size(errors), 2);
    json_decref(errors);
}

static tk_ticket_t ticket(const char *order_id)
{
    tk_ticket_t t = {.price_cents = 2000, .version = 3};
    strcpy(t.id, "55555555-5555-4555-8555-555555555555");
    strcpy(t.title, "concert");
    strcpy(t.user_id, OWNER);
    strcpy(t.order_id, order_id);
    return t;
}

/* T13, T17: the reservation is checked before the owner. */
static void update_rule(void **state)
{
    (void)state;
    tk_err_t err = {0};
    tk_ticket_t free_t = ticket(""), reserved = ticket(ORDER_A);
    assert_int_equal(tk_ticket_decide_update(&free_t, OWNER, &err), 0);
    assert_int_equal(tk_ticket_decide_update(&free_t, OTHER, &err), TK_EUNAUTH);
    assert_int_equal(tk_ticket_decide_update(&free_t, NULL, &err), TK_EUNAUTH);
    assert_int_equal(tk_ticket_decide_update(&reserved, OWNER, &err), TK_EINVAL);
    assert_string_equal(err.message, "Cannot edit a reserved ticket");
    assert_int_equal(tk_ticket_decide_update(&reserved, OTHER, &err), TK_EINVAL);
}

/* T20, T23: the reservation follows the holder the ledger designates. */
static void holder_rule(void **state)
{
    (void)state;
    tk_ticket_t free_t = ticket(""), held_a = ticket(ORDER_A);
    assert_true(tk_ticket_decide_holder(&free_t, ORDER_A));  /* reserve */
    assert_false(tk_ticket_decide_holder(&held_a, ORDER_A)); /* a repeat: nothing to do */
    assert_true(tk_ticket_decide_holder(&held_a, ORDER_B));  /* a newer order took over */
    assert_true(tk_ticket_decide_holder(&held_a, ""));       /* release */
    assert_false(tk_ticket_decide_holder(&free_t, ""));
}

static void ticket_json(void **state)
{
    (void)state;
    tk_ticket_t t = ticket("");
    t.price_cents = 1999;
    json_t *j = tk_ticket_to_json(&t);
    char *text = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(15));
    assert_string_equal(text,
                        "{\"id\":\"55555555-5555-4555-8555-555555555555\",\"title\":"
                        "\"concert\",\"price\":19.99,\"userId\":\"" OWNER "\",\"version\":3}");
    free(text);
    json_decref(j);
    t = ticket(ORDER_A);
    j = tk_ticket_to_json(&t);
    assert_string_equal(json_string_value(json_object_get(j, "orderId")), ORDER_A);
    assert_int_equal(json_integer_value(json_object_get(j, "price")), 20);
    json_decref(j);
}

TK_TEST_MAIN(NULL, NULL, cmocka_unit_test(valid_bodies), cmocka_unit_test(invalid_title),
             cmocka_unit_test(invalid_price), cmocka_unit_test(update_rule),
             cmocka_unit_test(holder_rule), cmocka_unit_test(ticket_json))
