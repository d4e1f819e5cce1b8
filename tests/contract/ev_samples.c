/*
 * ev_samples.c - the C side of the contract test (tests/contract/validate.mjs).
 *
 *   ev_samples              print one encoded envelope per catalog type, as JSON lines
 *   ev_samples --check      read records from stdin, one per line, and print for each line
 *                           "ok" or "err <field>: <message>" as ev_envelope_decode judges it
 *   ev_samples --seeds DIR  write the fuzz seed corpus: DIR/envelope/<n>.json (one record each)
 *                           and DIR/data/<n>.bin (selector byte n, then that type's data JSON,
 *                           the input format of tests/fuzz/fuzz_ev_data.c)
 *
 * validate.mjs runs the same lines through ajv and the schemas in schemas/events/, so the codecs
 * and the schemas are checked to accept and refuse the same records.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ev_catalog.h"
#include "ev_envelope.h"
#include "ev_money.h"
#include "ev_sample_data.h"

/* The encoded sample envelope of catalog entry @p i. Owned, free(); NULL with @p err set. */
static char *sample_record(size_t i, tk_err_t *err)
{
    const ev_type_info_t *t = ev_catalog_at(i);
    ev_sample_t s;
    ev_envelope_t env;
    char *text = NULL;
    if (ev_sample_get(t->name, &s) != 0) {
        tk_err_set(err, TK_EINTERNAL, "type", "no sample for %s", t->name);
        return NULL;
    }
    if (ev_envelope_init(&env, s.type, s.subject, s.aggregateversion, EV_SAMPLE_CORRELATION, s.data,
                         err) != 0)
        return NULL;
    ev_envelope_encode(&env, &text, NULL, err);
    ev_envelope_release(&env);
    return text;
}

static int print_samples(void)
{
    for (size_t i = 0; i < ev_catalog_count(); i++) {
        tk_err_t err = {0};
        char *text = sample_record(i, &err);
        if (text == NULL) {
            fprintf(stderr, "ev_samples: %s: %s\n", ev_catalog_at(i)->name, err.message);
            return 1;
        }
        printf("%s\n", text);
        free(text);
    }
    return 0;
}

static int check_lines(void)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, stdin)) >= 0) {
        if (n > 0 && line[n - 1] == '\n')
            n--;
        ev_envelope_t env;
        tk_err_t err = {0};
        if (ev_envelope_decode(line, (size_t)n, &env, &err) == 0)
            printf("ok\n");
        else
            printf("err %s: %s\n", err.field[0] ? err.field : "-", err.message);
        ev_envelope_release(&env);
    }
    free(line);
    return ferror(stdin) ? 1 : 0;
}

static int write_file(const char *path, const void *a, size_t alen, const void *b, size_t blen)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        fprintf(stderr, "ev_samples: %s: %s\n", path, strerror(errno));
        return 1;
    }
    int rc = (alen && fwrite(a, 1, alen, f) != alen) || (blen && fwrite(b, 1, blen, f) != blen);
    rc |= fclose(f) != 0;
    return rc;
}

static int write_seeds(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/envelope", dir);
    mkdir(dir, 0777);
    mkdir(path, 0777);
    snprintf(path, sizeof(path), "%s/data", dir);
    mkdir(path, 0777);
    for (size_t i = 0; i < ev_catalog_count(); i++) {
        tk_err_t err = {0};
        const ev_type_info_t *t = ev_catalog_at(i);
        char *text = sample_record(i, &err);
        if (text == NULL)
            return 1;
        snprintf(path, sizeof(path), "%s/envelope/%s.json", dir, t->schema);
        int rc = write_file(path, text, strlen(text), NULL, 0);
        free(text);
        ev_sample_t s;
        if (rc != 0 || ev_sample_get(t->name, &s) != 0)
            return 1;
        char *data = json_dumps(s.data, EV_JSON_DUMP_FLAGS);
        unsigned char selector = (unsigned char)i;
        snprintf(path, sizeof(path), "%s/data/%s.bin", dir, t->schema);
        rc = write_file(path, &selector, 1, data, strlen(data));
        free(data);
        json_decref(s.data);
        if (rc != 0)
            return 1;
    }
    /* A money seed for the selector after the last type (see fuzz_ev_data.c). */
    unsigned char selector = (unsigned char)ev_catalog_count();
    snprintf(path, sizeof(path), "%s/data/money.bin", dir);
    return write_file(path, &selector, 1, "19.99", 5);
}

int main(int argc, char **argv)
{
    if (argc == 1)
        return print_samples();
    if (argc == 2 && strcmp(argv[1], "--check") == 0)
        return check_lines();
    if (argc == 3 && strcmp(argv[1], "--seeds") == 0)
        return write_seeds(argv[2]);
    fprintf(stderr, "usage: ev_samples [--check | --seeds DIR]\n");
    return 2;
}
