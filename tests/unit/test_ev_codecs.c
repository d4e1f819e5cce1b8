/*
 * test_ev_codecs.c - the typed codecs of every event type: round trips through the structs, a
 * table of malformed data per decoder, and generated mutations of every sample (each member
 * removed, nulled or given the wrong type) that must all give TK_EINVAL without crashing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tk_test_main.h"
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "ev_sample_data.h"
#include "ev_catalog.h"
#include "ev_expiration.h"
#include "ev_money.h"
#include "ev_order.h"
#include "ev_payment.h"
#include "ev_ticket.h"
#include "ev_user.h"

#define UUID_A "6f1c2a4e-8b3d-4c5e-9f60-718293a4b5c6"
#define UUID_B "0b1f6a3e-2c4d-4e5f-8a9b-0c1d2e3f4a5b"
#define UUID_C "3d6c1f0a-5b7e-4a2d-9c8f-1e2d3c4b5a69"

/* Decode @p data with the catalog's decoder of @p type. */
static int decode_as(const char *type, const json_t *data, tk_err_t *err)
{
    const ev_type_info_t *t = ev_catalog_find(type);
    assert_non_null(t);
    alignas(max_align_t) unsigned char buf[EV_DATA_MAX_SIZE];
    return t->decode(data, buf, err);
}

/*
 * Struct padding is not guaranteed to be zero in an initialised automatic struct, so round trips
 * compare what matters: the JSON of the input and the JSON of what came back.
 */
#define ASSERT_SAME_JSON(to_json, a, b)                                                            \
    do {                                                                                           \
        json_t *ja_ = to_json(a), *jb_ = to_json(b);                                               \
        assert_non_null(ja_);                                                                      \
        assert_true(json_equal(ja_, jb_));                                                         \
        json_decref(ja_);                                                                          \
        json_decref(jb_);                                                                          \
    } while (0)

static void user_registered_round_trips(void **state)
{
    (void)state;
    ev_user_registered_t in = {.id = UUID_A, .email = "bob@example.com"}, out;
    json_t *j = ev_user_registered_to_json(&in);
    tk_err_t err = {0};
    assert_int_equal(ev_user_registered_from_json(j, &out, &err), 0);
    ASSERT_SAME_JSON(ev_user_registered_to_json, &in, &out);
    assert_string_equal(out.email, "bob@example.com");
    json_decref(j);
}

static void ticket_round_trips_and_omits_free_order_id(void **state)
{
    (void)state;
    ev_ticket_t in = {.id = UUID_A,
                      .version = 0,
                      .title = "concert",
                      .price_cents = 1999,
                      .user_id = UUID_B},
                out;
    tk_err_t err = {0};
    json_t *j = ev_ticket_created_to_json(&in);
    char *s = json_dumps(j, EV_JSON_DUMP_FLAGS);
    assert_string_equal(s, "{\"id\":\"" UUID_A "\",\"version\":0,\"title\":\"concert\",\"price\":"
                           "19.99,\"userId\":\"" UUID_B "\"}");
    free(s);
    assert_int_equal(ev_ticket_created_from_json(j, &out, &err), 0);
    ASSERT_SAME_JSON(ev_ticket_created_to_json, &in, &out);
    assert_int_equal(out.price_cents, 1999);
    assert_string_equal(out.order_id, "");
    json_decref(j);

    in.version = 3;
    memcpy(in.order_id, UUID_C, sizeof(UUID_C));
    j = ev_ticket_updated_to_json(&in);
    assert_string_equal(json_string_value(json_object_get(j, "orderId")), UUID_C);
    assert_int_equal(ev_ticket_updated_from_json(j, &out, &err), 0);
    ASSERT_SAME_JSON(ev_ticket_updated_to_json, &in, &out);
    assert_string_equal(out.order_id, UUID_C);
    json_decref(j);

    in.order_id[0] = '\0'; /* freed */
    j = ev_ticket_updated_to_json(&in);
    assert_null(json_object_get(j, "orderId"));
    assert_int_equal(ev_ticket_updated_from_json(j, &out, &err), 0);
    assert_string_equal(out.order_id, "");
    json_decref(j);
}

