// minerva_nat: the MicroPython binding of the plain C kernels in kernels/.
//
// Each function takes the same arguments as its pure-Python twin in minerva/kernels_py.py:
// buffer-protocol objects (int8 'b' arrays or memoryviews, int32 'i' arrays, float32 'f'
// arrays), None for an absent bias, and the op's argument block as array('i'). It hands the
// buffers and their lengths to the C kernel; a kernel that finds the block inconsistent with
// the buffers writes nothing and makes this raise ValueError (a loaded capsule never does).
#include "py/dynruntime.h"

#include "kernels/mnv_ed25519.h"
#include "kernels/mnv_kernels.h"
#include "kernels/mnv_math.h"
#include "kernels/mnv_plan.h"
#include "kernels/mnv_train.h"

// natmod/Makefile sets MNV_FLOAT_KERNELS to 1 where the float kernels are built, else 0.
#ifndef MNV_FLOAT_KERNELS
#error "build with natmod/Makefile (MNV_FLOAT_KERNELS is not set)"
#endif
#define MNV_HAS_FLOAT MNV_FLOAT_KERNELS

#include "kernels/mnv_libc.h"

// The module's functions and mpy_init come first: the .mpy starts with a Thumb-1 branch to
// mpy_init that reaches only 2 KB into the code (natmod/Makefile keeps source order there).
static mp_obj_t conv_2d(size_t n, const mp_obj_t *a);
static mp_obj_t depthwise_conv_2d(size_t n, const mp_obj_t *a);
static mp_obj_t fully_connected(size_t n, const mp_obj_t *a);
static mp_obj_t average_pool_2d(mp_obj_t in, mp_obj_t out, mp_obj_t args);
static mp_obj_t max_pool_2d(mp_obj_t in, mp_obj_t out, mp_obj_t args);
static mp_obj_t reshape(mp_obj_t in, mp_obj_t out, mp_obj_t args);
static mp_obj_t softmax(mp_obj_t in, mp_obj_t out, mp_obj_t args);
static mp_obj_t add(size_t n, const mp_obj_t *a);
static mp_obj_t gather(size_t n, const mp_obj_t *a);
static mp_obj_t concatenation(mp_obj_t inputs_obj, mp_obj_t out_obj, mp_obj_t args_obj);
static mp_obj_t quantize(mp_obj_t in_obj, mp_obj_t out_obj, mp_obj_t args_obj);
static mp_obj_t dequantize(mp_obj_t in_obj, mp_obj_t out_obj, mp_obj_t args_obj);
static mp_obj_t lookup(size_t n, const mp_obj_t *a);
static mp_obj_t binary(size_t n, const mp_obj_t *a);
static mp_obj_t mean(mp_obj_t in, mp_obj_t out, mp_obj_t args);
static mp_obj_t quantize_int16(mp_obj_t in_obj, mp_obj_t out_obj, mp_obj_t args_obj);
static mp_obj_t ed25519_verify(mp_obj_t key_obj, mp_obj_t message_obj, mp_obj_t sig_obj);
static mp_obj_t run_plan(mp_obj_t table_obj, mp_obj_t regions_obj);
#if MNV_HAS_FLOAT
static mp_obj_t fc_forward(size_t n, const mp_obj_t *a);
static mp_obj_t fc_backward(size_t n, const mp_obj_t *a);
static mp_obj_t conv_forward(size_t n, const mp_obj_t *a);
static mp_obj_t conv_backward(size_t n, const mp_obj_t *a);
static mp_obj_t clamp_mask(size_t n, const mp_obj_t *a);
static mp_obj_t sgd_momentum(size_t n, const mp_obj_t *a);
#endif

