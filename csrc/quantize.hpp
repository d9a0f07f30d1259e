// Ternary quantization kernels shared with the fused encoder.
#pragma once
#include <cstdint>

#include "common.hpp"

namespace ternhd {

// Mean and population standard deviation of n values (two passes, double). False on NaN/Inf.
template <typename T>
bool row_moments(const T *x, int64_t n, double &mean, double &stddev);

// out[i] = +1 if x[i] > thr, -1 if x[i] < -thr, else 0. False on NaN/Inf.
template <typename T>
bool quantize_span(const T *x, int64_t n, double thr, int8_t *out);

// Quantize then pack into ceil(n/4) bytes; scratch holds n int8. False on NaN/Inf.
template <typename T>
bool quantize_pack_span(const T *x, int64_t n, double thr, uint8_t *out, int8_t *scratch, Simd simd);

}  // namespace ternhd
