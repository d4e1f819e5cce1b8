/*
 * ev_sample_data.h - one valid, deterministic event of every catalog type, built through the
 * typed codecs. Shared by the contract sample printer (ev_samples.c), the unit tests of events/
 * and the fuzz corpus, so all three exercise the same events.
 */
#ifndef EV_SAMPLE_DATA_H
#define EV_SAMPLE_DATA_H

#include <jansson.h>
#include <stdint.h>

#define EV_SAMPLE_USER "6f1c2a4e-8b3d-4c5e-9f60-718293a4b5c6"
#define EV_SAMPLE_BUYER "0b1f6a3e-2c4d-4e5f-8a9b-0c1d2e3f4a5b"
#define EV_SAMPLE_TICKET "3d6c1f0a-5b7e-4a2d-9c8f-1e2d3c4b5a69"
#define EV_SAMPLE_ORDER "a4b3c2d1-e5f6-4789-8abc-def012345678"
#define EV_SAMPLE_PAYMENT "c0ffee00-1234-4abc-9def-0123456789ab"
#define EV_SAMPLE_CORRELATION "req-7f3a9c"

/** A sample event: its type, aggregate id and version, and its data. */
typedef struct ev_sample {
    const char *type;         /* static */
    const char *subject;      /* static, the aggregate id */
    int64_t aggregateversion; /* the aggregate's version after the event */
    json_t *data;             /* owned, json_decref */
} ev_sample_t;

/**
 * @brief Fill @p out with the sample of @p type (a catalog name).
 * @return 0, or -1 for a type without a sample (a new catalog entry needs one here).
 */
int ev_sample_get(const char *type, ev_sample_t *out);

#endif
