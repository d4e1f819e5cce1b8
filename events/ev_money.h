/*
 * ev_money.h - money in the contract: int64 cents inside, a JSON number outside.
 *
 * The REST contract and the events carry prices as JSON numbers in currency units (20, 19.99),
 * as the original Node.js system did; everything in C holds cents in an int64_t so no arithmetic
 * ever touches a binary fraction. The conversions round to the nearest cent, half away from zero,
 * on the number's decimal text (what was written, for any amount of up to 15 significant digits),
 * so 19.99 is 1999 and 1.005 is 101, as PostgreSQL's numeric(..., 2) would store them.
 *
 * Printing: a whole amount is a JSON integer (20). Any other amount is a JSON real, which jansson
 * prints with 17 significant digits by default (19.99 becomes 19.989999999999998); dump any JSON
 * that holds money with EV_JSON_DUMP_FLAGS (or OR in EV_MONEY_REAL_PRECISION) to get 19.99.
 * ev_envelope_encode does.
 */
#ifndef EV_MONEY_H
#define EV_MONEY_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "tk/err.h"

/** Largest accepted amount: 1e9 currency units, in cents. */
#define EV_MONEY_MAX_CENTS 100000000000LL

/**
 * jansson precision that prints every amount up to EV_MONEY_MAX_CENTS exactly and shortest
 * (at most 12 significant digits are needed; 15 is the most that always round-trips).
 */
#define EV_MONEY_REAL_PRECISION JSON_REAL_PRECISION(15)

/** Flags for json_dumps of anything that holds money: compact, money printed as 19.99. */
#define EV_JSON_DUMP_FLAGS (JSON_COMPACT | EV_MONEY_REAL_PRECISION)

/** Size of a buffer for ev_money_format: "-92233720368547758.08" plus NUL fits. */
#define EV_MONEY_TEXT_SIZE 32

/**
 * @brief The JSON number for @p cents: an integer when whole (2000 -> 20), else a real
 *        (1999 -> 19.99, printed as such with EV_JSON_DUMP_FLAGS).
 * @return Ownership: owned new reference (json_decref), never NULL unless out of memory.
 */
json_t *ev_money_to_json(int64_t cents);

/**
 * @brief Read an amount of money from a JSON value.
 * @param v borrowed; a JSON integer or real, or, when @p allow_string, a string holding a decimal
 *        number as the original's express-validator isFloat accepted ("20.5", "+3", ".5", "1e3";
 *        no blanks, at most 64 bytes).
 * @param cents out, set only on success: the amount rounded to the nearest cent, half away from
 *        zero on the shortest decimal form (19.99 -> 1999; more than 2 decimals are rounded).
 * @param err the message is a predicate ("must be a number") for the caller to prefix with its
 *        field name; the field is left empty.
 * @return 0, or TK_EINVAL for another JSON type, a non-numeric string, NaN or infinity, a
 *         negative amount or one over 1e9 units. 0 is accepted: callers needing > 0 check it.
 */
int ev_money_from_json(const json_t *v, bool allow_string, int64_t *cents, tk_err_t *err);

/**
 * @brief Parse decimal text ("19.99", "20", "1e3") into cents; the rules of ev_money_from_json.
 * @param s borrowed, NUL-terminated.
 * @return 0, or TK_EINVAL.
 */
int ev_money_parse(const char *s, int64_t *cents, tk_err_t *err);

/**
 * @brief Write @p cents as the shortest decimal text, as the JSON prints it: "20", "20.5",
 *        "19.99", "-0.01" (also valid input for PostgreSQL numeric).
 * @param out caller's buffer of EV_MONEY_TEXT_SIZE bytes.
 */
void ev_money_format(int64_t cents, char out[EV_MONEY_TEXT_SIZE]);

#endif
