/*
 * tk_test_main.h - the one main() of every cmocka suite. A suite ends with
 *     TK_TEST_MAIN(setup, teardown, cmocka_unit_test(a), cmocka_unit_test(b))
 * instead of its own copy of the test array and the group call; setup and teardown are cmocka
 * group fixtures or NULL. Standard output is line-buffered, so a suite that ctest kills at its
 * timeout still shows how far it got. A table-driven test lists its rows with TK_TEST_CASE. Include
 * it after <cmocka.h>.
 */
#ifndef TK_TEST_MAIN_H
#define TK_TEST_MAIN_H

#include <stdio.h>

/* One row of a case table: @p func runs with *state = @p data (the row), after the fixture
 * @p setup (or NULL), and cmocka reports it as @p name, so a failing row names itself. */
#define TK_TEST_CASE(name, func, setup, data)                                                      \
    {                                                                                              \
        (name), (func), (setup), NULL, (void *)(data)                                              \
    }

#define TK_TEST_MAIN(setup, teardown, ...)                                                         \
    int main(void)                                                                                 \
    {                                                                                              \
        const struct CMUnitTest tk_tests_[] = {__VA_ARGS__};                                       \
        setvbuf(stdout, NULL, _IOLBF, 0);                                                          \
        return cmocka_run_group_tests(tk_tests_, (setup), (teardown));                             \
    }

#endif
