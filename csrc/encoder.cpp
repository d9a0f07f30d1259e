// Fused encoder epilogues and structured projections (contract in encoder.hpp): emit kernels,
// FWHT and the sparse block product (scalar, AVX2, AVX-512), and the threaded row drivers.
#include "dispatch.hpp"  // TERNHD_X86

#if TERNHD_X86
#include <immintrin.h>
#endif
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <vector>

#include "encoder.hpp"
#include "threads.hpp"

namespace ternhd {
namespace {

// Largest float <= thr (thr >= 0): for float h, h > thr <=> h > f and h < -thr <=> h < -f.
float thr_down(double thr) {
  float f = static_cast<float>(thr);
  if (static_cast<double>(f) > thr) f = std::nextafter(f, -std::numeric_limits<float>::infinity());
  return f;
}
}  // namespace

// ----------------------------------------------------------------------------- threshold + pack
// Scalar: one byte per 4 trits, first trit in the high bits; padding trits 0.
bool emit_packed_scalar(const float *h, int64_t n, float t, uint8_t *out) {
  bool finite = true;
  for (int64_t b = 0; b < ceil_div(n, 4); ++b) {
    unsigned byte = 0;
    for (int64_t q = 0; q < 4 && 4 * b + q < n; ++q) {
      float v = h[4 * b + q];
      finite &= std::isfinite(v);
      unsigned code = static_cast<unsigned>(v > t) | (static_cast<unsigned>(v < -t) << 1);
      byte |= code << (6 - 2 * q);
    }
    out[b] = static_cast<uint8_t>(byte);
  }
  return finite;
}

#if TERNHD_X86
// spread8[m]: 8 mask bits (trit i = bit i) -> 16 bits, trit i at the "+1" bit of its code in the
// little-endian pair of output bytes: byte i/4, bit 6 - 2*(i%4).
namespace {
struct Spread8 {
  uint16_t v[256];
  Spread8() {
    for (int m = 0; m < 256; ++m) {
      unsigned r = 0;
      for (int i = 0; i < 8; ++i)
        if (m >> i & 1) r |= 1u << (8 * (i / 4) + 6 - 2 * (i % 4));
      v[m] = static_cast<uint16_t>(r);
    }
  }
};
const Spread8 kSpread8;
}  // namespace

TERNHD_AVX2 bool emit_packed_avx2(const float *h, int64_t n, float t, uint8_t *out) {
  const __m256 hi = _mm256_set1_ps(t), lo = _mm256_set1_ps(-t);
  const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256 inf = _mm256_set1_ps(std::numeric_limits<float>::infinity());
  __m256 bad = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_loadu_ps(h + i);
    bad = _mm256_or_ps(bad, _mm256_cmp_ps(_mm256_and_ps(v, absmask), inf, _CMP_NLT_UQ));
    unsigned p = static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(v, hi, _CMP_GT_OQ)));
    unsigned m = static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(v, lo, _CMP_LT_OQ)));
    uint16_t w = static_cast<uint16_t>(kSpread8.v[p] | (kSpread8.v[m] << 1));
    std::memcpy(out + i / 4, &w, 2);
  }
  bool ok = _mm256_testz_ps(bad, bad);
  return emit_packed_scalar(h + i, n - i, t, out + i / 4) && ok;
}

TERNHD_AVX512 bool emit_packed_avx512(const float *h, int64_t n, float t, uint8_t *out) {
  const __m512 hi = _mm512_set1_ps(t), lo = _mm512_set1_ps(-t);
  const __m512 inf = _mm512_set1_ps(std::numeric_limits<float>::infinity());
  const __m512i k41 = _mm512_set1_epi16(0x0104), k161 = _mm512_set1_epi32(0x00010010);
  __mmask16 bad = 0;
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    uint64_t p = 0, m = 0;
    for (int q = 0; q < 4; ++q) {
      __m512 v = _mm512_loadu_ps(h + i + 16 * q);
      bad |= _mm512_cmp_ps_mask(_mm512_abs_ps(v), inf, _CMP_NLT_UQ);
      p |= static_cast<uint64_t>(_mm512_cmp_ps_mask(v, hi, _CMP_GT_OQ)) << (16 * q);
      m |= static_cast<uint64_t>(_mm512_cmp_ps_mask(v, lo, _CMP_LT_OQ)) << (16 * q);
    }
    __m512i c = _mm512_or_si512(_mm512_maskz_set1_epi8(p, 1), _mm512_maskz_set1_epi8(m, 2));
    __m512i d = _mm512_madd_epi16(_mm512_maddubs_epi16(c, k41), k161);
    _mm_storeu_si128(reinterpret_cast<__m128i *>(out + i / 4), _mm512_cvtepi32_epi8(d));
  }
  return emit_packed_scalar(h + i, n - i, t, out + i / 4) && bad == 0;
}
#endif  // TERNHD_X86