static void order_round_trips(void **state)
{
    (void)state;
    tk_err_t err = {0};
    for (int st = EV_ORDER_CREATED; st <= EV_ORDER_COMPLETE; st++) {
        ev_order_created_t in = {.id = UUID_A,
                                 .status = (ev_order_status_t)st,
                                 .user_id = UUID_B,
                                 .expires_at = "2024-02-29T23:59:59.999Z",
                                 .ticket = {.id = UUID_C, .price_cents = 100000000000LL}},
                           out;
        json_t *j = ev_order_created_to_json(&in);
        assert_int_equal(ev_order_created_from_json(j, &out, &err), 0);
        ASSERT_SAME_JSON(ev_order_created_to_json, &in, &out);
        assert_int_equal(out.status, st);
        assert_int_equal(out.ticket.price_cents, 100000000000LL);
        json_decref(j);
    }
    ev_order_ref_t in = {.id = UUID_A, .version = 7, .ticket = {.id = UUID_C}}, out;
    json_t *j = ev_order_cancelled_to_json(&in);
    assert_int_equal(ev_order_cancelled_from_json(j, &out, &err), 0);
    ASSERT_SAME_JSON(ev_order_cancelled_to_json, &in, &out);
    assert_int_equal(out.version, 7);
    json_decref(j);
    j = ev_order_completed_to_json(&in);
    assert_int_equal(ev_order_completed_from_json(j, &out, &err), 0);
    ASSERT_SAME_JSON(ev_order_completed_to_json, &in, &out);
    json_decref(j);
}

static void order_status_names(void **state)
{
    (void)state;
    ev_order_status_t s;
    assert_string_equal(ev_order_status_name(EV_ORDER_COMPLETE), "complete");
    assert_null(ev_order_status_name((ev_order_status_t)42));
    assert_int_equal(ev_order_status_parse("complete", &s), 0);
    assert_int_equal(s, EV_ORDER_COMPLETE);
    assert_int_equal(ev_order_status_parse("Complete", &s), TK_EINVAL);
    assert_int_equal(ev_order_status_parse("awaiting_payment", &s), TK_EINVAL);
    /* No transition reaches it: not a status (issue 13). */
    assert_int_equal(ev_order_status_parse("awaiting:payment", &s), TK_EINVAL);
    assert_int_equal(ev_order_status_parse(NULL, &s), TK_EINVAL);
    /* A status outside the enum cannot be encoded. */
    ev_order_created_t o = {.id = UUID_A,
                            .status = (ev_order_status_t)9,
                            .user_id = UUID_B,
                            .expires_at = "2024-02-29T23:59:59.999Z",
                            .ticket = {.id = UUID_C, .price_cents = 1}};
    assert_null(ev_order_created_to_json(&o));
}

static void expiration_and_payments_round_trip(void **state)
{
    (void)state;
    tk_err_t err = {0};
    ev_expiration_complete_t e = {.order_id = UUID_A}, e2;
    json_t *j = ev_expiration_complete_to_json(&e);
    assert_int_equal(ev_expiration_complete_from_json(j, &e2, &err), 0);
    assert_string_equal(e2.order_id, UUID_A);
    json_decref(j);

    ev_payment_created_t p = {.id = UUID_A, .order_id = UUID_B, .stripe_id = "pi_123"}, p2;
    j = ev_payment_created_to_json(&p);
    assert_int_equal(ev_payment_created_from_json(j, &p2, &err), 0);
    ASSERT_SAME_JSON(ev_payment_created_to_json, &p, &p2);
    json_decref(j);

    ev_payment_refunded_t r = {.id = UUID_A,
                               .order_id = UUID_B,
                               .stripe_id = "pi_123",
                               .reason = "order cancelled"},
                          r2;
    memset(r.stripe_id, 'x', EV_STRIPE_ID_MAX); /* the longest accepted */
    j = ev_payment_refunded_to_json(&r);
    assert_int_equal(ev_payment_refunded_from_json(j, &r2, &err), 0);
    ASSERT_SAME_JSON(ev_payment_refunded_to_json, &r, &r2);
    assert_int_equal(strlen(r2.stripe_id), EV_STRIPE_ID_MAX);
    json_decref(j);
}

