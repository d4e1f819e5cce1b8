/*
 * tk_test_json.h - JSON helpers of the unit suites that test a context's rules on request
 * bodies: a document from text (which must parse) and the members of a contract error array
 * [{"message":..,"field":..}]. Header-only (the unit suites link no test library); include it
 * after <cmocka.h>.
 */
#ifndef TK_TEST_JSON_H
#define TK_TEST_JSON_H

#include <jansson.h>

/** @brief @p text parsed; fails the test when it is not JSON. Owned. */
static inline json_t *tk_test_json(const char *text)
{
    json_t *js = json_loads(text, 0, NULL);
    assert_non_null(js);
    return js;
}

/** @brief The member @p key ("message", "field") of the @p i-th error of @p errors, or NULL.
 *         Borrowed. */
static inline const char *tk_test_error_at(const json_t *errors, size_t i, const char *key)
{
    return json_string_value(json_object_get(json_array_get(errors, i), key));
}

#endif
