// Ternary quantization of float rows: per-row statistics, thresholds, thresholding, and the fused
// threshold + pack span; scalar reference, AVX2 and AVX-512 variants, threaded row drivers.
#include "quantize.hpp"

#if TERNHD_NEON
#include <arm_neon.h>
#endif
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <type_traits>

#include "pack.hpp"
#include "threads.hpp"

namespace ternhd {

// Bodies are written once as always-inline templates with independent lanes (so the compiler
// vectorizes them without reassociating a reduction) and stamped out per ISA below.
namespace {
constexpr int kLanes = 16;

template <typename T>
TERNHD_INLINE bool moments_body(const T *__restrict x, int64_t n, double &mean, double &stddev) {
  double s[kLanes] = {}, z[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) {
      const double v = static_cast<double>(x[i + l]);
      s[l] += v;
      z[l] += v - v;  // stays 0 for finite values, NaN as soon as one is NaN or Inf
    }
  double sum = 0.0, zero = 0.0;
  for (; i < n; ++i) {
    const double v = static_cast<double>(x[i]);
    sum += v;
    zero += v - v;
  }
  for (int l = 0; l < kLanes; ++l) {
    sum += s[l];
    zero += z[l];
  }
  mean = n ? sum / static_cast<double>(n) : 0.0;
  double q[kLanes] = {}, ss = 0.0;
  i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) {
      const double d = static_cast<double>(x[i + l]) - mean;
      q[l] += d * d;
    }
  for (; i < n; ++i) {
    const double d = static_cast<double>(x[i]) - mean;
    ss += d * d;
  }
  for (int l = 0; l < kLanes; ++l) ss += q[l];
  stddev = n ? std::sqrt(ss / static_cast<double>(n)) : 0.0;
  return zero == 0.0;
}

// The largest T not above thr: for T values v, (double)v > thr  <=>  v > hi, exactly.
template <typename T>
inline T round_down(double thr) {
  T hi = static_cast<T>(thr);
  if (static_cast<double>(hi) > thr) hi = std::nextafter(hi, -std::numeric_limits<T>::infinity());
  return hi;
}

template <typename T>
TERNHD_INLINE bool quantize_body(const T *__restrict x, int64_t n, double thr, int8_t *__restrict out) {
  const T hi = round_down<T>(thr), lo = -hi;
  T z[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) {
      const T v = x[i + l];
      z[l] += v - v;
      out[i + l] = static_cast<int8_t>((v > hi) - (v < lo));
    }
  T zero = 0;
  for (; i < n; ++i) {
    const T v = x[i];
    zero += v - v;
    out[i] = static_cast<int8_t>((v > hi) - (v < lo));
  }
  for (int l = 0; l < kLanes; ++l) zero += z[l];
  return zero == 0;
}

}  // namespace

// Each variant is the same body compiled for its ISA.
template <typename T>
bool moments_scalar(const T *x, int64_t n, double &m, double &s) {
  return moments_body(x, n, m, s);
}
template <typename T>
TERNHD_AVX2 bool moments_avx2(const T *x, int64_t n, double &m, double &s) {
  return moments_body(x, n, m, s);
}
template <typename T>
TERNHD_AVX512 bool moments_avx512(const T *x, int64_t n, double &m, double &s) {
  return moments_body(x, n, m, s);
}
template <typename T>
bool quantize_scalar(const T *x, int64_t n, double t, int8_t *o) {
  return quantize_body(x, n, t, o);
}
template <typename T>
TERNHD_AVX2 bool quantize_avx2(const T *x, int64_t n, double t, int8_t *o) {
  return quantize_body(x, n, t, o);
}
template <typename T>
TERNHD_AVX512 bool quantize_avx512(const T *x, int64_t n, double t, int8_t *o) {
  return quantize_body(x, n, t, o);
}