static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(conv_2d_obj, 7, 7, conv_2d);
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(depthwise_conv_2d_obj, 7, 7, depthwise_conv_2d);
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(fully_connected_obj, 7, 7, fully_connected);
static MP_DEFINE_CONST_FUN_OBJ_3(average_pool_2d_obj, average_pool_2d);
static MP_DEFINE_CONST_FUN_OBJ_3(max_pool_2d_obj, max_pool_2d);
static MP_DEFINE_CONST_FUN_OBJ_3(reshape_obj, reshape);
static MP_DEFINE_CONST_FUN_OBJ_3(softmax_obj, softmax);
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(add_obj, 4, 4, add);
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(gather_obj, 4, 4, gather);
static MP_DEFINE_CONST_FUN_OBJ_3(concatenation_obj, concatenation);
static MP_DEFINE_CONST_FUN_OBJ_3(quantize_obj, quantize);
static MP_DEFINE_CONST_FUN_OBJ_3(dequantize_obj, dequantize);
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(lookup_obj, 4, 4, lookup);
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(binary_obj, 4, 4, binary);
static MP_DEFINE_CONST_FUN_OBJ_3(mean_obj, mean);
static MP_DEFINE_CONST_FUN_OBJ_3(quantize_int16_obj, quantize_int16);
static MP_DEFINE_CONST_FUN_OBJ_3(ed25519_verify_obj, ed25519_verify);
static MP_DEFINE_CONST_FUN_OBJ_2(run_plan_obj, run_plan);
#if MNV_HAS_FLOAT
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(fc_forward_obj, 8, 8, fc_forward);
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(fc_backward_obj, 8, 8, fc_backward);
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(conv_forward_obj, 7, 7, conv_forward);
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(conv_backward_obj, 7, 7, conv_backward);
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(clamp_mask_obj, 5, 5, clamp_mask);
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(sgd_momentum_obj, 7, 7, sgd_momentum);
#endif

mp_obj_t mpy_init(mp_obj_fun_bc_t *self, size_t n_args, size_t n_kw, mp_obj_t *args) {
    MP_DYNRUNTIME_INIT_ENTRY

    mp_store_global(MP_QSTR_conv_2d, MP_OBJ_FROM_PTR(&conv_2d_obj));
    mp_store_global(MP_QSTR_depthwise_conv_2d, MP_OBJ_FROM_PTR(&depthwise_conv_2d_obj));
    mp_store_global(MP_QSTR_fully_connected, MP_OBJ_FROM_PTR(&fully_connected_obj));
    mp_store_global(MP_QSTR_average_pool_2d, MP_OBJ_FROM_PTR(&average_pool_2d_obj));
    mp_store_global(MP_QSTR_max_pool_2d, MP_OBJ_FROM_PTR(&max_pool_2d_obj));
    mp_store_global(MP_QSTR_add, MP_OBJ_FROM_PTR(&add_obj));
    mp_store_global(MP_QSTR_reshape, MP_OBJ_FROM_PTR(&reshape_obj));
    mp_store_global(MP_QSTR_softmax, MP_OBJ_FROM_PTR(&softmax_obj));
    mp_store_global(MP_QSTR_quantize, MP_OBJ_FROM_PTR(&quantize_obj));
    mp_store_global(MP_QSTR_dequantize, MP_OBJ_FROM_PTR(&dequantize_obj));
    mp_store_global(MP_QSTR_gather, MP_OBJ_FROM_PTR(&gather_obj));
    mp_store_global(MP_QSTR_concatenation, MP_OBJ_FROM_PTR(&concatenation_obj));
    mp_store_global(MP_QSTR_lookup, MP_OBJ_FROM_PTR(&lookup_obj));
    mp_store_global(MP_QSTR_binary, MP_OBJ_FROM_PTR(&binary_obj));
    mp_store_global(MP_QSTR_mean, MP_OBJ_FROM_PTR(&mean_obj));
    mp_store_global(MP_QSTR_quantize_int16, MP_OBJ_FROM_PTR(&quantize_int16_obj));
    mp_store_global(MP_QSTR_ed25519_verify, MP_OBJ_FROM_PTR(&ed25519_verify_obj));
    mp_store_global(MP_QSTR_run_plan, MP_OBJ_FROM_PTR(&run_plan_obj));
    mp_store_global(MP_QSTR_HAS_FLOAT, mp_obj_new_bool(MNV_HAS_FLOAT));
#if MNV_HAS_FLOAT
    mp_store_global(MP_QSTR_fc_forward, MP_OBJ_FROM_PTR(&fc_forward_obj));
    mp_store_global(MP_QSTR_fc_backward, MP_OBJ_FROM_PTR(&fc_backward_obj));
    mp_store_global(MP_QSTR_conv_forward, MP_OBJ_FROM_PTR(&conv_forward_obj));
    mp_store_global(MP_QSTR_conv_backward, MP_OBJ_FROM_PTR(&conv_backward_obj));
    mp_store_global(MP_QSTR_clamp_mask, MP_OBJ_FROM_PTR(&clamp_mask_obj));
    mp_store_global(MP_QSTR_sgd_momentum, MP_OBJ_FROM_PTR(&sgd_momentum_obj));
#endif

    MP_DYNRUNTIME_INIT_EXIT
}

