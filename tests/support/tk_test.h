/*
 * tk_test.h - support for integration tests: the stack's environment, an in-process server
 * on an ephemeral port, a small libcurl client and a Kafka watcher that sees what a test
 * caused on the real broker.
 */
#ifndef TK_TEST_H
#define TK_TEST_H

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdint.h>

#include "tk/context.h"
#include "tk/http.h"

/** @brief Loads the configuration; fails the test run (exit 1) when the stack's env is missing. */
void tk_test_require_stack(void);
/** @brief tk_test_require_stack as a cmocka group setup. */
int tk_test_stack_setup(void **state);

/**
 * @brief Point @p context at the private database @p dbname on DATABASE_URL's server: create it
 *        when missing, export DATABASE_URL_<CONTEXT> (inherited by child processes) and migrate
 *        it. Relays and projectors of other suites or of a `ticketing run` on the same stack then
 *        never see this test's outbox rows, nor hold its relay lock. Call before any thread
 *        starts; exits the process on a setup error.
 */
void tk_test_private_database(const char *context, const char *dbname);

/** @brief Start an HTTP server on an ephemeral port with the given route registrars (NULL-ended)
 *         in a background thread. Returns the base URL "http://127.0.0.1:<port>" (static). */
const char *tk_test_server_start(void (*const *registrars)(tk_http_server_t *));
/** @brief tk_test_server_start with the routes of @p contexts (NULL-ended, static descriptors),
 *         each on its database, as `ticketing serve` adds them. */
const char *tk_test_server_start_contexts(const tk_context_t *const *contexts);
void tk_test_server_stop(void);
/** @brief tk_test_server_stop as a cmocka group teardown. */
int tk_test_server_teardown(void **state);
/** @brief The base URL of the running test server (static). */
const char *tk_test_base_url(void);

typedef struct tk_test_resp {
    long status;
    json_t *json;         /* owned: parsed body, NULL when not JSON */
    char *body;           /* owned: raw body */
    char *set_cookie;     /* owned: first Set-Cookie header value, NULL when none */
    char *set_cookie_all; /* owned: every Set-Cookie value joined by '\n' */
    long retry_after;     /* the Retry-After header in seconds, -1 when absent */
} tk_test_resp_t;

/**
 * @brief One request to the test server. @p body is a JSON text or NULL; @p cookie is a
 *        "name=value" string or NULL. Fills @p out (release with tk_test_resp_release).
 */
void tk_test_http(const char *method, const char *path, const char *body, const char *cookie,
                  tk_test_resp_t *out);
void tk_test_resp_release(tk_test_resp_t *r);

/** @brief tk_test_http with one extra request header @p header ("Name: value", may be NULL). */
void tk_test_http_ex(const char *method, const char *path, const char *body, const char *cookie,
                     const char *header, tk_test_resp_t *out);

/** @brief The message of the first error of a contract error body, or NULL. Borrowed from @p r. */
const char *tk_test_first_message(const tk_test_resp_t *r);

/**
 * @brief One request (tk_test_http) whose answer must have @p status and, when @p message is not
 *        NULL, that first error message. @return whether it did; when not, what came is printed
 *        (for assert_true at the caller's line).
 */
bool tk_test_http_is(const char *method, const char *path, const char *body, const char *cookie,
                     long status, const char *message);

/** @brief The "session=..." part of a Set-Cookie value, for sending back. Owned. */
char *tk_test_cookie_of(const tk_test_resp_t *r);

/** @brief A "session=..." cookie whose JWT carries @p claims_json, signed with JWT_KEY. Owned. */
char *tk_test_session_cookie(const char *claims_json);

/** @brief A session cookie for a made-up user (the original's test helper). Owned. */
char *tk_test_fake_session(const char *user_id, const char *email);

/**
 * @brief The end offset (high watermark) of @p topic's @p partition through the client @p rk.
 *        A broker just started may refuse a moment (coordinator or leader loading): asked again
 *        for up to a minute. Exits the process when the broker never answers.
 */
int64_t tk_test_end_offset(rd_kafka_t *rk, const char *topic, int32_t partition);

/**
 * @brief Assign the consumer @p rk every partition of @p topic, each at its beginning or, with
 *        @p from_end, at its current end (records produced later are read). A broker just
 *        started may answer late: metadata and watermarks are asked again for some seconds.
 *        Exits the process when the topic has no partitions or the broker never answers.
 */
void tk_test_assign(rd_kafka_t *rk, const char *topic, bool from_end);

/**
 * @brief A consumer of a group of its own (a fresh uuid, nothing committed) assigned every
 *        partition of @p topic as tk_test_assign does. Owned: tk_test_consumer_free.
 */
rd_kafka_t *tk_test_consumer_new(const char *topic, bool from_end);

/** @brief Close and destroy a consumer from tk_test_consumer_new (or any consumer). */
void tk_test_consumer_free(rd_kafka_t *rk);

typedef struct tk_test_watch tk_test_watch_t;

/** @brief Watch @p topic from its current end. Owned, free with tk_test_watch_free. */
tk_test_watch_t *tk_test_watch_new(const char *topic);
void tk_test_watch_free(tk_test_watch_t *w);

/**
 * @brief Wait up to @p timeout_ms for an event of @p type whose subject is @p subject (NULL:
 *        any). @return the whole envelope as JSON (owned) or NULL on timeout.
 */
json_t *tk_test_watch_expect(tk_test_watch_t *w, const char *type, const char *subject,
                             int timeout_ms);

/** @brief tk_test_watch_expect for a test that needs only to know the event came: @return whether
 *         it did within @p timeout_ms (the envelope is released). */
bool tk_test_watch_saw(tk_test_watch_t *w, const char *type, const char *subject, int timeout_ms);

/** @brief Count events of @p type/@p subject seen within @p window_ms (e.g. to prove "once"). */
int tk_test_watch_count(tk_test_watch_t *w, const char *type, const char *subject, int window_ms);

/**
 * @brief The envelope of one event as its context would publish it: @p data (consumed) under
 *        @p type, @p subject and @p version. Its event id goes to @p id_out (may be NULL).
 *        Owned text (free); exits the process when the event cannot be encoded.
 */
char *tk_test_event_text(const char *type, const char *subject, int64_t version, json_t *data,
                         char *id_out);

/** @brief tk_test_event_text, produced to the event's own topic keyed by @p subject. */
void tk_test_publish_event(const char *type, const char *subject, int64_t version, json_t *data,
                           char *id_out);

/** @brief A producer (tk_kafka_producer_new); exits the process on failure. Owned:
 *         rd_kafka_destroy. */
rd_kafka_t *tk_test_producer(void);

/** @brief Produce one event envelope (JSON text) to @p topic with key @p key, synchronously. */
void tk_test_publish(const char *topic, const char *key, const char *envelope_json);

/**
 * @brief Run @p fn on each of @p n arguments at once, one thread each, and wait for all: the
 *        i-th thread gets (char *)@p args + i * @p size (an array of n structs of @p size).
 *        Exits the process when a thread cannot be made.
 */
void tk_test_run_threads(void *(*fn)(void *), void *args, size_t size, int n);

/**
 * @brief A TCP listener on 127.0.0.1 that never accepts: a client connects, and no server ever
 *        answers (a database that hangs in its handshake). @return its descriptor (close it),
 *        its port into @p port. Exits the process when the socket cannot be made.
 */
int tk_test_silent_listener(int *port);

/** @brief Poll @p fn every 50 ms until it returns true or @p timeout_ms passes. */
bool tk_test_eventually(bool (*fn)(void *arg), void *arg, int timeout_ms);

#endif
