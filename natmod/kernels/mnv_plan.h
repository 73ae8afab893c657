// A run plan: a model's ops as one flat int32 table that one call runs in C, as TFLite
// Micro's interpreter loops over its nodes, instead of one Python call per op.
//
// The table is a sequence of records, one per op:
//   op code (docs/capsule-format.md), n_params, params[n_params], then the op's operands,
//   each MNV_PLAN_OPERAND_WORDS words: region, byte offset, byte count.
// Operands are in the order of the op's kernel arguments (inputs, then the output); a region
// of -1 is an absent bias. A region is a caller's buffer (the arena, the capsule's bytes in
// flash, a weights buffer), found through a callback so that the table holds no addresses.
//
// The table is built by the loader from validated data, but the runner trusts none of it:
// every record is checked first (known op, its params within the table, every operand inside
// its region, int32 operands 4-aligned, outputs in writable regions); a bad table is refused
// before any op runs, and each kernel still checks its argument block against its buffers.
#ifndef MNV_PLAN_H
#define MNV_PLAN_H

#include "mnv_kernels.h"

typedef struct {
    uint8_t *data;
    size_t len;
} mnv_region;

// Fills *out with region `index` (writable if `write`); nonzero when there is no such region
// or it cannot be written.
typedef int (*mnv_region_fn)(void *ctx, int32_t index, int write, mnv_region *out);

// MNV_OK, or the first failing record's error (MNV_E*); *failed is that record's index.
int mnv_run_plan(const int32_t *table, size_t n_words, mnv_region_fn resolve, void *ctx,
    size_t *failed);

#endif