static void check(int rc) {
    if (rc == MNV_EARGS) {
        mp_raise_ValueError(MP_ERROR_TEXT("minerva_nat: wrong number of op params"));
    } else if (rc == MNV_ESHAPE) {
        mp_raise_ValueError(MP_ERROR_TEXT("minerva_nat: op params disagree with buffer sizes"));
    } else if (rc != MNV_OK) {
        mp_raise_ValueError(MP_ERROR_TEXT("minerva_nat: op param out of range"));
    }
}

static void *bytes_of(mp_obj_t obj, size_t *len, int flags) {
    mp_buffer_info_t info;
    mp_get_buffer_raise(obj, &info, flags);
    *len = info.len;
    return info.buf;
}

// A buffer of 4-byte elements (int32 or float32): its element count; misaligned data would
// fault on Cortex-M0, so it is refused.
static void *words_of(mp_obj_t obj, size_t *count, int flags) {
    size_t len;
    void *buf = bytes_of(obj, &len, flags);
    if (((uintptr_t)buf & 3) || (len & 3)) {
        mp_raise_ValueError(MP_ERROR_TEXT("minerva_nat: int32/float32 buffer not 4-aligned"));
    }
    *count = len / 4;
    return buf;
}

typedef int (*weighted_kernel)(const int8_t *, size_t, const int8_t *, size_t,
    const mnv_channels *, int8_t *, size_t, const int32_t *, size_t);

// conv_2d / depthwise_conv_2d / fully_connected(inp, filt, bias, mult, shift, out, args)
static mp_obj_t call_weighted(const mp_obj_t *a, weighted_kernel kernel) {
    size_t in_len, filt_len, out_len, n_mult, n_shift, n_bias, n_args;
    const int8_t *in = bytes_of(a[0], &in_len, MP_BUFFER_READ);
    const int8_t *filt = bytes_of(a[1], &filt_len, MP_BUFFER_READ);
    mnv_channels ch;
    ch.mult = words_of(a[3], &n_mult, MP_BUFFER_READ);
    ch.shift = words_of(a[4], &n_shift, MP_BUFFER_READ);
    ch.count = n_mult < n_shift ? n_mult : n_shift;
    ch.bias = NULL;
    if (a[2] != mp_const_none) {
        ch.bias = words_of(a[2], &n_bias, MP_BUFFER_READ);
        ch.count = n_bias < ch.count ? n_bias : ch.count;
    }
    int8_t *out = bytes_of(a[5], &out_len, MP_BUFFER_WRITE);
    const int32_t *args = words_of(a[6], &n_args, MP_BUFFER_READ);
    check(kernel(in, in_len, filt, filt_len, &ch, out, out_len, args, n_args));
    return mp_const_none;
}

static mp_obj_t conv_2d(size_t n, const mp_obj_t *a) {
    return call_weighted(a, mnv_conv_2d);
}

static mp_obj_t depthwise_conv_2d(size_t n, const mp_obj_t *a) {
    return call_weighted(a, mnv_depthwise_conv_2d);
}

static mp_obj_t fully_connected(size_t n, const mp_obj_t *a) {
    return call_weighted(a, mnv_fully_connected);
}

typedef int (*unary_kernel)(const int8_t *, size_t, int8_t *, size_t, const int32_t *, size_t);

