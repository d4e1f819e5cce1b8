/*
 * stripe.c - the Stripe adapter: one logical request = up to max_attempts HTTP attempts with one
 * Idempotency-Key (the state diagram is in tk/stripe.h).
 *
 *   stripe_call(path, form, key)
 *     for attempt = 1 .. max_attempts:
 *       attempt_once ----> OUT_OK / OUT_FINAL (done) | OUT_RETRY (remember why)
 *       sleep tk_stripe_backoff_ms (or Retry-After, capped) unless it was the last attempt
 *     exhausted -> the last OUT_RETRY's code (TK_EBADGATEWAY after a 5xx, TK_EUNAVAIL otherwise)
 *
 * Why retry only with a key: a POST that timed out may have been executed. Stripe stores the
 * result of the first execution of a key and replays it, so retrying is what makes "at most one
 * charge" hold when the network loses a response. POSTs without a key are refused (TK_EINVAL);
 * the one GET (the PaymentIntent search of tk_stripe_find_intent) changes nothing, so it is
 * retried without one.
 *
 * Webhooks: tk_stripe_webhook_verify checks a Stripe-Signature header the way Stripe documents
 * it (HMAC-SHA256 of "<t>.<payload>" with the endpoint's secret, any v1 entry, t within the
 * tolerance), comparing in constant time.
 *
 * Why these codes: a decline is the customer's problem (400 with Stripe's message, which is meant
 * for customers); a refused key or an unknown parameter is ours (502, details not shown); Stripe
 * unreachable or rate-limiting us is a dependency down (503); Stripe failing is a bad gateway.
 *
 * Secrets: the key is only put in the Authorization header; card tokens only in the form body.
 * Neither is copied into err. Nothing here logs: callers log once at their boundary.
 */
#include "tk/stripe.h"

#include <ctype.h>
#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "tk/backoff.h"
#include "tk/cfg.h"
#include "tk/ids.h"
#include "tk/mem.h"

#define MAX_RESPONSE_BYTES (1024 * 1024)

/* ------------------------------------------------------------------ options */

static pthread_mutex_t override_lock = PTHREAD_MUTEX_INITIALIZER;
static bool override_set;
static tk_stripe_options_t override_opts;
static char *override_base, *override_key;

void tk_stripe_options_default(tk_stripe_options_t *out)
{
    pthread_mutex_lock(&override_lock);
    bool have = override_set;
    if (have)
        *out = override_opts;
    pthread_mutex_unlock(&override_lock);
    if (have)
        return;
    const tk_cfg_t *cfg = tk_cfg();
    out->api_base = cfg->stripe_api_base ? cfg->stripe_api_base : "https://api.stripe.com";
    out->api_key = cfg->stripe_key ? cfg->stripe_key : "";
    /* Read once by tk_cfg_load (a malformed value stops start-up), never per call. */
    out->connect_timeout_ms = cfg->stripe_connect_timeout_ms;
    out->timeout_ms = cfg->stripe_timeout_ms;
    out->max_attempts = cfg->stripe_max_attempts;
    out->backoff_base_ms = cfg->stripe_backoff_ms;
    out->backoff_max_ms = cfg->stripe_backoff_max_ms;
}

void tk_stripe_options_override(const tk_stripe_options_t *o)
{
    /* Copy first: @p o may point into the current override (from tk_stripe_options_default). */
    char *base = o ? tk_mem_strdup(o->api_base ? o->api_base : "") : NULL;
    char *key = o ? tk_mem_strdup(o->api_key ? o->api_key : "") : NULL;
    pthread_mutex_lock(&override_lock);
    free(override_base);
    free(override_key);
    override_base = base;
    override_key = key;
    override_set = o != NULL;
    if (o != NULL) {
        override_opts = *o;
        override_opts.api_base = override_base;
        override_opts.api_key = override_key;
    }
    pthread_mutex_unlock(&override_lock);
}

int tk_stripe_backoff_ms(const tk_stripe_options_t *o, int failed, uint32_t rnd)
{
    long d = o->backoff_base_ms > 0 ? o->backoff_base_ms : 0;
    for (int i = 1; i < failed && d < o->backoff_max_ms; i++)
        d *= 2;
    if (d > o->backoff_max_ms)
        d = o->backoff_max_ms;
    if (d <= 0)
        return 0;
    long half = d / 2;
    return (int)(half + (long)(rnd % (uint32_t)(d - half + 1)));
}

