/*
 * ids.h - UUIDs (v4, from OpenSSL's CSPRNG) and RFC 3339 UTC timestamps with milliseconds,
 * the two identifier/time formats of the contract (DESIGN.md section 9).
 */
#ifndef TK_IDS_H
#define TK_IDS_H

#include <stdbool.h>
#include <stdint.h>

#define TK_UUID_LEN 36 /* without the terminating NUL */
#define TK_TIME_LEN 24 /* "2026-11-28T05:49:12.123Z" */

/** @brief Write a new random UUID v4, lower case, into @p out (37 bytes). */
void tk_uuid_new(char out[TK_UUID_LEN + 1]);

/** @brief True when @p s is a canonical 8-4-4-4-12 hex UUID (any case). NULL gives false. */
bool tk_uuid_valid(const char *s);

/**
 * @brief The 16 bytes of the UUID @p text (canonical 8-4-4-4-12 hex, either case), the form
 *        hashed keys and consistency tokens carry. @return false (out undefined) when @p text
 *        is not one.
 */
bool tk_uuid_to_bytes(const char *text, uint8_t out[16]);

/** @brief The canonical lower-case text of the UUID in @p bytes, into @p out (37 bytes). */
void tk_uuid_from_bytes(const uint8_t bytes[16], char out[TK_UUID_LEN + 1]);

/** @brief The value of the hex digit @p c (either case), or -1 when @p c is not one. */
int tk_hex_value(int c);

/** @brief Milliseconds since the Unix epoch, wall clock. */
int64_t tk_now_ms(void);

/** @brief Milliseconds from a monotonic clock, for timeouts and durations. */
int64_t tk_mono_ms(void);

/** @brief Format @p epoch_ms as "YYYY-MM-DDTHH:MM:SS.mmmZ" into @p out (25 bytes). */
void tk_time_format(int64_t epoch_ms, char out[TK_TIME_LEN + 1]);

/**
 * @brief Parse an RFC 3339 timestamp ("...Z" or "+hh:mm", optional fraction) into epoch ms.
 * @return 0, or TK_EINVAL when @p s is not such a timestamp.
 */
int tk_time_parse(const char *s, int64_t *epoch_ms);

#endif