// (inp, out, args) with int8 in and out.
static mp_obj_t call_unary(mp_obj_t in_obj, mp_obj_t out_obj, mp_obj_t args_obj,
    unary_kernel kernel) {
    size_t in_len, out_len, n_args;
    const int8_t *in = bytes_of(in_obj, &in_len, MP_BUFFER_READ);
    int8_t *out = bytes_of(out_obj, &out_len, MP_BUFFER_WRITE);
    const int32_t *args = words_of(args_obj, &n_args, MP_BUFFER_READ);
    check(kernel(in, in_len, out, out_len, args, n_args));
    return mp_const_none;
}

static mp_obj_t average_pool_2d(mp_obj_t in, mp_obj_t out, mp_obj_t args) {
    return call_unary(in, out, args, mnv_average_pool_2d);
}

static mp_obj_t max_pool_2d(mp_obj_t in, mp_obj_t out, mp_obj_t args) {
    return call_unary(in, out, args, mnv_max_pool_2d);
}

static mp_obj_t reshape(mp_obj_t in, mp_obj_t out, mp_obj_t args) {
    return call_unary(in, out, args, mnv_reshape);
}

static mp_obj_t softmax(mp_obj_t in, mp_obj_t out, mp_obj_t args) {
    return call_unary(in, out, args, mnv_softmax);
}

static mp_obj_t add(size_t n, const mp_obj_t *a) {
    size_t a_len, b_len, out_len, n_args;
    const int8_t *x = bytes_of(a[0], &a_len, MP_BUFFER_READ);
    const int8_t *y = bytes_of(a[1], &b_len, MP_BUFFER_READ);
    int8_t *out = bytes_of(a[2], &out_len, MP_BUFFER_WRITE);
    const int32_t *args = words_of(a[3], &n_args, MP_BUFFER_READ);
    check(mnv_add(x, a_len, y, b_len, out, out_len, args, n_args));
    return mp_const_none;
}

// gather(inp, table, out, args)
static mp_obj_t gather(size_t n, const mp_obj_t *a) {
    size_t in_len, table_len, out_len, n_args;
    const int8_t *in = bytes_of(a[0], &in_len, MP_BUFFER_READ);
    const int32_t *table = words_of(a[1], &table_len, MP_BUFFER_READ);
    int8_t *out = bytes_of(a[2], &out_len, MP_BUFFER_WRITE);
    const int32_t *args = words_of(a[3], &n_args, MP_BUFFER_READ);
    check(mnv_gather(in, in_len, table, table_len, out, out_len, args, n_args));
    return mp_const_none;
}

// concatenation(inputs, out, args): ``inputs`` is a tuple of int8 buffers (built at load).
// Every input is checked before anything is written; no allocation, whatever the count.
static mp_obj_t concatenation(mp_obj_t inputs_obj, mp_obj_t out_obj, mp_obj_t args_obj) {
    size_t count, out_len, n_args;
    mp_obj_t *inputs;
    mp_obj_get_array(inputs_obj, &count, &inputs);
    int8_t *out = bytes_of(out_obj, &out_len, MP_BUFFER_WRITE);
    const int32_t *args = words_of(args_obj, &n_args, MP_BUFFER_READ);
    if (count + 1 != n_args) {
        check(MNV_EARGS);
    }
    for (int pass = 0; pass < 2; pass++) {
        for (size_t k = 0; k < count; k++) {
            size_t in_len;
            const int8_t *in = bytes_of(inputs[k], &in_len, MP_BUFFER_READ);
            check(mnv_concatenation_part(in, in_len, pass ? out : NULL, out_len, args, n_args,
                k));
        }
    }
    return mp_const_none;
}

#if MNV_HAS_FLOAT
static mp_obj_t quantize(mp_obj_t in_obj, mp_obj_t out_obj, mp_obj_t args_obj) {
    size_t in_len, out_len, n_args;
    const int32_t *args = words_of(args_obj, &n_args, MP_BUFFER_READ);
    // Mode 0 reads float32, mode 1 int8; a short block is the kernel's to refuse.
    const void *in = n_args && args[0] == 0 ? words_of(in_obj, &in_len, MP_BUFFER_READ)
        : bytes_of(in_obj, &in_len, MP_BUFFER_READ);
    int8_t *out = bytes_of(out_obj, &out_len, MP_BUFFER_WRITE);
    check(mnv_quantize(in, in_len, out, out_len, args, n_args));
    return mp_const_none;
}