#if TERNHD_NEON
// NEON (aarch64): float rows compare four lanes at a time and narrow the {-1, 0, 1} lanes to
// int8; the finiteness test is |x| <= FLT_MAX per lane. Double rows and the moments use the
// shared bodies (NEON is baseline on aarch64, so the compiler vectorizes them with NEON).
namespace {
bool quantize_f32_neon(const float *x, int64_t n, double thr, int8_t *out) {
  const float hi = round_down<float>(thr);
  const float32x4_t vhi = vdupq_n_f32(hi), vlo = vdupq_n_f32(-hi);
  const float32x4_t fmax = vdupq_n_f32(std::numeric_limits<float>::max());
  uint32x4_t ok = vdupq_n_u32(0xFFFFFFFFu);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    int16x4_t h[4];
    for (int k = 0; k < 4; ++k) {
      const float32x4_t v = vld1q_f32(x + i + 4 * k);
      ok = vandq_u32(ok, vcleq_f32(vabsq_f32(v), fmax));
      // all-ones lanes are -1: (v > hi) - (v < lo) = lt_mask - gt_mask
      const int32x4_t t = vsubq_s32(vreinterpretq_s32_u32(vcltq_f32(v, vlo)), vreinterpretq_s32_u32(vcgtq_f32(v, vhi)));
      h[k] = vmovn_s32(t);
    }
    const int8x8_t lo8 = vmovn_s16(vcombine_s16(h[0], h[1])), hi8 = vmovn_s16(vcombine_s16(h[2], h[3]));
    vst1q_s8(out + i, vcombine_s8(lo8, hi8));
  }
  const bool finite = vminvq_u32(ok) != 0;
  return quantize_body(x + i, n - i, thr, out + i) && finite;
}
}  // namespace

template <typename T>
bool moments_neon(const T *x, int64_t n, double &m, double &s) {
  return moments_body(x, n, m, s);
}
template <typename T>
bool quantize_neon(const T *x, int64_t n, double t, int8_t *o) {
  if constexpr (std::is_same_v<T, float>)
    return quantize_f32_neon(x, n, t, o);
  else
    return quantize_body(x, n, t, o);
}
#endif  // TERNHD_NEON

template <typename T>
bool quantize_pack_span(const T *x, int64_t n, double thr, uint8_t *out, int8_t *scratch, Simd simd) {
  bool finite = quantize_span(x, n, thr, scratch, simd);
  pack_span(scratch, n, out, simd);
  return finite;
}

// ----------------------------------------------------------------------------- thresholds
ThresholdSpec make_threshold_spec(ThresholdMode mode, double tau, double thr, int64_t kz, int64_t dim) {
  if (mode != ThresholdMode::kStd && mode != ThresholdMode::kFixed && mode != ThresholdMode::kSparsity)
    throw std::invalid_argument("mode: must be std, fixed or sparsity");
  if (!(tau >= 0.0) || !std::isfinite(tau)) throw std::invalid_argument("tau: must be finite and non-negative");
  if (!(thr >= 0.0) || !std::isfinite(thr)) throw std::invalid_argument("threshold: must be finite and non-negative");
  if (kz < 0 || kz > dim) throw std::invalid_argument("kz: must be in [0, dim]");
  ThresholdSpec q;
  q.mode = mode;
  q.tau = tau;
  q.thr = thr;
  q.kz = kz;
  return q;
}

// The bits of |x| order like its values (NaN above +Inf), so the selection runs on integers.
// float: a 2048-bin histogram of the top 11 bits finds the bin that holds the answer in one
// pass; a selection over that bin's bit patterns finishes.
float kth_abs(const float *h, int64_t n, int64_t kz, ThresholdScratch &s) {
  s.u32.resize(static_cast<size_t>(n));
  uint32_t *scratch = s.u32.data();
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

double kth_abs(const double *x, int64_t n, int64_t kz, ThresholdScratch &s) {
  s.u64.resize(static_cast<size_t>(n));
  uint64_t *u = s.u64.data();
  for (int64_t i = 0; i < n; ++i) {
    std::memcpy(u + i, x + i, 8);
    u[i] &= 0x7fffffffffffffffULL;
  }
  std::nth_element(u, u + (kz - 1), u + n);
  double r;
  std::memcpy(&r, u + (kz - 1), 8);
  return r;
}

template <typename T>
bool row_threshold(const T *x, int64_t n, const ThresholdSpec &q, ThresholdScratch &s, double &thr, Simd simd) {
  thr = q.thr;
  if (q.mode == ThresholdMode::kStd) {
    double mean, sd;
    if (!row_moments<T>(x, n, mean, sd, simd)) return false;
    thr = q.tau * sd;
  } else if (q.mode == ThresholdMode::kSparsity) {
    thr = q.kz > 0 ? static_cast<double>(kth_abs(x, n, q.kz, s)) : 0.0;
    if (!std::isfinite(thr)) return false;
  }
  return true;
}

// ----------------------------------------------------------------------------- row drivers
namespace {
[[noreturn]] void nonfinite() { throw std::invalid_argument("x: contains NaN or Inf"); }

void check_sizes(int64_t rows, int64_t dim) {
  if (rows < 0 || dim < 0) throw std::invalid_argument("x: size does not match rows * dim");
}

// Row blocks of about 16K values per task.
int64_t rows_per_task(int64_t dim) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(dim, 1)); }