namespace {
TERNHD_INLINE bool emit_trits_body(const float *h, int64_t n, float t, int8_t *out) {
  int bad = 0;
  for (int64_t i = 0; i < n; ++i) {
    float v = h[i];
    bad |= !(std::fabs(v) <= std::numeric_limits<float>::max());
    out[i] = static_cast<int8_t>(static_cast<int>(v > t) - static_cast<int>(v < -t));
  }
  return bad == 0;
}
}  // namespace
bool emit_trits_scalar(const float *h, int64_t n, float t, int8_t *out) { return emit_trits_body(h, n, t, out); }
TERNHD_AVX2 bool emit_trits_avx2(const float *h, int64_t n, float t, int8_t *out) {
  return emit_trits_body(h, n, t, out);
}
TERNHD_AVX512 bool emit_trits_avx512(const float *h, int64_t n, float t, int8_t *out) {
  return emit_trits_body(h, n, t, out);
}

namespace {
// Threshold, quantize and write row r of the output from the float row h (n values).
// Returns false on NaN/Inf.
bool finish_row(const float *h, int64_t n, const ThresholdSpec &q, const EncodeOut &o, int64_t r,
                ThresholdScratch &scratch, Simd simd) {
  double thr;
  if (!row_threshold<float>(h, n, q, scratch, thr, simd)) return false;
  const float t = thr_down(thr);
  if (o.packed) return pick(kEmitPacked, simd)(h, n, t, static_cast<uint8_t *>(o.base) + r * o.width);
  return pick(kEmitTrits, simd)(h, n, t, static_cast<int8_t *>(o.base) + r * o.width);
}
}  // namespace

// ----------------------------------------------------------------------------- FWHT
// In-place unnormalized Walsh-Hadamard transform (Sylvester order) of n = 2^m floats. Every path
// performs the same butterflies (u + v, u - v) in the same stage order: results are bit-identical.
namespace {
TERNHD_INLINE void fwht_stages_from(float *a, int64_t n, int64_t h0) {
  for (int64_t h = h0; h < n; h <<= 1)
    for (int64_t i = 0; i < n; i += 2 * h)
      for (int64_t j = i; j < i + h; ++j) {
        float u = a[j], v = a[j + h];
        a[j] = u + v;
        a[j + h] = u - v;
      }
}

}  // namespace

void fwht_scalar(float *a, int64_t n) { fwht_stages_from(a, n, 1); }

#if TERNHD_X86
TERNHD_AVX2 void fwht_avx2(float *a, int64_t n) {
  if (n < 16) return fwht_stages_from(a, n, 1);
  for (int64_t i = 0; i < n; i += 8) {  // stages h = 1, 2, 4 inside one register
    __m256 v = _mm256_loadu_ps(a + i), s;
    s = _mm256_permute_ps(v, 0xB1);
    v = _mm256_blend_ps(_mm256_add_ps(v, s), _mm256_sub_ps(s, v), 0xAA);
    s = _mm256_permute_ps(v, 0x4E);
    v = _mm256_blend_ps(_mm256_add_ps(v, s), _mm256_sub_ps(s, v), 0xCC);
    s = _mm256_permute2f128_ps(v, v, 0x01);
    v = _mm256_blend_ps(_mm256_add_ps(v, s), _mm256_sub_ps(s, v), 0xF0);
    _mm256_storeu_ps(a + i, v);
  }
  for (int64_t h = 8; h < n; h <<= 1)
    for (int64_t i = 0; i < n; i += 2 * h)
      for (int64_t j = i; j < i + h; j += 8) {
        __m256 u = _mm256_loadu_ps(a + j), v = _mm256_loadu_ps(a + j + h);
        _mm256_storeu_ps(a + j, _mm256_add_ps(u, v));
        _mm256_storeu_ps(a + j + h, _mm256_sub_ps(u, v));
      }
}