static mp_obj_t dequantize(mp_obj_t in_obj, mp_obj_t out_obj, mp_obj_t args_obj) {
    size_t in_len, out_len, n_args;
    const int8_t *in = bytes_of(in_obj, &in_len, MP_BUFFER_READ);
    float *out = words_of(out_obj, &out_len, MP_BUFFER_WRITE);
    const int32_t *args = words_of(args_obj, &n_args, MP_BUFFER_READ);
    check(mnv_dequantize(in, in_len, out, out_len, args, n_args));
    return mp_const_none;
}
#else
// Without a hardware float divide (armv6m, xtensawin) the two float edge ops, which touch
// only a model's inputs or outputs, run the pure-Python kernels.
static mp_obj_t python_kernel(qstr name, mp_obj_t in, mp_obj_t out, mp_obj_t args) {
    mp_obj_t from = MP_OBJ_NEW_QSTR(MP_QSTR_kernels_py);
    mp_obj_t package = mp_import_name(MP_QSTR_minerva, mp_obj_new_tuple(1, &from),
        MP_OBJ_NEW_SMALL_INT(0));
    mp_obj_t call_args[3] = {in, out, args};
    mp_obj_t fn = mp_load_attr(mp_import_from(package, MP_QSTR_kernels_py), name);
    return mp_call_function_n_kw(fn, 3, 0, call_args);
}

static mp_obj_t quantize(mp_obj_t in, mp_obj_t out, mp_obj_t args) {
    return python_kernel(MP_QSTR_quantize, in, out, args);
}

static mp_obj_t dequantize(mp_obj_t in, mp_obj_t out, mp_obj_t args) {
    return python_kernel(MP_QSTR_dequantize, in, out, args);
}
#endif

#if MNV_HAS_FLOAT
// -- float32 training kernels (kernels/train.c; spec: minerva/train_kernels.py), same
// arguments as the Python ones; None for an absent input gradient.
static float *floats_or_none(mp_obj_t obj, size_t *count, int flags) {
    if (obj == mp_const_none) {
        *count = 0;
        return NULL;
    }
    return words_of(obj, count, flags);
}

static mp_obj_t fc_forward(size_t n, const mp_obj_t *a) {
    size_t xl, wl, bl, yl;
    const float *x = words_of(a[0], &xl, MP_BUFFER_READ);
    const float *w = words_of(a[1], &wl, MP_BUFFER_READ);
    const float *b = words_of(a[2], &bl, MP_BUFFER_READ);
    float *y = words_of(a[3], &yl, MP_BUFFER_WRITE);
    if ((size_t)mp_obj_get_int(a[4]) != xl || (size_t)mp_obj_get_int(a[5]) != yl) {
        check(MNV_ESHAPE);
    }
    check(mnv_fc_forward(x, xl, w, wl, b, bl, y, yl, mp_obj_get_float(a[6]),
        mp_obj_get_float(a[7])));
    return mp_const_none;
}

static mp_obj_t fc_backward(size_t n, const mp_obj_t *a) {
    size_t xl, wl, dyl, dwl, dbl, dxl;
    const float *x = words_of(a[0], &xl, MP_BUFFER_READ);
    const float *w = words_of(a[1], &wl, MP_BUFFER_READ);
    const float *dy = words_of(a[2], &dyl, MP_BUFFER_READ);
    float *dw = words_of(a[3], &dwl, MP_BUFFER_WRITE);
    float *db = words_of(a[4], &dbl, MP_BUFFER_WRITE);
    float *dx = floats_or_none(a[5], &dxl, MP_BUFFER_WRITE);
    if ((size_t)mp_obj_get_int(a[6]) != xl || (size_t)mp_obj_get_int(a[7]) != dyl) {
        check(MNV_ESHAPE);
    }
    check(mnv_fc_backward(x, xl, w, wl, dy, dyl, dw, dwl, db, dbl, dx, dxl));
    return mp_const_none;
}

