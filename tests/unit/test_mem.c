/* test_mem.c - growable arrays (tk_mem_grow): capacity doubles from 16, contents survive. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tk_test_main.h"
#include <stdlib.h>

#include "tk/mem.h"

static void grows_by_doubling_and_keeps_the_elements(void **state)
{
    (void)state;
    long *v = NULL;
    size_t n = 0, cap = 0;
    for (long i = 0; i < 1000; i++) {
        v = tk_mem_grow(v, &cap, n + 1, sizeof(*v));
        v[n++] = i * 3;
    }
    assert_int_equal(cap, 1024);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(v[i], (long)i * 3);
    long *same = tk_mem_grow(v, &cap, 10, sizeof(*v)); /* room enough: untouched */
    assert_ptr_equal(same, v);
    assert_int_equal(cap, 1024);
    free(v);
    v = NULL;
    cap = 0;
    v = tk_mem_grow(v, &cap, 17, sizeof(*v));
    assert_int_equal(cap, 32);
    free(v);
}

TK_TEST_MAIN(NULL, NULL, cmocka_unit_test(grows_by_doubling_and_keeps_the_elements))