TERNHD_AVX512 void fwht_avx512(float *a, int64_t n) {
  if (n < 32) return fwht_stages_from(a, n, 1);
  for (int64_t i = 0; i < n; i += 16) {  // stages h = 1, 2, 4, 8 inside one register
    __m512 v = _mm512_loadu_ps(a + i), s;
    s = _mm512_permute_ps(v, 0xB1);
    v = _mm512_mask_sub_ps(_mm512_add_ps(v, s), 0xAAAA, s, v);
    s = _mm512_permute_ps(v, 0x4E);
    v = _mm512_mask_sub_ps(_mm512_add_ps(v, s), 0xCCCC, s, v);
    s = _mm512_shuffle_f32x4(v, v, 0xB1);
    v = _mm512_mask_sub_ps(_mm512_add_ps(v, s), 0xF0F0, s, v);
    s = _mm512_shuffle_f32x4(v, v, 0x4E);
    v = _mm512_mask_sub_ps(_mm512_add_ps(v, s), 0xFF00, s, v);
    _mm512_storeu_ps(a + i, v);
  }
  int64_t h = 16;
  // Two stages per pass (radix 4) while possible: fewer trips through the buffer.
  for (; 4 * h <= n; h <<= 2)
    for (int64_t i = 0; i < n; i += 4 * h)
      for (int64_t j = i; j < i + h; j += 16) {
        __m512 x0 = _mm512_loadu_ps(a + j), x1 = _mm512_loadu_ps(a + j + h);
        __m512 x2 = _mm512_loadu_ps(a + j + 2 * h), x3 = _mm512_loadu_ps(a + j + 3 * h);
        __m512 y0 = _mm512_add_ps(x0, x1), y1 = _mm512_sub_ps(x0, x1);
        __m512 y2 = _mm512_add_ps(x2, x3), y3 = _mm512_sub_ps(x2, x3);
        _mm512_storeu_ps(a + j, _mm512_add_ps(y0, y2));
        _mm512_storeu_ps(a + j + 2 * h, _mm512_sub_ps(y0, y2));
        _mm512_storeu_ps(a + j + h, _mm512_add_ps(y1, y3));
        _mm512_storeu_ps(a + j + 3 * h, _mm512_sub_ps(y1, y3));
      }
  for (; h < n; h <<= 1)
    for (int64_t i = 0; i < n; i += 2 * h)
      for (int64_t j = i; j < i + h; j += 16) {
        __m512 u = _mm512_loadu_ps(a + j), v = _mm512_loadu_ps(a + j + h);
        _mm512_storeu_ps(a + j, _mm512_add_ps(u, v));
        _mm512_storeu_ps(a + j + h, _mm512_sub_ps(u, v));
      }
}
#endif  // TERNHD_X86

// ----------------------------------------------------------------------------- sparse projection
namespace {
TERNHD_INLINE void sparse_block_body(const float *xt, const int32_t *rows, const float *vals, int64_t dim, int64_t k,
                                     float *h) {
  for (int64_t j = 0; j < dim; ++j) {
    float acc[16] = {0};
    const int32_t *rj = rows + j * k;
    const float *vj = vals + j * k;
    for (int64_t t = 0; t < k; ++t) {
      const float *src = xt + static_cast<int64_t>(rj[t]) * 16;
      const float v = vj[t];
      for (int l = 0; l < 16; ++l) acc[l] += v * src[l];
    }
    for (int l = 0; l < 16; ++l) h[l * dim + j] = acc[l];
  }
}
}  // namespace
void sparse_block_scalar(const float *xt, const int32_t *rows, const float *vals, int64_t dim, int64_t k, float *h) {
  sparse_block_body(xt, rows, vals, dim, k, h);
}
#if TERNHD_X86
// The SIMD variants hold the 16 lanes of a column in registers and run four columns at once (four
// independent dependency chains); each column still adds its k products in order, with a separate
// multiply and add, so every path gives bit-identical sums.
TERNHD_AVX2 void sparse_block_avx2(const float *xt, const int32_t *rows, const float *vals, int64_t dim, int64_t k,
                                   float *h) {
  alignas(32) float tmp[4][16];
  int64_t j = 0;
  for (; j + 4 <= dim; j += 4) {
    __m256 acc[4][2];
    for (auto &a : acc) a[0] = a[1] = _mm256_setzero_ps();
    for (int64_t t = 0; t < k; ++t)
      for (int c = 0; c < 4; ++c) {
        const float *src = xt + static_cast<int64_t>(rows[(j + c) * k + t]) * 16;
        const __m256 v = _mm256_set1_ps(vals[(j + c) * k + t]);
        acc[c][0] = _mm256_add_ps(acc[c][0], _mm256_mul_ps(v, _mm256_loadu_ps(src)));
        acc[c][1] = _mm256_add_ps(acc[c][1], _mm256_mul_ps(v, _mm256_loadu_ps(src + 8)));
      }
    for (int c = 0; c < 4; ++c) {
      _mm256_store_ps(tmp[c], acc[c][0]);
      _mm256_store_ps(tmp[c] + 8, acc[c][1]);
    }
    for (int l = 0; l < 16; ++l)
      for (int c = 0; c < 4; ++c) h[l * dim + j + c] = tmp[c][l];
  }
  for (int64_t jj = j; jj < dim; ++jj) {
    float acc[16] = {0};
    for (int64_t t = 0; t < k; ++t) {
      const float *src = xt + static_cast<int64_t>(rows[jj * k + t]) * 16;
      const float v = vals[jj * k + t];
      for (int l = 0; l < 16; ++l) acc[l] += v * src[l];
    }
    for (int l = 0; l < 16; ++l) h[l * dim + jj] = acc[l];
  }
}