static void to_json_refuses_null_and_invalid_utf8(void **state)
{
    (void)state;
    assert_null(ev_user_registered_to_json(NULL));
    assert_null(ev_ticket_created_to_json(NULL));
    assert_null(ev_ticket_updated_to_json(NULL));
    assert_null(ev_order_created_to_json(NULL));
    assert_null(ev_order_cancelled_to_json(NULL));
    assert_null(ev_order_completed_to_json(NULL));
    assert_null(ev_expiration_complete_to_json(NULL));
    assert_null(ev_payment_created_to_json(NULL));
    assert_null(ev_payment_refunded_to_json(NULL));
    ev_ticket_t t = {.id = UUID_A, .title = "bad \xff byte", .price_cents = 1, .user_id = UUID_B};
    assert_null(ev_ticket_created_to_json(&t));
    ev_payment_refunded_t r = {
        .id = UUID_A, .order_id = UUID_B, .stripe_id = "pi", .reason = "\xc3"};
    assert_null(ev_payment_refunded_to_json(&r));
}

static void unknown_members_are_ignored(void **state)
{
    (void)state;
    tk_err_t err = {0};
    json_error_t jerr;
    json_t *j = json_loads("{\"id\":\"" UUID_A "\",\"email\":\"a@b\",\"future\":{\"x\":[1,2]},"
                           "\"nickname\":null}",
                           0, &jerr);
    ev_user_registered_t u;
    assert_int_equal(ev_user_registered_from_json(j, &u, &err), 0);
    assert_string_equal(u.email, "a@b");
    json_decref(j);
}

/* A string of @p n copies of @p c as a JSON string literal, with quotes. Owned. */
static char *long_literal(size_t n, char c)
{
    char *s = malloc(n + 3);
    s[0] = '"';
    memset(s + 1, c, n);
    s[n + 1] = '"';
    s[n + 2] = '\0';
    return s;
}

/* Expand "@TITLE257@"-style markers: @S<n>@ becomes a JSON string of n 'a' bytes. Owned. */
static char *expand(const char *tmpl)
{
    size_t cap = strlen(tmpl) + 1;
    const char *m = strstr(tmpl, "@S");
    if (m == NULL)
        return strdup(tmpl);
    size_t n = strtoul(m + 2, NULL, 10);
    const char *end = strchr(m + 2, '@');
    char *lit = long_literal(n, 'a');
    char *out = malloc(cap + n + 3);
    size_t pre = (size_t)(m - tmpl);
    memcpy(out, tmpl, pre);
    strcpy(out + pre, lit);
    strcat(out, end + 1);
    free(lit);
    return out;
}

#define T "\"" UUID_A "\""
#define U "\"" UUID_B "\""
#define O "\"" UUID_C "\""
/* A ticket:created's data with the members @p m between its version and its userId. */
#define TICKET_V0(m) "{\"id\":" T ",\"version\":0," m ",\"userId\":" U "}"
#define TICKET_TAIL ",\"title\":\"t\",\"price\":20,\"userId\":" U "}"
#define ORDER_HEAD "{\"id\":" O ",\"version\":0,\"status\":\"created\",\"userId\":" U

