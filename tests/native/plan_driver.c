// Host driver for the run-plan interpreter (kernels/plan.c) under AddressSanitizer/UBSan
// (tests/test_run_plan.py). Reads plans from stdin and answers each on stdout, little-endian:
//   plan:   u32 n_regions, per region u32 nbytes, u32 writable and its bytes, then
//           u32 n_words and i32 words[n_words]
//   answer: i32 rc, u32 failed record, then every region's bytes after the run
// Each region is malloc'ed at its exact size, so a one-byte overrun is reported.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mnv_plan.h"

typedef struct {
    mnv_region *regions;
    int *writable;
    uint32_t count;
} regions_t;

static void read_exact(void *p, size_t n) {
    if (fread(p, 1, n, stdin) != n) {
        exit(2);
    }
}

static int resolve(void *ctx, int32_t index, int write, mnv_region *out) {
    const regions_t *r = ctx;
    if (index < 0 || (uint32_t)index >= r->count || (write && !r->writable[index])) {
        return 1;
    }
    *out = r->regions[index];
    return 0;
}

int main(void) {
    uint32_t count;
    while (fread(&count, 4, 1, stdin) == 1) {
        regions_t r = {calloc(count + 1, sizeof(mnv_region)), calloc(count + 1, sizeof(int)),
            count};
        for (uint32_t k = 0; k < count; k++) {
            uint32_t nbytes, writable;
            read_exact(&nbytes, 4);
            read_exact(&writable, 4);
            r.regions[k].data = malloc(nbytes ? nbytes : 1);
            r.regions[k].len = nbytes;
            r.writable[k] = (int)writable;
            read_exact(r.regions[k].data, nbytes);
        }
        uint32_t n_words;
        read_exact(&n_words, 4);
        int32_t *words = malloc(n_words ? n_words * 4 : 4);
        read_exact(words, (size_t)n_words * 4);
        size_t failed = 0;
        const int32_t rc = mnv_run_plan(words, n_words, resolve, &r, &failed);
        const uint32_t failed32 = (uint32_t)failed;
        fwrite(&rc, 4, 1, stdout);
        fwrite(&failed32, 4, 1, stdout);
        for (uint32_t k = 0; k < count; k++) {
            fwrite(r.regions[k].data, 1, r.regions[k].len, stdout);
            free(r.regions[k].data);
        }
        free(words);
        free(r.regions);
        free(r.writable);
    }
    return 0;
}
