/*
 * fuzz.h - the libFuzzer entry point each driver defines. The same drivers are linked with
 * replay_main.c in the normal build, so they compile under the project's warnings and the seed
 * corpus runs as a unit test.
 */
#ifndef TK_FUZZ_H
#define TK_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/** @brief Run one input; abort() on a broken property. @param data borrowed, @p size bytes. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