static const struct bad_case {
    const char *type;
    const char *json; /* data; "@S<n>@" stands for a string of n bytes */
    const char *field;
} bad_cases[] = {
    /* not an object */
    {"user:registered", "null", "data"},
    {"user:registered", "[]", "data"},
    {"user:registered", "\"x\"", "data"},
    {"ticket:created", "42", "data"},
    /* user:registered */
    {"user:registered", "{\"email\":\"a@b\"}", "id"},
    {"user:registered", "{\"id\":null,\"email\":\"a@b\"}", "id"},
    {"user:registered", "{\"id\":42,\"email\":\"a@b\"}", "id"},
    {"user:registered", "{\"id\":\"not-a-uuid\",\"email\":\"a@b\"}", "id"},
    {"user:registered", "{\"id\":\"urn:uuid:" UUID_A "\",\"email\":\"a@b\"}", "id"},
    {"user:registered", "{\"id\":\"" UUID_A " \",\"email\":\"a@b\"}", "id"},
    {"user:registered", "{\"id\":\"6f1c2a4e8b3d4c5e9f60718293a4b5c6\",\"email\":\"a@b\"}", "id"},
    {"user:registered", "{\"id\":" T "}", "email"},
    {"user:registered", "{\"id\":" T ",\"email\":\"ab\"}", "email"},
    {"user:registered", "{\"id\":" T ",\"email\":\"a@b@c\"}", "email"},
    {"user:registered", "{\"id\":" T ",\"email\":\"@bc\"}", "email"},
    {"user:registered", "{\"id\":" T ",\"email\":\"bc@\"}", "email"},
    {"user:registered", "{\"id\":" T ",\"email\":[\"a@b\"]}", "email"},
    {"user:registered", "{\"id\":" T ",\"email\":@S255@}", "email"},
    {"user:registered", "{\"id\":" T ",\"email\":\"a\\u0000@b\"}", ""}, /* jansson: no NUL */
    /* ticket:created */
    {"ticket:created", "{\"id\":" T ",\"version\":\"0\"" TICKET_TAIL, "version"},
    {"ticket:created", "{\"id\":" T ",\"version\":0.0" TICKET_TAIL, "version"},
    {"ticket:created", "{\"id\":" T ",\"version\":1" TICKET_TAIL, "version"},
    {"ticket:created", "{\"id\":" T ",\"version\":-1" TICKET_TAIL, "version"},
    {"ticket:created", "{\"id\":" T ",\"version\":null" TICKET_TAIL, "version"},
    {"ticket:created", TICKET_V0("\"title\":5,\"price\":20"), "title"},
    {"ticket:created", TICKET_V0("\"title\":\"\",\"price\":20"), "title"},
    {"ticket:created", TICKET_V0("\"title\":@S257@,\"price\":20"), "title"},
    {"ticket:created", TICKET_V0("\"title\":@S100000@,\"price\":20"), "title"},
    {"ticket:created", TICKET_V0("\"title\":\"t\",\"price\":\"20\""), "price"},
    {"ticket:created", TICKET_V0("\"title\":\"t\",\"price\":0"), "price"},
    {"ticket:created", TICKET_V0("\"title\":\"t\",\"price\":0.001"), "price"},
    {"ticket:created", TICKET_V0("\"title\":\"t\",\"price\":-5"), "price"},
    {"ticket:created", TICKET_V0("\"title\":\"t\",\"price\":1e10"), "price"},
    {"ticket:created", TICKET_V0("\"title\":\"t\",\"price\":null"), "price"},
    {"ticket:created", "{\"id\":" T ",\"version\":0,\"title\":\"t\",\"price\":20}", "userId"},
    {"ticket:created",
     "{\"id\":" T ",\"version\":0,\"title\":\"t\",\"price\":20,\"userId\":" U ",\"orderId\":" O "}",
     "orderId"},
    {"ticket:created",
     "{\"id\":" T ",\"version\":0,\"title\":\"t\",\"price\":20,\"userId\":" U ",\"orderId\":null}",
     "orderId"},
    {"ticket:created",
     "{\"id\":" T ",\"version\":0,\"title\":[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]],\"price\":20,"
     "\"userId\":" U "}",
     "title"},
    /* ticket:updated */
    {"ticket:updated", "{\"id\":" T ",\"version\":0" TICKET_TAIL, "version"},
    {"ticket:updated", "{\"id\":" T ",\"version\":1.5" TICKET_TAIL, "version"},
    {"ticket:updated",
     "{\"id\":" T ",\"version\":1,\"title\":\"t\",\"price\":20,\"userId\":" U ",\"orderId\":null}",
     "orderId"},
    {"ticket:updated",
     "{\"id\":" T ",\"version\":1,\"title\":\"t\",\"price\":20,\"userId\":" U ",\"orderId\":\"\"}",
     "orderId"},
    {"ticket:updated",
     "{\"id\":" T ",\"version\":1,\"title\":\"t\",\"price\":20,\"userId\":" U ",\"orderId\":\"x\"}",
     "orderId"},
    {"ticket:updated",
     "{\"id\":" T ",\"version\":1,\"title\":\"t\",\"price\":true,\"userId\":" U "}", "price"},
    /* order:created */
    {"order:created", ORDER_HEAD ",\"expiresAt\":\"2026-11-28T06:05:00.000Z\"}", "ticket"},
    {"order:created", ORDER_HEAD ",\"expiresAt\":\"2026-11-28T06:05:00.000Z\",\"ticket\":null}",
     "ticket"},
    {"order:created", ORDER_HEAD ",\"expiresAt\":\"2026-11-28T06:05:00.000Z\",\"ticket\":[" T "]}",
     "ticket"},
    {"order:created",
     ORDER_HEAD ",\"expiresAt\":\"2026-11-28T06:05:00.000Z\",\"ticket\":{\"id\":" T "}}",
     "ticket.price"},
    {"order:created",
     ORDER_HEAD ",\"expiresAt\":\"2026-11-28T06:05:00.000Z\",\"ticket\":{\"price\":20}}",
     "ticket.id"},
    {"order:created",
     ORDER_HEAD ",\"expiresAt\":\"2026-11-28T06:05:00.000Z\",\"ticket\":{\"id\":" T
                ",\"price\":\"20\"}}",
     "ticket.price"},
    {"order:created",
     ORDER_HEAD ",\"expiresAt\":\"2026-11-28T06:05:00Z\",\"ticket\":{\"id\":" T ",\"price\":20}}",
     "expiresAt"},
    {"order:created",
     ORDER_HEAD ",\"expiresAt\":\"2026-11-28T07:05:00.000+01:00\",\"ticket\":{"
                "\"id\":" T ",\"price\":20}}",
     "expiresAt"},
    {"order:created",
     ORDER_HEAD ",\"expiresAt\":\"2026-02-29T06:05:00.000Z\",\"ticket\":{\"id\":" T
                ",\"price\":20}}",
     "expiresAt"},
    {"order:created",
     ORDER_HEAD ",\"expiresAt\":\"2026-11-28t06:05:00.000z\",\"ticket\":{\"id\":" T
                ",\"price\":20}}",
     "expiresAt"},
    {"order:created",
     ORDER_HEAD ",\"expiresAt\":\"2026-11-28T24:00:00.000Z\",\"ticket\":{\"id\":" T
                ",\"price\":20}}",
     "expiresAt"},
    {"order:created",
     ORDER_HEAD ",\"expiresAt\":\"2026-11-28T23:59:60.000Z\",\"ticket\":{\"id\":" T
                ",\"price\":20}}",
     "expiresAt"},
    {"order:created",
     ORDER_HEAD ",\"expiresAt\":1795845000000,\"ticket\":{\"id\":" T ",\"price\":20}}",
     "expiresAt"},
    {"order:created",
     "{\"id\":" O ",\"version\":0,\"status\":\"Created\",\"userId\":" U
     ",\"expiresAt\":\"2026-11-28T06:05:00.000Z\",\"ticket\":{\"id\":" T ",\"price\":20}}",
     "status"},
    {"order:created",
     "{\"id\":" O ",\"version\":0,\"status\":@S5000@,\"userId\":" U
     ",\"expiresAt\":\"2026-11-28T06:05:00.000Z\",\"ticket\":{\"id\":" T ",\"price\":20}}",
     "status"},
    {"order:created",
     "{\"id\":" O ",\"version\":0,\"status\":0,\"userId\":" U
     ",\"expiresAt\":\"2026-11-28T06:05:00.000Z\",\"ticket\":{\"id\":" T ",\"price\":20}}",
     "status"},
    {"order:created",
     "{\"id\":" O ",\"version\":1,\"status\":\"created\",\"userId\":" U
     ",\"expiresAt\":\"2026-11-28T06:05:00.000Z\",\"ticket\":{\"id\":" T ",\"price\":20}}",
     "version"},
    /* order:cancelled, order:completed */
    {"order:cancelled", "{\"id\":" O ",\"version\":1}", "ticket"},
    {"order:cancelled", "{\"id\":" O ",\"version\":0,\"ticket\":{\"id\":" T "}}", "version"},
    {"order:cancelled", "{\"id\":" O ",\"version\":\"1\",\"ticket\":{\"id\":" T "}}", "version"},
    {"order:completed", "{\"id\":" O ",\"version\":1,\"ticket\":{}}", "ticket.id"},
    {"order:completed", "{\"id\":" O ",\"version\":1,\"ticket\":\"" UUID_A "\"}", "ticket"},
    {"order:completed", "{\"version\":1,\"ticket\":{\"id\":" T "}}", "id"},
    /* expiration:complete */
    {"expiration:complete", "{}", "orderId"},
    {"expiration:complete", "{\"orderid\":" O "}", "orderId"},
    {"expiration:complete", "{\"orderId\":null}", "orderId"},
    {"expiration:complete", "{\"orderId\":@S36@}", "orderId"},
    /* payment:created, payment:refunded */
    {"payment:created", "{\"id\":" T ",\"orderId\":" O "}", "stripeId"},
    {"payment:created", "{\"id\":" T ",\"orderId\":" O ",\"stripeId\":\"\"}", "stripeId"},
    {"payment:created", "{\"id\":" T ",\"orderId\":" O ",\"stripeId\":@S256@}", "stripeId"},
    {"payment:created", "{\"id\":" T ",\"orderId\":" O ",\"stripeId\":12}", "stripeId"},
    {"payment:refunded", "{\"id\":" T ",\"orderId\":" O ",\"stripeId\":\"pi\"}", "reason"},
    {"payment:refunded", "{\"id\":" T ",\"orderId\":" O ",\"stripeId\":\"pi\",\"reason\":@S256@}",
     "reason"},
    {"payment:refunded", "{\"id\":" T ",\"orderId\":" O ",\"stripeId\":\"pi\",\"reason\":{}}",
     "reason"},
    /* payment:expired */
    {"payment:expired", "{}", "orderId"},
    {"payment:expired", "{\"orderId\":\"not-a-uuid\"}", "orderId"},
};