static mp_obj_t conv_forward(size_t n, const mp_obj_t *a) {
    size_t xl, wl, bl, yl, n_args;
    const float *x = words_of(a[0], &xl, MP_BUFFER_READ);
    const float *w = words_of(a[1], &wl, MP_BUFFER_READ);
    const float *b = words_of(a[2], &bl, MP_BUFFER_READ);
    float *y = words_of(a[3], &yl, MP_BUFFER_WRITE);
    const int32_t *args = words_of(a[4], &n_args, MP_BUFFER_READ);
    check(mnv_conv_forward(x, xl, w, wl, b, bl, y, yl, args, n_args, mp_obj_get_float(a[5]),
        mp_obj_get_float(a[6])));
    return mp_const_none;
}

static mp_obj_t conv_backward(size_t n, const mp_obj_t *a) {
    size_t xl, wl, dyl, dwl, dbl, dxl, n_args;
    const float *x = words_of(a[0], &xl, MP_BUFFER_READ);
    const float *w = words_of(a[1], &wl, MP_BUFFER_READ);
    const float *dy = words_of(a[2], &dyl, MP_BUFFER_READ);
    float *dw = words_of(a[3], &dwl, MP_BUFFER_WRITE);
    float *db = words_of(a[4], &dbl, MP_BUFFER_WRITE);
    float *dx = floats_or_none(a[5], &dxl, MP_BUFFER_WRITE);
    const int32_t *args = words_of(a[6], &n_args, MP_BUFFER_READ);
    check(mnv_conv_backward(x, xl, w, wl, dy, dyl, dw, dwl, db, dbl, dx, dxl, args, n_args));
    return mp_const_none;
}

static mp_obj_t clamp_mask(size_t n, const mp_obj_t *a) {
    size_t yl, dyl;
    const float *y = words_of(a[0], &yl, MP_BUFFER_READ);
    float *dy = words_of(a[1], &dyl, MP_BUFFER_WRITE);
    mp_int_t count = mp_obj_get_int(a[2]);
    check(count < 0 ? MNV_ESHAPE : mnv_clamp_mask(y, yl, dy, dyl, (size_t)count,
        mp_obj_get_float(a[3]), mp_obj_get_float(a[4])));
    return mp_const_none;
}

static mp_obj_t sgd_momentum(size_t n, const mp_obj_t *a) {
    size_t wl, gl, vl;
    float *w = words_of(a[0], &wl, MP_BUFFER_WRITE);
    float *g = words_of(a[1], &gl, MP_BUFFER_WRITE);
    float *v = words_of(a[2], &vl, MP_BUFFER_WRITE);
    mp_int_t count = mp_obj_get_int(a[3]);
    check(count < 0 ? MNV_ESHAPE : mnv_sgd_momentum(w, wl, g, gl, v, vl, (size_t)count,
        mp_obj_get_float(a[4]), mp_obj_get_float(a[5]), mp_obj_get_float(a[6])));
    return mp_const_none;
}
#endif

// -- math ops (opcodes 20-23) -----------------------------------------------------------------

// lookup(inp, table, out, args) / binary(a, b, out, args): two int8 inputs.
typedef int (*two_input_kernel)(const int8_t *, size_t, const int8_t *, size_t, int8_t *,
    size_t, const int32_t *, size_t);

static mp_obj_t call_two_inputs(const mp_obj_t *a, two_input_kernel kernel) {
    size_t a_len, b_len, out_len, n_args;
    const int8_t *x = bytes_of(a[0], &a_len, MP_BUFFER_READ);
    const int8_t *y = bytes_of(a[1], &b_len, MP_BUFFER_READ);
    int8_t *out = bytes_of(a[2], &out_len, MP_BUFFER_WRITE);
    const int32_t *args = words_of(a[3], &n_args, MP_BUFFER_READ);
    check(kernel(x, a_len, y, b_len, out, out_len, args, n_args));
    return mp_const_none;
}

static mp_obj_t lookup(size_t n, const mp_obj_t *a) {
    return call_two_inputs(a, mnv_lookup);
}

static mp_obj_t binary(size_t n, const mp_obj_t *a) {
    return call_two_inputs(a, mnv_binary);
}

