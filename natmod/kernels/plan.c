// The run-plan interpreter (mnv_plan.h): checks the whole table, then runs it record by
// record through the same kernels the per-op binding calls.
#include "mnv_limits.h"
#include "mnv_math.h"
#include "mnv_plan.h"

enum { CONV = 1, DEPTHWISE = 2, FC = 3, AVG_POOL = 4, MAX_POOL = 5, ADD = 6, RESHAPE = 7,
    SOFTMAX = 8, GATHER = 11, LOOKUP = 20, BINARY = 21, MEAN = 22 };

#define MAX_OPERANDS 6

// Operands of each op the plan runs (0: not run by a plan).
static int operand_count(int32_t op) {
    if (op == CONV || op == DEPTHWISE || op == FC) {
        return 6;  // input, filter, bias (may be absent), multipliers, shifts, output
    }
    if (op == AVG_POOL || op == MAX_POOL || op == RESHAPE || op == SOFTMAX || op == MEAN) {
        return 2;
    }
    if (op == ADD || op == GATHER || op == LOOKUP || op == BINARY) {
        return 3;
    }
    return 0;
}

static int is_int32_operand(int32_t op, int k) {
    return op <= FC ? (k >= 2 && k <= 4) : (op == GATHER && k == 1);
}

typedef struct {
    const int32_t *params;
    size_t n_params;
    uint8_t *ptr[MAX_OPERANDS];
    size_t len[MAX_OPERANDS];
} record;

// Decodes the record at table[*pos] and checks its operands; advances *pos past it.
static int decode(const int32_t *table, size_t n_words, size_t *pos, mnv_region_fn resolve,
    void *ctx, record *r, int32_t *op) {
    size_t at = *pos;
    if (n_words - at < 2) {
        return MNV_EARGS;
    }
    *op = table[at];
    const int count = operand_count(*op);
    const int32_t n_params = table[at + 1];
    if (count == 0 || n_params < 0 || n_params > MNV_PLAN_MAX_PARAMS) {
        return MNV_EARGS;
    }
    at += 2;
    const size_t need = (size_t)n_params + (size_t)count * MNV_PLAN_OPERAND_WORDS;
    if (n_words - at < need) {
        return MNV_EARGS;
    }
    r->params = table + at;
    r->n_params = (size_t)n_params;
    at += (size_t)n_params;
    for (int k = 0; k < count; k++, at += MNV_PLAN_OPERAND_WORDS) {
        const int32_t region = table[at], offset = table[at + 1], nbytes = table[at + 2];
        r->ptr[k] = NULL;
        r->len[k] = 0;
        if (region == -1 && *op <= FC && k == 2) {
            continue;  // no bias
        }
        mnv_region buf;
        if (region < 0 || offset < 0 || nbytes < 0 ||
            resolve(ctx, region, k == count - 1, &buf) != 0 ||
            (size_t)offset > buf.len || (size_t)nbytes > buf.len - (size_t)offset) {
            return MNV_ESHAPE;
        }
        uint8_t *p = buf.data + offset;
        if (is_int32_operand(*op, k) && (((uintptr_t)p & 3) || (nbytes & 3))) {
            return MNV_ESHAPE;
        }
        r->ptr[k] = p;
        r->len[k] = (size_t)nbytes;
    }
    *pos = at;
    return MNV_OK;
}

static int run_record(int32_t op, const record *r) {
    const int32_t *a = r->params;
    const size_t n = r->n_params;
    uint8_t *const *p = r->ptr;
    const size_t *len = r->len;
    if (op <= FC) {
        mnv_channels ch;
        ch.bias = (const int32_t *)(const void *)p[2];
        ch.mult = (const int32_t *)(const void *)p[3];
        ch.shift = (const int32_t *)(const void *)p[4];
        ch.count = len[3] < len[4] ? len[3] / 4 : len[4] / 4;
        if (ch.bias && len[2] / 4 < ch.count) {
            ch.count = len[2] / 4;
        }
        const int8_t *in = (const int8_t *)p[0], *filt = (const int8_t *)p[1];
        int8_t *out = (int8_t *)p[5];
        if (op == FC) {
            return mnv_fully_connected(in, len[0], filt, len[1], &ch, out, len[5], a, n);
        }
        if (op == CONV) {
            return mnv_conv_2d(in, len[0], filt, len[1], &ch, out, len[5], a, n);
        }
        return mnv_depthwise_conv_2d(in, len[0], filt, len[1], &ch, out, len[5], a, n);
    }
    const int8_t *x = (const int8_t *)p[0], *y = (const int8_t *)p[1];
    if (op == AVG_POOL) {
        return mnv_average_pool_2d(x, len[0], (int8_t *)p[1], len[1], a, n);
    }
    if (op == MAX_POOL) {
        return mnv_max_pool_2d(x, len[0], (int8_t *)p[1], len[1], a, n);
    }
    if (op == RESHAPE) {
        return mnv_reshape(x, len[0], (int8_t *)p[1], len[1], a, n);
    }
    if (op == SOFTMAX) {
        return mnv_softmax(x, len[0], (int8_t *)p[1], len[1], a, n);
    }
    if (op == MEAN) {
        return mnv_mean(x, len[0], (int8_t *)p[1], len[1], a, n);
    }
    if (op == ADD) {
        return mnv_add(x, len[0], y, len[1], (int8_t *)p[2], len[2], a, n);
    }
    if (op == GATHER) {
        return mnv_gather(x, len[0], (const int32_t *)(const void *)p[1], len[1] / 4,
            (int8_t *)p[2], len[2], a, n);
    }
    if (op == LOOKUP) {
        return mnv_lookup(x, len[0], y, len[1], (int8_t *)p[2], len[2], a, n);
    }
    return mnv_binary(x, len[0], y, len[1], (int8_t *)p[2], len[2], a, n);  // decode() admits no other
}

int mnv_run_plan(const int32_t *table, size_t n_words, mnv_region_fn resolve, void *ctx,
    size_t *failed) {
    record r;
    int32_t op;
    for (int pass = 0; pass < 2; pass++) {
        size_t pos = 0;
        for (*failed = 0; pos < n_words; (*failed)++) {
            int rc = decode(table, n_words, &pos, resolve, ctx, &r, &op);
            if (rc == MNV_OK && pass == 1) {
                rc = run_record(op, &r);
            }
            if (rc != MNV_OK) {
                return rc;
            }
        }
    }
    return MNV_OK;
}