// Thresholds row r with thr_of(r, row, scratch, thr) -> finite?, then writes trits or packed bytes.
template <typename T, typename ThrOf>
void quantize_driver(const T *src, int64_t rows, int64_t dim, bool packed, void *dst, Simd simd, ThrOf thr_of) {
  const int64_t nb = ceil_div(dim, 4), per = rows_per_task(dim);
  std::atomic<bool> finite{true};
  parallel_for(ceil_div(rows, per), [&](int64_t c) {
    std::vector<int8_t> trits(packed ? static_cast<size_t>(dim) : 0);
    ThresholdScratch scratch;
    for (int64_t r = c * per; r < std::min(rows, (c + 1) * per); ++r) {
      const T *row = src + r * dim;
      double thr;
      bool ok = thr_of(r, row, scratch, thr);
      if (ok)
        ok = packed ? quantize_pack_span(row, dim, thr, static_cast<uint8_t *>(dst) + r * nb, trits.data(), simd)
                    : quantize_span(row, dim, thr, static_cast<int8_t *>(dst) + r * dim, simd);
      if (!ok) finite.store(false);
    }
  });
  if (!finite.load()) nonfinite();
}
}  // namespace

template <typename T>
void row_std(const T *src, int64_t rows, int64_t dim, double *dst, Simd simd) {
  check_sizes(rows, dim);
  std::atomic<bool> finite{true};
  parallel_for(
      rows,
      [&](int64_t r) {
        double mean, sd;
        if (!row_moments(src + r * dim, dim, mean, sd, simd)) finite.store(false);
        dst[r] = sd;
      },
      rows_per_task(dim));
  if (!finite.load()) nonfinite();
}

template <typename T>
void quantize_rows(const T *src, int64_t rows, int64_t dim, const double *thr, bool packed, void *dst, Simd simd) {
  check_sizes(rows, dim);
  for (int64_t r = 0; r < rows; ++r)
    if (!(thr[r] >= 0.0) || !std::isfinite(thr[r]))
      throw std::invalid_argument("threshold: must be finite and non-negative");
  quantize_driver(src, rows, dim, packed, dst, simd, [&](int64_t r, const T *, ThresholdScratch &, double &t) {
    t = thr[r];
    return true;
  });
}

template <typename T>
void quantize_rows(const T *src, int64_t rows, int64_t dim, const ThresholdSpec &spec, bool packed, void *dst,
                   Simd simd) {
  check_sizes(rows, dim);
  const ThresholdSpec q = make_threshold_spec(spec.mode, spec.tau, spec.thr, spec.kz, dim);
  quantize_driver(src, rows, dim, packed, dst, simd, [&](int64_t, const T *row, ThresholdScratch &s, double &t) {
    return row_threshold(row, dim, q, s, t, simd);
  });
}

#define TERNHD_INSTANTIATE(T)                                                                                    \
  template bool moments_scalar<T>(const T *, int64_t, double &, double &);                                       \
  template bool moments_avx2<T>(const T *, int64_t, double &, double &);                                         \
  template bool moments_avx512<T>(const T *, int64_t, double &, double &);                                       \
  template bool quantize_scalar<T>(const T *, int64_t, double, int8_t *);                                        \
  template bool quantize_avx2<T>(const T *, int64_t, double, int8_t *);                                          \
  template bool quantize_avx512<T>(const T *, int64_t, double, int8_t *);                                        \
  template bool quantize_pack_span<T>(const T *, int64_t, double, uint8_t *, int8_t *, Simd);                    \
  template bool row_threshold<T>(const T *, int64_t, const ThresholdSpec &, ThresholdScratch &, double &, Simd); \
  template void row_std<T>(const T *, int64_t, int64_t, double *, Simd);                                         \
  template void quantize_rows<T>(const T *, int64_t, int64_t, const double *, bool, void *, Simd);               \
  template void quantize_rows<T>(const T *, int64_t, int64_t, const ThresholdSpec &, bool, void *, Simd);
TERNHD_INSTANTIATE(float)
TERNHD_INSTANTIATE(double)
#undef TERNHD_INSTANTIATE
#if TERNHD_NEON
template bool moments_neon<float>(const float *, int64_t, double &, double &);
template bool moments_neon<double>(const double *, int64_t, double &, double &);
template bool quantize_neon<float>(const float *, int64_t, double, int8_t *);
template bool quantize_neon<double>(const double *, int64_t, double, int8_t *);
#endif

}  // namespace ternhd