static mp_obj_t mean(mp_obj_t in, mp_obj_t out, mp_obj_t args) {
    return call_unary(in, out, args, mnv_mean);
}

static mp_obj_t quantize_int16(mp_obj_t in_obj, mp_obj_t out_obj, mp_obj_t args_obj) {
    size_t in_len, out_len, n_args;
    const int16_t *in = bytes_of(in_obj, &in_len, MP_BUFFER_READ);
    if (((uintptr_t)in & 1) || (in_len & 1)) {
        mp_raise_ValueError(MP_ERROR_TEXT("minerva_nat: int16 buffer not 2-aligned"));
    }
    int8_t *out = bytes_of(out_obj, &out_len, MP_BUFFER_WRITE);
    const int32_t *args = words_of(args_obj, &n_args, MP_BUFFER_READ);
    check(mnv_quantize_int16(in, in_len / 2, out, out_len, args, n_args));
    return mp_const_none;
}

// ed25519_verify(public_key, message, signature) -> bool: RFC 8032 verification of a 64-byte
// signature by a 32-byte public key; any other size is a caller's error, not a bad signature.
static mp_obj_t ed25519_verify(mp_obj_t key_obj, mp_obj_t message_obj, mp_obj_t sig_obj) {
    size_t key_len, message_len, sig_len;
    const uint8_t *key = bytes_of(key_obj, &key_len, MP_BUFFER_READ);
    const uint8_t *message = bytes_of(message_obj, &message_len, MP_BUFFER_READ);
    const uint8_t *sig = bytes_of(sig_obj, &sig_len, MP_BUFFER_READ);
    if (key_len != 32 || sig_len != 64) {
        mp_raise_ValueError(MP_ERROR_TEXT(
            "minerva_nat: ed25519_verify takes a 32-byte public key and a 64-byte signature"));
    }
    return mp_obj_new_bool(mnv_ed25519_verify(key, message, message_len, sig)
        == MNV_ED25519_VALID);
}

// run_plan(table, regions): runs a whole model's plan (kernels/mnv_plan.h) in one call.
// ``table`` is array('i'); ``regions`` a tuple of buffers (region k is regions[k]). The first
// two (the arena and, for weights in place, the capsule's bytes) are looked up once per call;
// others (weights in their own buffers) when an operand names them.
typedef struct {
    mp_obj_t *items;
    size_t count;
    mnv_region first[2];
    int first_writable[2];
} plan_regions;

static int resolve_region(void *ctx, int32_t index, int write, mnv_region *out) {
    plan_regions *regions = ctx;
    if (index < 0 || (size_t)index >= regions->count) {
        return 1;
    }
    if (index < 2) {
        *out = regions->first[index];
        return write && !regions->first_writable[index];
    }
    mp_buffer_info_t info;
    if (!mp_get_buffer(regions->items[index], &info, write ? MP_BUFFER_WRITE : MP_BUFFER_READ)) {
        return 1;
    }
    out->data = info.buf;
    out->len = info.len;
    return 0;
}

static mp_obj_t run_plan(mp_obj_t table_obj, mp_obj_t regions_obj) {
    size_t n_words;
    const int32_t *table = words_of(table_obj, &n_words, MP_BUFFER_READ);
    plan_regions regions;
    mp_obj_get_array(regions_obj, &regions.count, &regions.items);
    for (size_t k = 0; k < 2 && k < regions.count; k++) {
        mp_buffer_info_t info;
        regions.first_writable[k] = mp_get_buffer(regions.items[k], &info, MP_BUFFER_WRITE);
        if (!regions.first_writable[k]) {
            mp_get_buffer_raise(regions.items[k], &info, MP_BUFFER_READ);
        }
        regions.first[k].data = info.buf;
        regions.first[k].len = info.len;
    }
    size_t failed;
    int rc = mnv_run_plan(table, n_words, resolve_region, &regions, &failed);
    if (rc != MNV_OK) {
        mp_raise_ValueError(MP_ERROR_TEXT("minerva_nat: run plan refused (bad record)"));
    }
    return mp_const_none;
}
