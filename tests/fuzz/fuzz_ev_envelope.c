/*
 * fuzz_ev_envelope.c - libFuzzer driver for ev_envelope_decode, the decoder every projector runs
 * on every record of the log.
 *
 * Besides "never crashes, never leaks" (ASan, UBSan, LeakSanitizer), it checks properties:
 * - a failure is TK_EINVAL with a message and leaves a zeroed envelope;
 * - a decoded envelope encodes (unless re-encoding grows it past the 64 KiB limit, e.g. "1e9"
 *   printed as 1000000000.0), and the encoding decodes to the same event;
 * - encoding is idempotent after one pass: encode(decode(encode(decode(x)))) is byte-identical
 *   to encode(decode(x)). (One pass may change reals in unknown members, which are printed with
 *   15 significant digits so that money reads 19.99.)
 */
#include "fuzz.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ev_catalog.h"
#include "ev_envelope.h"

static void check(bool ok)
{
    if (!ok)
        abort();
}

static bool same_header(const ev_envelope_t *a, const ev_envelope_t *b)
{
    return strcmp(a->id, b->id) == 0 && strcmp(a->type, b->type) == 0 &&
           strcmp(a->source, b->source) == 0 && strcmp(a->subject, b->subject) == 0 &&
           strcmp(a->time, b->time) == 0 && strcmp(a->dataschema, b->dataschema) == 0 &&
           a->aggregateversion == b->aggregateversion &&
           strcmp(a->correlationid, b->correlationid) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const ev_envelope_t zero;
    ev_envelope_t env, again;
    tk_err_t err = {0};
    char *text = NULL, *text2 = NULL;
    size_t len = 0, len2 = 0;

    if (ev_envelope_decode((const char *)data, size, &env, &err) != 0) {
        check(err.code == TK_EINVAL && err.message[0] != '\0');
        check(memcmp(&env, &zero, sizeof(env)) == 0);
        return 0;
    }
    check(env.data != NULL && ev_envelope_schema_version(&env) >= 1);
    if (ev_envelope_encode(&env, &text, &len, &err) != 0) {
        check(strcmp(err.field, "data") == 0 && strstr(err.message, "over the limit") != NULL);
        ev_envelope_release(&env);
        return 0;
    }
    check(ev_envelope_decode(text, len, &again, &err) == 0);
    check(same_header(&env, &again));
    /* The typed content is exactly preserved. */
    const ev_type_info_t *t = ev_catalog_find(env.type);
    check(t != NULL && ev_catalog_validate(t, again.data, &err) == 0);
    check(ev_envelope_encode(&again, &text2, &len2, &err) == 0);
    check(len == len2 && memcmp(text, text2, len) == 0);

    free(text);
    free(text2);
    ev_envelope_release(&again);
    ev_envelope_release(&env);
    return 0;
}
