// HDC algebra on 2-bit packed rows, without unpacking to memory: bind (element-wise product),
// bundle (element-wise sum of many rows, re-quantized, or the int32 sums) and permute (cyclic shift
// by k trits).
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

// Vertical bit-sliced counts of n rows (row r at p + r * stride) over bytes [0, nbytes): for every
// bit position b of byte j, the number c of rows with that bit set is written in binary across
// `levels` planes, bit l of c at bit b of planes[l * nbytes + j] (so the "+1" bit of a trit counts
// its +1s and the "-1" bit above it its -1s). 1 <= n < 2^levels, levels <= kMaxCountLevels.
// Rows are summed with carry-save adders (16 rows per adder tree, then a ripple into the high
// planes). False on code 0b11.
constexpr int kMaxCountLevels = 31;
using CountFn = bool (*)(const uint8_t *p, int64_t n, int64_t stride, int64_t nbytes, int levels, uint8_t *planes);
bool count_scalar(const uint8_t *p, int64_t n, int64_t stride, int64_t nbytes, int levels, uint8_t *planes);
bool count_avx2(const uint8_t *p, int64_t n, int64_t stride, int64_t nbytes, int levels, uint8_t *planes);
bool count_avx512(const uint8_t *p, int64_t n, int64_t stride, int64_t nbytes, int levels, uint8_t *planes);
constexpr Variants<CountFn> kCount{count_scalar, TERNHD_X86_ONLY(count_avx2), TERNHD_X86_ONLY(count_avx512)};

// Bits needed for the count n (n >= 1): the `levels` argument of a CountFn.
int count_levels(int64_t n);

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
// p (groups, n, nb) -> sums (groups, 4 * nb) int32: the trit sums (padding trits sum to 0).
// Throws ("vectors: ...").
void bundle_sums_rows(const uint8_t *p, int64_t groups, int64_t n, int64_t nb, int32_t *sums, Simd simd);
// out row = numpy.roll of the dim trits of the row by k (0 <= k < dim); nb == ceil(dim/4).
// Padding trits of the output are 0. Throws ("a: ...", "dim: ...", "k: ...").
void permute_rows(const uint8_t *a, int64_t rows, int64_t nb, int64_t k, int64_t dim, uint8_t *out, Simd simd);

}  // namespace ternhd