/* ------------------------------------------------------------------ form encoding */

typedef struct form {
    char *buf;
    size_t len, cap;
} form_t;

static void form_putc(form_t *f, char c)
{
    if (f->len + 2 > f->cap) {
        f->cap = f->cap ? f->cap * 2 : 256;
        char *n = tk_mem_alloc(f->cap);
        if (f->len > 0)
            memcpy(n, f->buf, f->len);
        free(f->buf);
        f->buf = n;
    }
    f->buf[f->len++] = c;
    f->buf[f->len] = '\0';
}

static void form_escape(form_t *f, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            form_putc(f, (char)*p);
        } else {
            form_putc(f, '%');
            form_putc(f, hex[*p >> 4]);
            form_putc(f, hex[*p & 15]);
        }
    }
}

/* Appends name=value (both escaped; brackets in names too, as Stripe's libraries do). */
static void form_add(form_t *f, const char *name, const char *value)
{
    if (f->len > 0)
        form_putc(f, '&');
    form_escape(f, name);
    form_putc(f, '=');
    form_escape(f, value);
}

/* ------------------------------------------------------------------ one attempt */

typedef enum { OUT_OK, OUT_RETRY, OUT_FINAL } outcome_t;

typedef struct reply {
    char *body;
    size_t len;
    bool too_big;
    int should_retry; /* Stripe-Should-Retry: -1 absent, 0 false, 1 true */
    int retry_after_ms;
} reply_t;

static size_t on_body(char *ptr, size_t size, size_t n, void *ud)
{
    reply_t *r = ud;
    size_t add = size * n;
    if (r->len + add > MAX_RESPONSE_BYTES) {
        r->too_big = true;
        return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
    }
    char *grown = tk_mem_alloc(r->len + add + 1);
    if (r->len > 0)
        memcpy(grown, r->body, r->len);
    memcpy(grown + r->len, ptr, add);
    grown[r->len + add] = '\0';
    free(r->body);
    r->body = grown;
    r->len += add;
    return add;
}

static bool header_is(const char *line, size_t len, const char *name, const char **value)
{
    size_t n = strlen(name);
    if (len <= n + 1 || strncasecmp(line, name, n) != 0 || line[n] != ':')
        return false;
    *value = line + n + 1;
    while (**value == ' ')
        (*value)++;
    return true;
}

static size_t on_header(char *ptr, size_t size, size_t n, void *ud)
{
    reply_t *r = ud;
    size_t len = size * n;
    const char *v = NULL;
    if (header_is(ptr, len, "Stripe-Should-Retry", &v))
        r->should_retry = strncasecmp(v, "true", 4) == 0 ? 1 : 0;
    else if (header_is(ptr, len, "Retry-After", &v))
        r->retry_after_ms = atoi(v) * 1000;
    return len;
}

/* True for the transport failures after which the same request may well succeed. */
static bool curl_transient(CURLcode c)
{
    switch (c) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return true;
    default:
        return false;
    }
}