TERNHD_AVX512 void sparse_block_avx512(const float *xt, const int32_t *rows, const float *vals, int64_t dim, int64_t k,
                                       float *h) {
  alignas(64) float tmp[4][16];
  int64_t j = 0;
  for (; j + 4 <= dim; j += 4) {
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    for (int64_t t = 0; t < k; ++t)
      for (int c = 0; c < 4; ++c) {
        const float *src = xt + static_cast<int64_t>(rows[(j + c) * k + t]) * 16;
        acc[c] = _mm512_add_ps(acc[c], _mm512_mul_ps(_mm512_set1_ps(vals[(j + c) * k + t]), _mm512_loadu_ps(src)));
      }
    for (int c = 0; c < 4; ++c) _mm512_store_ps(tmp[c], acc[c]);
    for (int l = 0; l < 16; ++l)
      for (int c = 0; c < 4; ++c) h[l * dim + j + c] = tmp[c][l];
  }
  for (; j < dim; ++j) {
    __m512 acc = _mm512_setzero_ps();
    for (int64_t t = 0; t < k; ++t)
      acc = _mm512_add_ps(acc, _mm512_mul_ps(_mm512_set1_ps(vals[j * k + t]),
                                             _mm512_loadu_ps(xt + static_cast<int64_t>(rows[j * k + t]) * 16)));
    _mm512_store_ps(tmp[0], acc);
    for (int l = 0; l < 16; ++l) h[l * dim + j] = tmp[0][l];
  }
}
#endif  // TERNHD_X86

// ----------------------------------------------------------------------------- row drivers
namespace {
[[noreturn]] void nonfinite() { throw std::invalid_argument("x: contains NaN or Inf (or the projection overflowed)"); }

void check_out(const EncodeOut &o, int64_t rows, int64_t dim) {
  if (!o.base && rows > 0 && o.width > 0) throw std::invalid_argument("out: no buffer");
  if (o.width != (o.packed ? ceil_div(dim, 4) : dim)) throw std::invalid_argument("out: width does not match dim");
}
}  // namespace

void encode_epilogue(const float *src, int64_t rows, int64_t dim, const ThresholdSpec &spec, EncodeOut o, Simd simd) {
  if (rows < 0 || dim < 0) throw std::invalid_argument("h: sizes must be non-negative");
  const ThresholdSpec q = make_threshold_spec(spec.mode, spec.tau, spec.thr, spec.kz, dim);
  check_out(o, rows, dim);
  std::atomic<bool> finite{true};
  const int64_t per = std::max<int64_t>(1, 8192 / std::max<int64_t>(dim, 1));
  parallel_for(ceil_div(rows, per), [&](int64_t c) {
    ThresholdScratch scratch;
    for (int64_t r = c * per; r < std::min(rows, (c + 1) * per); ++r)
      if (!finish_row(src + r * dim, dim, q, o, r, scratch, simd)) finite.store(false);
  });
  if (!finite.load()) nonfinite();
}

