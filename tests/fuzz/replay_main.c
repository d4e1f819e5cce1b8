/*
 * replay_main.c - a main() for the fuzz drivers without libFuzzer: runs every file named on the
 * command line (directories are walked one level) through LLVMFuzzerTestOneInput. The normal
 * build uses it to run the seed corpus as a unit test; a crash file from scripts/fuzz.sh can be
 * replayed the same way under gdb.
 */
#include "fuzz.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        return 1;
    }
    unsigned char *buf = NULL;
    size_t len = 0, cap = 0;
    int rc = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 4096;
            unsigned char *grown = realloc(buf, cap);
            if (grown == NULL) {
                rc = 1;
                goto out;
            }
            buf = grown;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        if (n == 0)
            break;
        len += n;
    }
    if (ferror(f)) {
        perror(path);
        rc = 1;
        goto out;
    }
    LLVMFuzzerTestOneInput(buf, len);
out:
    free(buf);
    fclose(f);
    return rc;
}

int main(int argc, char **argv)
{
    int rc = 0, count = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            perror(argv[i]);
            return 1;
        }
        if (!S_ISDIR(st.st_mode)) {
            rc |= run_file(argv[i]);
            count++;
            continue;
        }
        DIR *d = opendir(argv[i]);
        if (d == NULL) {
            perror(argv[i]);
            return 1;
        }
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            char path[4096];
            snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
            rc |= run_file(path);
            count++;
        }
        closedir(d);
    }
    printf("replayed %d inputs\n", count);
    return rc != 0 || count == 0;
}