/* Stripe's {"error":{"type","code","message","param"}}; any member may be missing. */
static void error_fields(json_t *doc, const char **type, const char **code, const char **message)
{
    json_t *e = json_object_get(doc, "error");
    *type = json_string_value(json_object_get(e, "type"));
    *code = json_string_value(json_object_get(e, "code"));
    *message = json_string_value(json_object_get(e, "message"));
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

/*
 * One HTTP attempt: a POST of @p form with Idempotency-Key @p key, or a GET when @p form is NULL
 * (then @p key may be NULL). On OUT_OK *doc holds the parsed 2xx body (owned). On OUT_RETRY and
 * OUT_FINAL err holds the failure; for OUT_RETRY also *retry_after_ms (0 when Stripe did not say).
 */
static outcome_t attempt_once(const tk_stripe_options_t *o, const char *path, const char *form,
                              const char *key, json_t **doc, int *retry_after_ms, tk_err_t *err)
{
    outcome_t out = OUT_FINAL;
    reply_t r = {.should_retry = -1};
    struct curl_slist *headers = NULL;
    char url[1024], auth[512], idem[TK_STRIPE_KEY_MAX + 32];
    json_t *parsed = NULL;
    long status = 0;
    CURL *c = curl_easy_init();
    if (c == NULL) {
        tk_err_set(err, TK_EINTERNAL, NULL, "curl_easy_init failed");
        goto out;
    }
    snprintf(url, sizeof(url), "%s%s", o->api_base, path);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", o->api_key ? o->api_key : "");
    headers = curl_slist_append(headers, auth);
    if (key != NULL) {
        snprintf(idem, sizeof(idem), "Idempotency-Key: %s", key);
        headers = curl_slist_append(headers, idem);
    }
    headers = curl_slist_append(headers, "Accept: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    if (form != NULL) {
        headers = curl_slist_append(headers, "Content-Type: application/x-www-form-urlencoded");
        headers = curl_slist_append(headers, "Expect:"); /* no 100-continue round trip */
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, form);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(form));
    } else {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "ticketing/1 (+libcurl)");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)o->connect_timeout_ms);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)o->timeout_ms);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
    CURLcode cc = curl_easy_perform(c);
    if (cc != CURLE_OK) {
        bool transient = curl_transient(cc);
        tk_err_set(err, transient ? TK_EUNAVAIL : TK_EBADGATEWAY, NULL, "Stripe %s: %s", path,
                   r.too_big ? "response too large" : curl_easy_strerror(cc));
        out = transient ? OUT_RETRY : OUT_FINAL;
        goto out;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    parsed = r.body ? json_loadb(r.body, r.len, 0, NULL) : NULL;
    if (status >= 200 && status < 300) {
        if (!json_is_object(parsed)) {
            tk_err_set(err, TK_EBADGATEWAY, NULL, "Stripe %s: malformed response", path);
            goto out;
        }
        *doc = parsed;
        parsed = NULL;
        out = OUT_OK;
        goto out;
    }
    const char *type = NULL, *code = NULL, *message = NULL;
    error_fields(parsed, &type, &code, &message);
    bool retryable = status == 409 || status == 429 || status >= 500;
    if (r.should_retry == 0)
        retryable = false;
    else if (r.should_retry == 1)
        retryable = true;
    if (retryable) {
        /* 409: the key is in use by a concurrent request, or Stripe's lock timed out. */
        tk_err_set(err, status >= 500 ? TK_EBADGATEWAY : TK_EUNAVAIL, NULL,
                   "Stripe %s answered %ld%s%s", path, status, code ? " " : "", code ? code : "");
        *retry_after_ms = r.retry_after_ms;
        out = OUT_RETRY;
    } else if (status == 402 || (type && strcmp(type, "card_error") == 0)) {
        tk_err_set(err, TK_EINVAL, "token", "%s", message ? message : "Your card was declined.");
    } else if (status == 400 || status == 404) {
        tk_err_set(err, TK_EINVAL, "token", "%s", message ? message : "Invalid payment request");
    } else {
        /* 401/403 (our key), other 4xx, or an error status without Stripe's body. */
        tk_err_set(err, TK_EBADGATEWAY, NULL, "Stripe %s answered %ld%s%s", path, status,
                   code ? " " : "", code ? code : "");
    }
out:
    json_decref(parsed);
    free(r.body);
    curl_slist_free_all(headers);
    if (c != NULL)
        curl_easy_cleanup(c);
    return out;
}

/* The retry loop around attempt_once. *attempts accumulates over calls (charge makes two). */
static int stripe_call(const tk_stripe_options_t *o, const char *path, const char *form,
                       const char *key, json_t **doc, int *attempts, tk_err_t *err)
{
    static _Thread_local uint32_t seed;
    if (seed == 0)
        seed = (uint32_t)tk_mono_ms() ^ (uint32_t)(uintptr_t)&seed;
    pthread_once(&curl_once, curl_init_once);
    int max = o->max_attempts >= 1 ? o->max_attempts : 1;
    for (int n = 1;; n++) {
        int retry_after = 0;
        (*attempts)++;
        tk_err_clear(err);
        outcome_t out = attempt_once(o, path, form, key, doc, &retry_after, err);
        if (out == OUT_OK)
            return 0;
        if (out == OUT_FINAL || n >= max)
            return err->code;
        seed = seed * 1103515245u + 12345u;
        int wait = tk_stripe_backoff_ms(o, n, seed >> 8);
        if (retry_after > wait)
            wait = retry_after < o->backoff_max_ms ? retry_after : o->backoff_max_ms;
        tk_nap(wait, NULL);
    }
}