static void malformed_data_is_rejected(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        char *text = expand(bad_cases[i].json);
        json_error_t jerr;
        json_t *data = json_loads(text, JSON_DECODE_ANY, &jerr);
        if (data == NULL && bad_cases[i].field[0] != '\0')
            fail_msg("case %zu: test JSON does not parse: %s", i, jerr.text);
        if (data != NULL) {
            tk_err_t err = {0};
            int rc = decode_as(bad_cases[i].type, data, &err);
            if (rc != TK_EINVAL)
                fail_msg("case %zu (%s %.80s): accepted", i, bad_cases[i].type, text);
            if (strcmp(err.field, bad_cases[i].field) != 0)
                fail_msg("case %zu: field %s, want %s (%s)", i, err.field, bad_cases[i].field,
                         err.message);
            assert_true(strncmp(err.message, err.field, strlen(err.field)) == 0);
        }
        json_decref(data);
        free(text);
    }
}

/* NUL bytes can reach a decoder through json_stringn even though the parser refuses them. */
static void embedded_nul_is_rejected(void **state)
{
    (void)state;
    json_t *d = json_object();
    json_object_set_new(d, "id", json_string(UUID_A));
    json_object_set_new(d, "email", json_stringn("a@b\0c", 5));
    ev_user_registered_t u;
    tk_err_t err = {0};
    assert_int_equal(ev_user_registered_from_json(d, &u, &err), TK_EINVAL);
    assert_string_equal(err.field, "email");
    json_object_set_new(d, "email", json_string("a@b"));
    json_object_set_new(d, "id", json_stringn(UUID_A "\0", TK_UUID_LEN + 1));
    assert_int_equal(ev_user_registered_from_json(d, &u, &err), TK_EINVAL);
    json_decref(d);
}

