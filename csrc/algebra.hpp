// HDC algebra on 2-bit packed rows, without unpacking to memory: bind (element-wise product),
// bundle (element-wise sum of many rows, re-quantized) and permute (cyclic shift by k trits).
// A code 0b11 in the input is an error (std::invalid_argument naming the argument).
#pragma once
#include <cstdint>

#include "dispatch.hpp"

namespace ternhd {

// ----- span kernels (every variant gives identical bytes)
// out[i] = a[i] * b[i] trit-wise over n bytes; false on code 0b11.
using BindFn = bool (*)(const uint8_t *a, const uint8_t *b, int64_t n, uint8_t *out);
bool bind_scalar(const uint8_t *a, const uint8_t *b, int64_t n, uint8_t *out);
bool bind_avx2(const uint8_t *a, const uint8_t *b, int64_t n, uint8_t *out);
bool bind_avx512(const uint8_t *a, const uint8_t *b, int64_t n, uint8_t *out);
constexpr Variants<BindFn> kBind{bind_scalar, TERNHD_X86_ONLY(bind_avx2), TERNHD_X86_ONLY(bind_avx512)};

// Trit sums of n rows (row r at p + r * stride) over bytes [0, nbytes): sums[4 * j + q] for trit q
// of byte j. False on code 0b11.
using SumsFn = bool (*)(const uint8_t *p, int64_t n, int64_t stride, int64_t nbytes, int32_t *sums);
bool sums_scalar(const uint8_t *p, int64_t n, int64_t stride, int64_t nbytes, int32_t *sums);
bool sums_avx2(const uint8_t *p, int64_t n, int64_t stride, int64_t nbytes, int32_t *sums);
bool sums_avx512(const uint8_t *p, int64_t n, int64_t stride, int64_t nbytes, int32_t *sums);
constexpr Variants<SumsFn> kSums{sums_scalar, TERNHD_X86_ONLY(sums_avx2), TERNHD_X86_ONLY(sums_avx512)};

// dst[j] = the 8 bits of the MSB-first bit stream of src starting at bit pos + 8 j, j < count;
// every source byte needed lies in [0, nsrc).
using FunnelFn = void (*)(const uint8_t *src, int64_t nsrc, int64_t pos, uint8_t *dst, int64_t count);
void funnel_scalar(const uint8_t *src, int64_t nsrc, int64_t pos, uint8_t *dst, int64_t count);
void funnel_avx2(const uint8_t *src, int64_t nsrc, int64_t pos, uint8_t *dst, int64_t count);
void funnel_avx512(const uint8_t *src, int64_t nsrc, int64_t pos, uint8_t *dst, int64_t count);
constexpr Variants<FunnelFn> kFunnel{funnel_scalar, TERNHD_X86_ONLY(funnel_avx2), TERNHD_X86_ONLY(funnel_avx512)};

// ----- row operations (threaded; rows of nb bytes, C order)
// out (max(ra, rb) rows) = a * b; a side with one row broadcasts. Throws ("b: ...", "a, b: ...").
void bind_rows(const uint8_t *a, int64_t ra, const uint8_t *b, int64_t rb, int64_t nb, uint8_t *out, Simd simd);
// p (groups, n, nb) -> out (groups, nb): +1 if the trit sum > thr, -1 if < -thr, else 0.
// Throws ("vectors: ...", "threshold: ...").
void bundle_rows(const uint8_t *p, int64_t groups, int64_t n, int64_t nb, double thr, uint8_t *out, Simd simd);
// out row = numpy.roll of the dim trits of the row by k (0 <= k < dim); nb == ceil(dim/4).
// Padding trits of the output are 0. Throws ("a: ...", "dim: ...", "k: ...").
void permute_rows(const uint8_t *a, int64_t rows, int64_t nb, int64_t k, int64_t dim, uint8_t *out, Simd simd);

}  // namespace ternhd
