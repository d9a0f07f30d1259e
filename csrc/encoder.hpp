// Fused encoder epilogues: per-row threshold + ternary quantization + 2-bit packing of float32
// rows that are still in cache, and the structured projections (SRHT, sparse) computed row block by
// row block, so the N x dim float matrix never exists.
//
// Dense (gaussian) projections: the GEMM of a block of rows comes from BLAS in Python;
// encode_epilogue then thresholds and packs that block. SRHT and sparse projections are computed
// here, each block in scratch memory, and go through the same epilogue. Thresholds follow the
// modes of quantize.hpp (ThresholdSpec); elements are +1 if h > thr, -1 if h < -thr, else 0.
// NaN/Inf (in the input or an overflowing projection) throw std::invalid_argument ("x: ...").
#pragma once
#include <cstdint>

#include "dispatch.hpp"
#include "quantize.hpp"

namespace ternhd {

// ----- span kernels (every variant gives identical results)
// Threshold n floats at t and write ceil(n/4) packed bytes / n int8 trits. False on NaN/Inf.
using EmitPackedFn = bool (*)(const float *h, int64_t n, float t, uint8_t *out);
bool emit_packed_scalar(const float *h, int64_t n, float t, uint8_t *out);
bool emit_packed_avx2(const float *h, int64_t n, float t, uint8_t *out);
bool emit_packed_avx512(const float *h, int64_t n, float t, uint8_t *out);
constexpr Variants<EmitPackedFn> kEmitPacked{emit_packed_scalar, TERNHD_X86_ONLY(emit_packed_avx2),
                                             TERNHD_X86_ONLY(emit_packed_avx512)};

using EmitTritsFn = bool (*)(const float *h, int64_t n, float t, int8_t *out);
bool emit_trits_scalar(const float *h, int64_t n, float t, int8_t *out);
bool emit_trits_avx2(const float *h, int64_t n, float t, int8_t *out);
bool emit_trits_avx512(const float *h, int64_t n, float t, int8_t *out);
constexpr Variants<EmitTritsFn> kEmitTrits{emit_trits_scalar, emit_trits_avx2, emit_trits_avx512};

// In-place unnormalized Walsh-Hadamard transform (Sylvester order) of n = 2^m floats. Every path
// performs the same butterflies in the same stage order: results are bit-identical.
using FwhtFn = void (*)(float *a, int64_t n);
void fwht_scalar(float *a, int64_t n);
void fwht_avx2(float *a, int64_t n);
void fwht_avx512(float *a, int64_t n);
constexpr Variants<FwhtFn> kFwht{fwht_scalar, TERNHD_X86_ONLY(fwht_avx2), TERNHD_X86_ONLY(fwht_avx512)};

// 16 rows of a sparse projection: xt is the (in_dim, 16) transpose of the block, h the (16, dim)
// output; column j: h[:, j] = sum_t vals[j, t] * xt[rows[j, t], :], in t order on every path.
using SparseBlockFn = void (*)(const float *xt, const int32_t *rows, const float *vals, int64_t dim, int64_t k,
                               float *h);
void sparse_block_scalar(const float *xt, const int32_t *rows, const float *vals, int64_t dim, int64_t k, float *h);
void sparse_block_avx2(const float *xt, const int32_t *rows, const float *vals, int64_t dim, int64_t k, float *h);
void sparse_block_avx512(const float *xt, const int32_t *rows, const float *vals, int64_t dim, int64_t k, float *h);
constexpr Variants<SparseBlockFn> kSparseBlock{sparse_block_scalar, TERNHD_X86_ONLY(sparse_block_avx2),
                                               TERNHD_X86_ONLY(sparse_block_avx512)};

// ----- row operations (threaded)
// Where encoded rows go: packed bytes (width ceil(dim/4)) or int8 trits (width dim), C order.
struct EncodeOut {
  void *base = nullptr;
  bool packed = true;
  int64_t width = 0;
};

// Stacked SRHT: per block b, the FWHT of the zero-padded x * scaled_signs[b] (length size, a power
// of two >= in_dim); blocks are concatenated and read at select (dim indices in [0, blocks*size)).
struct SrhtSpec {
  const float *scaled_signs = nullptr;  // (blocks, in_dim)
  const int32_t *select = nullptr;      // (dim,)
  int64_t blocks = 0, in_dim = 0, dim = 0, size = 0;
};

// Column-compressed sparse projection: output column j = sum_t values[j, t] * x[:, rows[j, t]].
struct SparseSpec {
  const int32_t *rows = nullptr;  // (dim, k), indices in [0, in_dim)
  const float *values = nullptr;  // (dim, k)
  int64_t dim = 0, k = 0, in_dim = 0;
};

// h: (rows, dim) float32 -> out. Throws on a bad spec ("kz: ..." etc.) or NaN/Inf.
void encode_epilogue(const float *h, int64_t rows, int64_t dim, const ThresholdSpec &spec, EncodeOut out, Simd simd);
// x: (rows, spec.in_dim) float32 -> out (rows, spec.dim). Throws ("size: ...", "select: ...", ...).
void srht_encode(const float *x, int64_t rows, const SrhtSpec &srht, const ThresholdSpec &spec, EncodeOut out,
                 Simd simd);
// x: (rows, spec.in_dim) float32 -> out (rows, spec.dim). Throws ("rows: ...", ...).
void sparse_encode(const float *x, int64_t rows, const SparseSpec &sparse, const ThresholdSpec &spec, EncodeOut out,
                   Simd simd);
// FWHT of each of `rows` rows of n floats, in place. Throws unless n is a power of two.
void fwht_rows(float *a, int64_t rows, int64_t n, Simd simd);

}  // namespace ternhd