void srht_encode(const float *src, int64_t rows, const SrhtSpec &s, const ThresholdSpec &spec, EncodeOut o, Simd simd) {
  const int64_t blocks = s.blocks, in_dim = s.in_dim, dim = s.dim, size = s.size;
  if (blocks < 1 || in_dim < 1 || dim < 1) throw std::invalid_argument("scaled_signs, select: must be non-empty");
  if (size < in_dim || (size & (size - 1)) != 0 || size > (int64_t(1) << 26) || blocks > (int64_t(1) << 26) / size)
    throw std::invalid_argument("size: must be a power of two >= in_dim (and blocks * size <= 2^26)");
  const int64_t total = blocks * size;
  const int32_t *sel = s.select;
  for (int64_t j = 0; j < dim; ++j)
    if (sel[j] < 0 || sel[j] >= total) throw std::invalid_argument("select: indices must lie in [0, blocks * size)");
  if (rows < 0) throw std::invalid_argument("x: sizes must be non-negative");
  const ThresholdSpec q = make_threshold_spec(spec.mode, spec.tau, spec.thr, spec.kz, dim);
  check_out(o, rows, dim);
  const FwhtFn fwht = pick(kFwht, simd);
  std::atomic<bool> finite{true};
  const int64_t per = 16;
  parallel_for(ceil_div(rows, per), [&](int64_t c) {
    std::vector<float> buf(static_cast<size_t>(total), 0.0f), hrow(static_cast<size_t>(dim));
    ThresholdScratch scratch;
    for (int64_t r = c * per; r < std::min(rows, (c + 1) * per); ++r) {
      const float *xr = src + r * in_dim;
      for (int64_t b = 0; b < blocks; ++b) {
        float *blk = buf.data() + b * size;
        const float *sb = s.scaled_signs + b * in_dim;
        for (int64_t i = 0; i < in_dim; ++i) blk[i] = xr[i] * sb[i];
        std::fill(blk + in_dim, blk + size, 0.0f);
        fwht(blk, size);
      }
      for (int64_t j = 0; j < dim; ++j) hrow[j] = buf[sel[j]];
      if (!finish_row(hrow.data(), dim, q, o, r, scratch, simd)) finite.store(false);
    }
  });
  if (!finite.load()) nonfinite();
}

void sparse_encode(const float *src, int64_t rows, const SparseSpec &s, const ThresholdSpec &spec, EncodeOut o,
                   Simd simd) {
  const int64_t dim = s.dim, k = s.k, in_dim = s.in_dim;
  if (dim < 1 || k < 1 || in_dim < 1) throw std::invalid_argument("rows: must be a non-empty (dim, k) array");
  const int32_t *ri = s.rows;
  for (int64_t t = 0; t < dim * k; ++t)
    if (ri[t] < 0 || ri[t] >= in_dim) throw std::invalid_argument("rows: indices must lie in [0, in_dim)");
  if (rows < 0) throw std::invalid_argument("x: sizes must be non-negative");
  const ThresholdSpec q = make_threshold_spec(spec.mode, spec.tau, spec.thr, spec.kz, dim);
  check_out(o, rows, dim);
  const SparseBlockFn block = pick(kSparseBlock, simd);
  std::atomic<bool> finite{true};
  parallel_for(ceil_div(rows, 16), [&](int64_t c) {
    std::vector<float> xt(static_cast<size_t>(in_dim * 16), 0.0f), h(static_cast<size_t>(16 * dim));
    ThresholdScratch scratch;
    const int64_t r0 = c * 16, nr = std::min<int64_t>(16, rows - r0);
    for (int64_t l = 0; l < nr; ++l)
      for (int64_t i = 0; i < in_dim; ++i) xt[i * 16 + l] = src[(r0 + l) * in_dim + i];
    block(xt.data(), ri, s.values, dim, k, h.data());
    for (int64_t l = 0; l < nr; ++l)
      if (!finish_row(h.data() + l * dim, dim, q, o, r0 + l, scratch, simd)) finite.store(false);
  });
  if (!finite.load()) nonfinite();
}

void fwht_rows(float *d, int64_t rows, int64_t n, Simd simd) {
  if (rows < 0 || n < 1 || (n & (n - 1)) != 0) throw std::invalid_argument("a: row length must be a power of two");
  const FwhtFn fwht = pick(kFwht, simd);
  parallel_for(rows, [&](int64_t r) { fwht(d + r * n, n); }, std::max<int64_t>(1, 4096 / n));
}

}  // namespace ternhd