static void copy_str(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

/* The "id" of a Stripe object: a non-empty string that fits, or NULL. */
static const char *object_id(json_t *doc)
{
    const char *id = json_string_value(json_object_get(doc, "id"));
    return id && *id && strlen(id) <= TK_STRIPE_ID_MAX ? id : NULL;
}

static bool key_ok(const char *key)
{
    return key != NULL && *key != '\0' && strlen(key) <= TK_STRIPE_KEY_MAX - 3;
}

/* ------------------------------------------------------------------ charge and refund */

/*
 * One logical request's state, the same for every call below: the options in force (the caller's,
 * or the configuration's copied into defaults), the form being built, Stripe's reply, and where
 * errors go (the caller's err, or local when it passes NULL). request_begin sets it up,
 * request_next frees the form and the reply for a second call (charge makes two), request_end
 * frees them whatever happened and passes rc through.
 */
typedef struct request {
    tk_stripe_options_t defaults;
    const tk_stripe_options_t *opts; /* borrowed: the caller's, or &defaults */
    form_t form;                     /* owned */
    json_t *doc;                     /* owned: the last reply */
    tk_err_t local;
    tk_err_t *err; /* borrowed: never NULL */
} request_t;

static void request_begin(request_t *r, const tk_stripe_options_t *opts, tk_err_t *err)
{
    memset(r, 0, sizeof(*r));
    r->err = err != NULL ? err : &r->local;
    if (opts == NULL) {
        tk_stripe_options_default(&r->defaults);
        opts = &r->defaults;
    }
    r->opts = opts;
}

static void request_next(request_t *r)
{
    json_decref(r->doc);
    r->doc = NULL;
    free(r->form.buf);
    r->form = (form_t){0};
}

static int request_end(request_t *r, int rc)
{
    request_next(r);
    return rc;
}

/* stripe_call with the request's options, form (a GET when it is empty) and reply. */
static int request_send(request_t *r, const char *path, const char *key, int *attempts)
{
    return stripe_call(r->opts, path, r->form.buf, key, &r->doc, attempts, r->err);
}

/* The id of the object Stripe created (@p what, for the error), copied into @p out. */
static int created_id(json_t *doc, const char *what, char *out, size_t size, tk_err_t *err)
{
    const char *id = object_id(doc);
    if (id == NULL)
        return tk_err_set(err, TK_EBADGATEWAY, NULL, "Stripe %s without an id", what);
    copy_str(out, size, id);
    return 0;
}

/* Fill @p out from a PaymentIntent object. false when it has no usable id. */
static bool intent_fill(json_t *pi, tk_stripe_charge_t *out)
{
    const char *id = object_id(pi);
    if (id == NULL)
        return false;
    copy_str(out->id, sizeof(out->id), id);
    copy_str(out->status, sizeof(out->status), json_string_value(json_object_get(pi, "status")));
    copy_str(out->currency, sizeof(out->currency),
             json_string_value(json_object_get(pi, "currency")));
    out->amount = (int64_t)json_integer_value(json_object_get(pi, "amount"));
    return true;
}

int tk_stripe_charge(const tk_stripe_options_t *opts, const tk_stripe_charge_req_t *req,
                     tk_stripe_charge_t *out, tk_err_t *err)
{
    request_t r;
    char amount[32], pm_key[TK_STRIPE_KEY_MAX + 1], pm[TK_STRIPE_ID_MAX + 1];
    int rc = 0;
    memset(out, 0, sizeof(*out));
    request_begin(&r, opts, err);
    err = r.err;
    if (req->amount <= 0)
        return tk_err_set(err, TK_EINVAL, "amount", "amount must be > 0");
    if (req->currency == NULL || *req->currency == '\0')
        return tk_err_set(err, TK_EINVAL, "currency", "currency is required");
    if (req->payment == NULL || *req->payment == '\0')
        return tk_err_set(err, TK_EINVAL, "token", "a card token or payment method is required");
    if (!key_ok(req->idempotency_key))
        return tk_err_set(err, TK_EINVAL, "idempotency_key", "an idempotency key is required");

    copy_str(pm, sizeof(pm), req->payment);
    if (strncmp(req->payment, "tok_", 4) == 0) {
        form_add(&r.form, "type", "card");
        form_add(&r.form, "card[token]", req->payment);
        snprintf(pm_key, sizeof(pm_key), "%s-pm", req->idempotency_key);
        if ((rc = request_send(&r, "/v1/payment_methods", pm_key, &out->attempts)) != 0)
            goto out;
        if ((rc = created_id(r.doc, "payment method", pm, sizeof(pm), err)) != 0)
            goto out;
        request_next(&r);
    }
    snprintf(amount, sizeof(amount), "%lld", (long long)req->amount);
    form_add(&r.form, "amount", amount);
    form_add(&r.form, "currency", req->currency);
    form_add(&r.form, "confirm", "true");
    form_add(&r.form, "payment_method_types[0]", "card");
    form_add(&r.form, "payment_method", pm);
    if (req->order_id != NULL)
        form_add(&r.form, "metadata[order_id]", req->order_id);
    if (req->attempt_id != NULL)
        form_add(&r.form, "metadata[attempt_id]", req->attempt_id);
    if ((rc = request_send(&r, "/v1/payment_intents", req->idempotency_key, &out->attempts)) != 0)
        goto out;
    if (!intent_fill(r.doc, out)) {
        rc = tk_err_set(err, TK_EBADGATEWAY, NULL, "Stripe payment intent without an id");
        goto out;
    }
    const char *status = json_string_value(json_object_get(r.doc, "status"));
    if (status != NULL &&
        (strcmp(status, "requires_action") == 0 || strcmp(status, "requires_confirmation") == 0 ||
         strcmp(status, "requires_source_action") == 0)) {
        rc = tk_err_set(err, TK_EINVAL, "token",
                        "Your card requires authentication, which is not supported here");
        goto out;
    }
    if (status != NULL && strcmp(status, "canceled") == 0) {
        rc = tk_err_set(err, TK_EINVAL, "token", "The payment was canceled");
        goto out;
    }
out:
    return request_end(&r, rc);
}

int tk_stripe_refund(const tk_stripe_options_t *opts, const tk_stripe_refund_req_t *req,
                     tk_stripe_refund_t *out, tk_err_t *err)
{
    request_t r;
    int rc = 0;
    memset(out, 0, sizeof(*out));
    request_begin(&r, opts, err);
    err = r.err;
    if (req->payment_intent == NULL || *req->payment_intent == '\0')
        return tk_err_set(err, TK_EINVAL, "payment_intent", "a payment intent is required");
    if (!key_ok(req->idempotency_key))
        return tk_err_set(err, TK_EINVAL, "idempotency_key", "an idempotency key is required");
    form_add(&r.form, "payment_intent", req->payment_intent);
    form_add(&r.form, "reason", "requested_by_customer");
    if (req->order_id != NULL)
        form_add(&r.form, "metadata[order_id]", req->order_id);
    if (req->reason != NULL)
        form_add(&r.form, "metadata[reason]", req->reason);
    if ((rc = request_send(&r, "/v1/refunds", req->idempotency_key, &out->attempts)) != 0)
        goto out;
    if ((rc = created_id(r.doc, "refund", out->id, sizeof(out->id), err)) != 0)
        goto out;
    copy_str(out->status, sizeof(out->status), json_string_value(json_object_get(r.doc, "status")));
out:
    return request_end(&r, rc);
}

/* ------------------------------------------------------------------ reconciliation */

int tk_stripe_find_intent(const tk_stripe_options_t *opts, const char *attempt_id,
                          tk_stripe_charge_t *out, tk_err_t *err)
{
    request_t r;
    char path[512], query[128];
    int attempts = 0;
    memset(out, 0, sizeof(*out));
    request_begin(&r, opts, err);
    /* Only a UUID goes into the search query: nothing can escape its quotes. */
    if (attempt_id == NULL || strlen(attempt_id) != TK_UUID_LEN || !tk_uuid_valid(attempt_id))
        return tk_err_set(r.err, TK_EINVAL, "attempt_id", "attempt id must be a UUID");
    snprintf(query, sizeof(query), "metadata['attempt_id']:'%s'", attempt_id);
    form_add(&r.form, "query", query);
    snprintf(path, sizeof(path), "/v1/payment_intents/search?%s", r.form.buf);
    request_next(&r); /* the query is in the path: a GET, no body */
    int rc = request_send(&r, path, NULL, &attempts);
    out->attempts = attempts;
    if (rc != 0)
        return request_end(&r, rc);
    json_t *data = json_object_get(r.doc, "data");
    if (!json_is_array(data))
        return request_end(
            &r, tk_err_set(r.err, TK_EBADGATEWAY, NULL, "Stripe search: malformed response"));
    /* One key per attempt makes one intent; prefer a succeeded one if Stripe ever shows more. */
    int found = 0;
    size_t i;
    json_t *pi;
    json_array_foreach(data, i, pi)
    {
        const char *status = json_string_value(json_object_get(pi, "status"));
        const char *mine =
            json_string_value(json_object_get(json_object_get(pi, "metadata"), "attempt_id"));
        /* Only an intent that names our attempt: a search hit is not proof enough. */
        if (mine == NULL || strcasecmp(mine, attempt_id) != 0)
            continue;
        if (found && !(status && strcmp(status, "succeeded") == 0))
            continue;
        if (intent_fill(pi, out))
            found = 1;
    }
    return request_end(&r, found);
}

/* ------------------------------------------------------------------ webhooks */

static void hmac_hex(const char *secret, const char *t, const char *payload, size_t len,
                     char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    /* The signed text is "<t>.<payload>" (HMAC's one-shot form: OpenSSL 3 deprecates the rest). */
    size_t tlen = strlen(t);
    unsigned char *text = tk_mem_alloc(tlen + 1 + len + 1);
    memcpy(text, t, tlen);
    text[tlen] = '.';
    if (len > 0)
        memcpy(text + tlen + 1, payload, len);
    HMAC(EVP_sha256(), secret, (int)strlen(secret), text, tlen + 1 + len, md, &mdlen);
    free(text);
    for (unsigned int i = 0; i < mdlen && i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    out[64] = '\0';
}

void tk_stripe_webhook_sign(const char *payload, size_t len, const char *secret, int64_t t,
                            char out[TK_STRIPE_SIGNATURE_MAX + 1])
{
    char ts[24], hex[65];
    snprintf(ts, sizeof(ts), "%lld", (long long)t);
    hmac_hex(secret, ts, payload, len, hex);
    snprintf(out, TK_STRIPE_SIGNATURE_MAX + 1, "t=%s,v1=%s", ts, hex);
}

int tk_stripe_webhook_verify(const char *payload, size_t len, const char *header,
                             const char *secret, int tolerance_s, int64_t now_s, tk_err_t *err)
{
    if (secret == NULL || *secret == '\0')
        return tk_err_set(err, TK_EUNAVAIL, NULL, "Webhook secret not configured");
    if (header == NULL || strlen(header) > TK_STRIPE_SIGNATURE_MAX)
        return tk_err_set(err, TK_EINVAL, "Stripe-Signature", "Invalid signature");
    char t[24] = "";
    const char *v1[8];
    size_t nv1 = 0;
    for (const char *p = header; *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n > 2 && p[0] == 't' && p[1] == '=' && n - 2 < sizeof(t)) {
            memcpy(t, p + 2, n - 2);
            t[n - 2] = '\0';
        } else if (n == 67 && strncmp(p, "v1=", 3) == 0 && nv1 < 8) {
            v1[nv1++] = p + 3;
        }
        p = end ? end + 1 : p + n;
    }
    bool digits = t[0] != '\0';
    for (const char *c = t; *c; c++)
        digits = digits && isdigit((unsigned char)*c);
    if (!digits || nv1 == 0)
        return tk_err_set(err, TK_EINVAL, "Stripe-Signature", "Invalid signature");
    int64_t ts = strtoll(t, NULL, 10);
    if (ts < now_s - tolerance_s || ts > now_s + tolerance_s)
        return tk_err_set(err, TK_EINVAL, "Stripe-Signature", "Signature timestamp too old");
    char expected[65];
    hmac_hex(secret, t, payload, len, expected);
    bool ok = false;
    for (size_t i = 0; i < nv1; i++)
        ok |= CRYPTO_memcmp(expected, v1[i], 64) == 0;
    if (!ok)
        return tk_err_set(err, TK_EINVAL, "Stripe-Signature", "Invalid signature");
    return 0;
}
