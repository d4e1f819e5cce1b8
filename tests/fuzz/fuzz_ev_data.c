/*
 * fuzz_ev_data.c - libFuzzer driver for the typed decoders and the money parser.
 *
 * Input: one selector byte, then the bytes under test. Selector % (ev_catalog_count() + 1)
 * picks catalog entry i (its data decoder gets the rest parsed as JSON), or, for the last value,
 * money (the rest as decimal text for ev_money_parse, as a JSON string and as a JSON text for
 * ev_money_from_json with strings allowed).
 *
 * Properties: decoders fail with TK_EINVAL and a message; what a decoder accepts its encoder
 * writes, the decoder accepts again and the envelope wraps; money stays in range and survives
 * format/parse and to_json/from_json unchanged.
 */
#include "fuzz.h"

#include <stdalign.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ev_catalog.h"
#include "ev_envelope.h"
#include "ev_money.h"

static void check(bool ok)
{
    if (!ok)
        abort();
}

static void money_round_trips(int64_t cents)
{
    check(cents >= 0 && cents <= EV_MONEY_MAX_CENTS);
    char text[EV_MONEY_TEXT_SIZE];
    int64_t back = -1;
    ev_money_format(cents, text);
    check(ev_money_parse(text, &back, NULL) == 0 && back == cents);
    json_t *v = ev_money_to_json(cents);
    char *dumped = json_dumps(v, EV_JSON_DUMP_FLAGS | JSON_ENCODE_ANY);
    check(dumped != NULL && strcmp(dumped, text) == 0);
    json_t *reparsed = json_loads(dumped, JSON_DECODE_ANY, NULL);
    back = -1;
    check(ev_money_from_json(reparsed, false, &back, NULL) == 0 && back == cents);
    json_decref(reparsed);
    free(dumped);
    json_decref(v);
}

static void fuzz_money(const char *bytes, size_t len)
{
    int64_t cents = -1;
    tk_err_t err = {0};
    char *s = strndup(bytes, len);
    if (ev_money_parse(s, &cents, &err) == 0)
        money_round_trips(cents);
    else
        check(err.code == TK_EINVAL);
    json_t *str = json_stringn(bytes, len); /* NULL unless UTF-8 */
    if (str != NULL && ev_money_from_json(str, true, &cents, &err) == 0)
        money_round_trips(cents);
    json_t *num = json_loadb(bytes, len, JSON_DECODE_ANY, NULL);
    if (num != NULL && ev_money_from_json(num, true, &cents, &err) == 0)
        money_round_trips(cents);
    json_decref(num);
    json_decref(str);
    free(s);
}

static void fuzz_type(const ev_type_info_t *t, const char *bytes, size_t len)
{
    alignas(max_align_t) unsigned char a[EV_DATA_MAX_SIZE], b[EV_DATA_MAX_SIZE];
    tk_err_t err = {0};
    json_t *in = json_loadb(bytes, len, JSON_DECODE_ANY, NULL);
    if (in == NULL)
        return;
    if (t->decode(in, a, &err) != 0) {
        check(err.code == TK_EINVAL && err.message[0] != '\0');
        json_decref(in);
        return;
    }
    json_t *out = t->encode(a);
    check(out != NULL);
    check(t->decode(out, b, &err) == 0);
    json_t *out2 = t->encode(b);
    check(out2 != NULL && json_equal(out, out2));
    ev_envelope_t env;
    check(ev_envelope_init(&env, t->name, "00000000-0000-4000-8000-000000000000", 0, NULL,
                           json_incref(out), &err) == 0);
    char *text = NULL;
    size_t tlen = 0;
    check(ev_envelope_encode(&env, &text, &tlen, &err) == 0);
    ev_envelope_t back;
    check(ev_envelope_decode(text, tlen, &back, &err) == 0 && json_equal(back.data, out));
    ev_envelope_release(&back);
    ev_envelope_release(&env);
    free(text);
    json_decref(out2);
    json_decref(out);
    json_decref(in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t n = ev_catalog_count();
    size_t sel = data[0] % (n + 1);
    const char *rest = (const char *)data + 1;
    if (sel == n)
        fuzz_money(rest, size - 1);
    else
        fuzz_type(ev_catalog_at(sel), rest, size - 1);
    return 0;
}
