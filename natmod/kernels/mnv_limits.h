// The limits every kernel assumes, one table shared with the loader: device/minerva/graph.py
// defines the same names (MNV_X here is _X there) with the same values, and
// tests/test_limits.py checks that the two agree. A capsule the loader accepts is therefore
// one every kernel accepts, in every tier.
#ifndef MNV_LIMITS_H
#define MNV_LIMITS_H

// Every input size, stride, dilation and padding, and the furthest coordinate a window
// reaches, stays at or below this (so per-pixel index arithmetic fits an int32).
#define MNV_MAX_COORD 0x3FFFFFFF
// Taps of one pooling window: below this.
#define MNV_MAX_POOL_TAPS 0x800000
// TFLite's Q12.19 sum of exponentials overflows past this many classes.
#define MNV_MAX_SOFTMAX_DEPTH 4095
// Requantization shifts (positive: left).
#define MNV_MIN_SHIFT (-31)
#define MNV_MAX_SHIFT 30
// ADD's left shift of its inputs (TFLite uses 20).
#define MNV_MAX_ADD_LEFT_SHIFT 20
// MUL's output shift: |product| <= 2**16, so a left shift past 15 would leave int32.
#define MNV_MAX_MUL_SHIFT 15
// QUANTIZE_INT16's shift: |x - zp| <= 2**16 likewise.
#define MNV_MAX_QUANTIZE_INT16_SHIFT 15
// A run plan (mnv_plan.h): the longest argument block a record may carry (BINARY's).
#define MNV_PLAN_MAX_PARAMS 25
// The words of one operand in a record: region, byte offset, byte count.
#define MNV_PLAN_OPERAND_WORDS 3

#endif