static void deep_nesting_is_rejected_without_crashing(void **state)
{
    (void)state;
    /* Past jansson's depth limit the text does not parse; below it the decoder sees an array. */
    for (size_t depth = 100; depth <= 100000; depth *= 10) {
        size_t n = depth * 2 + 64;
        char *text = malloc(n);
        size_t k = (size_t)snprintf(text, n, "{\"id\":\"%s\",\"email\":", UUID_A);
        for (size_t i = 0; i < depth; i++)
            text[k++] = '[';
        for (size_t i = 0; i < depth; i++)
            text[k++] = ']';
        text[k++] = '}';
        text[k] = '\0';
        json_error_t jerr;
        json_t *d = json_loads(text, 0, &jerr);
        if (d != NULL) {
            tk_err_t err = {0};
            assert_int_equal(decode_as("user:registered", d, &err), TK_EINVAL);
            assert_string_equal(err.field, "email");
        }
        json_decref(d);
        free(text);
    }
}

/* Mutate every member of every sample: removed, null, or of another JSON type. */
static void every_member_mutation_is_rejected(void **state)
{
    (void)state;
    for (size_t i = 0; i < ev_catalog_count(); i++) {
        const ev_type_info_t *t = ev_catalog_at(i);
        ev_sample_t s;
        assert_int_equal(ev_sample_get(t->name, &s), 0);
        tk_err_t err = {0};
        assert_int_equal(ev_catalog_validate(t, s.data, &err), 0);
        const char *key;
        json_t *value;
        json_object_foreach(s.data, key, value)
        {
            bool optional = strcmp(key, "orderId") == 0 && strcmp(t->name, "ticket:updated") == 0;
            json_t *replacements[] = {
                NULL, /* removed */
                json_null(),  json_is_string(value) ? json_integer(1) : json_string("1"),
                json_array(), json_true(),
            };
            for (size_t r = 0; r < sizeof(replacements) / sizeof(replacements[0]); r++) {
                json_t *copy = json_deep_copy(s.data);
                if (replacements[r] == NULL)
                    json_object_del(copy, key);
                else
                    json_object_set(copy, key, replacements[r]);
                int rc = ev_catalog_validate(t, copy, &err);
                if (!(optional && r == 0) && rc != TK_EINVAL)
                    fail_msg("%s with %s mutated (%zu) was accepted", t->name, key, r);
                if (optional && r == 0)
                    assert_int_equal(rc, 0);
                json_decref(copy);
                json_decref(replacements[r]);
            }
        }
        json_decref(s.data);
    }
}

TK_TEST_MAIN(NULL, NULL, cmocka_unit_test(user_registered_round_trips),
             cmocka_unit_test(ticket_round_trips_and_omits_free_order_id),
             cmocka_unit_test(order_round_trips), cmocka_unit_test(order_status_names),
             cmocka_unit_test(expiration_and_payments_round_trip),
             cmocka_unit_test(to_json_refuses_null_and_invalid_utf8),
             cmocka_unit_test(unknown_members_are_ignored),
             cmocka_unit_test(malformed_data_is_rejected),
             cmocka_unit_test(embedded_nul_is_rejected),
             cmocka_unit_test(deep_nesting_is_rejected_without_crashing),
             cmocka_unit_test(every_member_mutation_is_rejected))
