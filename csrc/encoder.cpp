// Fused encoder epilogues: per-row threshold + ternary quantization + 2-bit packing of float rows
// that are still in cache, and the structured projections (SRHT, sparse) computed row block by
// row block, so the N x dim float matrix never exists.
//
// Dense (gaussian) projections: the GEMM of a block of rows comes from BLAS (torch / numpy) in
// Python; `encode_epilogue` then thresholds and packs that block. SRHT and sparse projections are
// computed here (`srht_encode`, `sparse_encode`), each block in scratch memory, and go through the
// same epilogue.
//
// Threshold modes (mode argument): 0 = "std": thr = tau * std(row) (population std, float64);
// 1 = fixed thr (also "batch", whose thr is computed by the caller); 2 = sparsity: thr = the kz-th
// smallest |h| of the row (0 when kz == 0). Elements: +1 if h > thr, -1 if h < -thr, else 0, with
// the float h compared against the double thr exactly (h > thr <=> h > largest float <= thr).
#include <immintrin.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "common.hpp"
#include "quantize.hpp"

namespace py = pybind11;

namespace ternhd {
namespace {

#define TERNHD_INLINE inline __attribute__((always_inline))

enum Mode : int { kStd = 0, kFixed = 1, kSparsity = 2 };

struct QSpec {
  int mode = kStd;
  double tau = 0.3;
  double thr = 0.0;
  int64_t kz = 0;
};

// Largest float <= thr (thr >= 0): for float h, h > thr <=> h > f and h < -thr <=> h < -f.
float thr_down(double thr) {
  float f = static_cast<float>(thr);
  if (static_cast<double>(f) > thr) f = std::nextafter(f, -std::numeric_limits<float>::infinity());
  return f;
}


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

// spread8[m]: 8 mask bits (trit i = bit i) -> 16 bits, trit i at the "+1" bit of its code in the
// little-endian pair of output bytes: byte i/4, bit 6 - 2*(i%4).
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

TERNHD_INLINE bool emit_trits_body(const float *h, int64_t n, float t, int8_t *out) {
  int bad = 0;
  for (int64_t i = 0; i < n; ++i) {
    float v = h[i];
    bad |= !(std::fabs(v) <= std::numeric_limits<float>::max());
    out[i] = static_cast<int8_t>(static_cast<int>(v > t) - static_cast<int>(v < -t));
  }
  return bad == 0;
}
bool emit_trits_scalar(const float *h, int64_t n, float t, int8_t *out) { return emit_trits_body(h, n, t, out); }
TERNHD_AVX2 bool emit_trits_avx2(const float *h, int64_t n, float t, int8_t *out) {
  return emit_trits_body(h, n, t, out);
}
TERNHD_AVX512 bool emit_trits_avx512(const float *h, int64_t n, float t, int8_t *out) {
  return emit_trits_body(h, n, t, out);
}

// Output of one row: packed bytes or int8 trits.
struct Out {
  void *base = nullptr;
  bool packed = true;
  int64_t width = 0;  // bytes per row (packed) or trits per row
};

// The kz-th smallest |h| (1 <= kz <= n), exactly. The bits of |h| order like its values, so a
// 2048-bin histogram of their top 11 bits finds the bin that holds the answer in one pass; a
// selection over that bin's bit patterns (scratch: n words) finishes. NaN sorts above +Inf.
float kth_abs(const float *h, int64_t n, int64_t kz, uint32_t *scratch) {
  // Four interleaved histograms: consecutive increments rarely hit the same counter.
  uint32_t hist[4][2048] = {{0}};
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    uint32_t u[4];
    std::memcpy(u, h + i, 16);
    for (int c = 0; c < 4; ++c) ++hist[c][(u[c] & 0x7fffffffu) >> 20];
  }
  for (; i < n; ++i) {
    uint32_t u;
    std::memcpy(&u, h + i, 4);
    ++hist[0][(u & 0x7fffffffu) >> 20];
  }
  int64_t below = 0;
  uint32_t b = 0;
  for (; b < 2047; ++b) {
    const int64_t cnt = int64_t(hist[0][b]) + hist[1][b] + hist[2][b] + hist[3][b];
    if (below + cnt >= kz) break;
    below += cnt;
  }
  int64_t m = 0;
  for (i = 0; i < n; ++i) {
    uint32_t u;
    std::memcpy(&u, h + i, 4);
    u &= 0x7fffffffu;
    scratch[m] = u;
    m += (u >> 20) == b;  // branch-free compaction of the bin's elements
  }
  std::nth_element(scratch, scratch + (kz - below - 1), scratch + m);
  float r;
  std::memcpy(&r, scratch + (kz - below - 1), 4);
  return r;
}

// Threshold, quantize and write row r of the output from the float row h (n values).
// scratch: n words (used by the sparsity mode). Returns false on NaN/Inf.
bool finish_row(const float *h, int64_t n, const QSpec &q, const Out &o, int64_t r, uint32_t *scratch, Simd simd) {
  double thr = q.thr;
  if (q.mode == kStd) {
    double mean, sd;
    if (!row_moments<float>(h, n, mean, sd)) return false;  // quantize.hpp, per-ISA
    thr = q.tau * sd;
  } else if (q.mode == kSparsity) {
    if (q.kz > 0) {
      thr = kth_abs(h, n, q.kz, scratch);
      if (!std::isfinite(thr)) return false;
    } else {
      thr = 0.0;
    }
  }
  const float t = thr_down(thr);
  if (o.packed) {
    uint8_t *dst = static_cast<uint8_t *>(o.base) + r * o.width;
    switch (simd) {
      case Simd::avx512: return emit_packed_avx512(h, n, t, dst);
      case Simd::avx2: return emit_packed_avx2(h, n, t, dst);
      default: return emit_packed_scalar(h, n, t, dst);
    }
  }
  int8_t *dst = static_cast<int8_t *>(o.base) + r * o.width;
  switch (simd) {
    case Simd::avx512: return emit_trits_avx512(h, n, t, dst);
    case Simd::avx2: return emit_trits_avx2(h, n, t, dst);
    default: return emit_trits_scalar(h, n, t, dst);
  }
}

// ----------------------------------------------------------------------------- FWHT
// In-place unnormalized Walsh-Hadamard transform (Sylvester order) of n = 2^m floats. Every path
// performs the same butterflies (u + v, u - v) in the same stage order: results are bit-identical.
TERNHD_INLINE void fwht_stages_from(float *a, int64_t n, int64_t h0) {
  for (int64_t h = h0; h < n; h <<= 1)
    for (int64_t i = 0; i < n; i += 2 * h)
      for (int64_t j = i; j < i + h; ++j) {
        float u = a[j], v = a[j + h];
        a[j] = u + v;
        a[j + h] = u - v;
      }
}

void fwht_scalar(float *a, int64_t n) { fwht_stages_from(a, n, 1); }

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

void fwht(float *a, int64_t n, Simd simd) {
  switch (simd) {
    case Simd::avx512: return fwht_avx512(a, n);
    case Simd::avx2: return fwht_avx2(a, n);
    default: return fwht_scalar(a, n);
  }
}

// ----------------------------------------------------------------------------- sparse projection
// 16 rows at a time: xt is the (in_dim, 16) transpose of the block, h the (16, dim) output.
// Column j: h[:, j] = sum_t values[j, t] * xt[rows[j, t], :] (same order on every path).
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
void sparse_block_scalar(const float *xt, const int32_t *rows, const float *vals, int64_t dim, int64_t k, float *h) {
  sparse_block_body(xt, rows, vals, dim, k, h);
}
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

TERNHD_AVX512 void sparse_block_avx512(const float *xt, const int32_t *rows, const float *vals, int64_t dim,
                                       int64_t k, float *h) {
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

// ----------------------------------------------------------------------------- bindings
[[noreturn]] void nonfinite() { throw std::invalid_argument("x: contains NaN or Inf (or the projection overflowed)"); }

QSpec make_spec(int mode, double tau, double thr, int64_t kz, int64_t dim) {
  if (mode < kStd || mode > kSparsity) throw std::invalid_argument("mode: must be 0 (std), 1 (fixed) or 2 (sparsity)");
  if (!(tau >= 0.0) || !std::isfinite(tau)) throw std::invalid_argument("tau: must be finite and non-negative");
  if (!(thr >= 0.0) || !std::isfinite(thr)) throw std::invalid_argument("threshold: must be finite and non-negative");
  if (kz < 0 || kz > dim) throw std::invalid_argument("kz: must be in [0, dim]");
  QSpec q;
  q.mode = mode;
  q.tau = tau;
  q.thr = thr;
  q.kz = kz;
  return q;
}

const float *float_rows(const py::array &a, int64_t &rows, int64_t cols, const char *name) {
  if (!a.dtype().is(py::dtype::of<float>())) throw py::type_error(std::string(name) + ": dtype must be float32");
  if (a.ndim() != 2 || a.shape(1) != cols)
    throw std::invalid_argument(std::string(name) + ": expected shape (rows, " + std::to_string(cols) + ")");
  if (!(a.flags() & py::array::c_style)) throw std::invalid_argument(std::string(name) + ": must be C-contiguous");
  rows = a.shape(0);
  return static_cast<const float *>(a.data());
}

Out out_rows(py::array &out, int64_t rows, int64_t dim) {
  Out o;
  if (out.dtype().is(py::dtype::of<uint8_t>())) {
    o.packed = true;
    o.width = ceil_div(dim, 4);
  } else if (out.dtype().is(py::dtype::of<int8_t>())) {
    o.packed = false;
    o.width = dim;
  } else {
    throw py::type_error("out: dtype must be uint8 (packed) or int8 (trits)");
  }
  if (out.ndim() != 2 || out.shape(0) != rows || out.shape(1) != o.width)
    throw std::invalid_argument("out: expected shape (" + std::to_string(rows) + ", " + std::to_string(o.width) + ")");
  if (!(out.flags() & py::array::c_style)) throw std::invalid_argument("out: must be C-contiguous");
  if (!out.writeable()) throw std::invalid_argument("out: must be writeable");
  o.base = out.mutable_data();
  return o;
}

void encode_epilogue(const py::array &h, int64_t dim, py::array out, int mode, double tau, double thr, int64_t kz) {
  int64_t rows;
  const float *src = float_rows(h, rows, dim, "h");
  const Out o = out_rows(out, rows, dim);
  const QSpec q = make_spec(mode, tau, thr, kz, dim);
  const Simd simd = active_simd();
  std::atomic<bool> finite{true};
  {
    py::gil_scoped_release release;
    const int64_t per = std::max<int64_t>(1, 8192 / std::max<int64_t>(dim, 1));
    parallel_for(ceil_div(rows, per), [&](int64_t c) {
      std::vector<uint32_t> scratch(q.mode == kSparsity ? static_cast<size_t>(dim) : 0);
      for (int64_t r = c * per; r < std::min(rows, (c + 1) * per); ++r)
        if (!finish_row(src + r * dim, dim, q, o, r, scratch.data(), simd)) finite.store(false);
    });
  }
  if (!finite.load()) nonfinite();
}

// x (rows, in_dim); scaled_signs (blocks, in_dim); select (dim,) in [0, blocks * size).
void srht_encode(const py::array &x, py::array_t<float, py::array::c_style> scaled_signs,
                 py::array_t<int32_t, py::array::c_style> select, int64_t size, py::array out, int mode, double tau,
                 double thr, int64_t kz) {
  if (scaled_signs.ndim() != 2 || select.ndim() != 1)
    throw std::invalid_argument("scaled_signs, select: expected (blocks, in_dim) and (dim,) arrays");
  const int64_t blocks = scaled_signs.shape(0), in_dim = scaled_signs.shape(1), dim = select.shape(0);
  if (blocks < 1 || in_dim < 1 || dim < 1) throw std::invalid_argument("scaled_signs, select: must be non-empty");
  if (size < in_dim || (size & (size - 1)) != 0 || size > (int64_t(1) << 26) || blocks > (int64_t(1) << 26) / size)
    throw std::invalid_argument("size: must be a power of two >= in_dim (and blocks * size <= 2^26)");
  const int64_t total = blocks * size;
  const int32_t *sel = select.data();
  for (int64_t j = 0; j < dim; ++j)
    if (sel[j] < 0 || sel[j] >= total) throw std::invalid_argument("select: indices must lie in [0, blocks * size)");
  int64_t rows;
  const float *src = float_rows(x, rows, in_dim, "x");
  const Out o = out_rows(out, rows, dim);
  const QSpec q = make_spec(mode, tau, thr, kz, dim);
  const float *ss = scaled_signs.data();
  const Simd simd = active_simd();
  std::atomic<bool> finite{true};
  {
    py::gil_scoped_release release;
    const int64_t per = 16;
    parallel_for(ceil_div(rows, per), [&](int64_t c) {
      std::vector<float> buf(static_cast<size_t>(total), 0.0f), hrow(static_cast<size_t>(dim));
      std::vector<uint32_t> scratch(q.mode == kSparsity ? static_cast<size_t>(dim) : 0);
      for (int64_t r = c * per; r < std::min(rows, (c + 1) * per); ++r) {
        const float *xr = src + r * in_dim;
        for (int64_t b = 0; b < blocks; ++b) {
          float *blk = buf.data() + b * size;
          const float *sb = ss + b * in_dim;
          for (int64_t i = 0; i < in_dim; ++i) blk[i] = xr[i] * sb[i];
          std::fill(blk + in_dim, blk + size, 0.0f);
          fwht(blk, size, simd);
        }
        for (int64_t j = 0; j < dim; ++j) hrow[j] = buf[sel[j]];
        if (!finish_row(hrow.data(), dim, q, o, r, scratch.data(), simd)) finite.store(false);
      }
    });
  }
  if (!finite.load()) nonfinite();
}

void sparse_encode(const py::array &x, py::array_t<int32_t, py::array::c_style> rows_idx,
                   py::array_t<float, py::array::c_style> values, int64_t in_dim, py::array out, int mode, double tau,
                   double thr, int64_t kz) {
  if (rows_idx.ndim() != 2 || values.ndim() != 2 || rows_idx.shape(0) != values.shape(0) ||
      rows_idx.shape(1) != values.shape(1))
    throw std::invalid_argument("rows, values: expected two (dim, k) arrays of the same shape");
  const int64_t dim = rows_idx.shape(0), k = rows_idx.shape(1);
  if (dim < 1 || k < 1 || in_dim < 1) throw std::invalid_argument("rows: must be a non-empty (dim, k) array");
  const int32_t *ri = rows_idx.data();
  for (int64_t t = 0; t < dim * k; ++t)
    if (ri[t] < 0 || ri[t] >= in_dim) throw std::invalid_argument("rows: indices must lie in [0, in_dim)");
  int64_t rows;
  const float *src = float_rows(x, rows, in_dim, "x");
  const Out o = out_rows(out, rows, dim);
  const QSpec q = make_spec(mode, tau, thr, kz, dim);
  const float *vals = values.data();
  const Simd simd = active_simd();
  std::atomic<bool> finite{true};
  {
    py::gil_scoped_release release;
    parallel_for(ceil_div(rows, 16), [&](int64_t c) {
      std::vector<float> xt(static_cast<size_t>(in_dim * 16), 0.0f), h(static_cast<size_t>(16 * dim));
      std::vector<uint32_t> scratch(q.mode == kSparsity ? static_cast<size_t>(dim) : 0);
      const int64_t r0 = c * 16, nr = std::min<int64_t>(16, rows - r0);
      for (int64_t l = 0; l < nr; ++l)
        for (int64_t i = 0; i < in_dim; ++i) xt[i * 16 + l] = src[(r0 + l) * in_dim + i];
      switch (simd) {
        case Simd::avx512: sparse_block_avx512(xt.data(), ri, vals, dim, k, h.data()); break;
        case Simd::avx2: sparse_block_avx2(xt.data(), ri, vals, dim, k, h.data()); break;
        default: sparse_block_scalar(xt.data(), ri, vals, dim, k, h.data());
      }
      for (int64_t l = 0; l < nr; ++l)
        if (!finish_row(h.data() + l * dim, dim, q, o, r0 + l, scratch.data(), simd)) finite.store(false);
    });
  }
  if (!finite.load()) nonfinite();
}

py::array_t<float> fwht_rows(py::array_t<float, py::array::c_style> a) {
  if (a.ndim() != 2) throw std::invalid_argument("a: expected a 2-D float32 array");
  const int64_t rows = a.shape(0), n = a.shape(1);
  if (n < 1 || (n & (n - 1)) != 0) throw std::invalid_argument("a: row length must be a power of two");
  py::array_t<float> out({rows, n});
  std::memcpy(out.mutable_data(), a.data(), static_cast<size_t>(rows * n) * sizeof(float));
  float *d = out.mutable_data();
  const Simd simd = active_simd();
  {
    py::gil_scoped_release release;
    parallel_for(rows, [&](int64_t r) { fwht(d + r * n, n, simd); }, std::max<int64_t>(1, 4096 / n));
  }
  return out;
}

}  // namespace

static void register_encoder(py::module_ &m) {
  m.def("encode_epilogue", &encode_epilogue, py::arg("h"), py::arg("dim"), py::arg("out"), py::arg("mode"),
        py::arg("tau"), py::arg("thr"), py::arg("kz"),
        "Threshold + quantize + (pack) float32 rows h (rows, dim) into out: uint8 (rows, ceil(dim/4)) or int8 "
        "(rows, dim). mode 0 = tau*std(row), 1 = fixed thr, 2 = kz-th smallest |h| of the row.");
  m.def("srht_encode", &srht_encode, py::arg("x"), py::arg("scaled_signs"), py::arg("select"), py::arg("size"),
        py::arg("out"), py::arg("mode"), py::arg("tau"), py::arg("thr"), py::arg("kz"),
        "Stacked SRHT projection (per block b: FWHT of the zero-padded x * scaled_signs[b]; blocks concatenated "
        "and read at select) fused with encode_epilogue.");
  m.def("sparse_encode", &sparse_encode, py::arg("x"), py::arg("rows"), py::arg("values"), py::arg("in_dim"),
        py::arg("out"), py::arg("mode"), py::arg("tau"), py::arg("thr"), py::arg("kz"),
        "Column-compressed sparse projection (rows, values: (dim, k)) fused with encode_epilogue.");
  m.def("fwht_rows", &fwht_rows, py::arg("a"),
        "Unnormalized Walsh-Hadamard transform (Sylvester order) of each float32 row (length a power of two).");
}

static Registration reg_encoder{"encoder", &register_encoder};

}  // namespace ternhd
