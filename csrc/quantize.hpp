// Ternary quantization of float rows (docs/FORMAT.md, "Quantization"):
//   t = +1 if x > thr, -1 if x < -thr, else 0,   thr >= 0 per row,
// with the value x compared against the double thr exactly (x > thr <=> x > the largest T <= thr).
// The per-row threshold comes from one of three modes (ThresholdSpec), shared by quantize_rows and
// the fused encoder epilogues so both give the same codes:
//   std:      thr = tau * std(row)   (population std, two passes in double)
//   fixed:    thr given              (also "batch", whose thr the caller computes)
//   sparsity: thr = the kz-th smallest |x| of the row (0 when kz == 0)
#pragma once
#include <cstdint>
#include <vector>

#include "dispatch.hpp"

namespace ternhd {

enum class ThresholdMode : int { kStd = 0, kFixed = 1, kSparsity = 2 };

struct ThresholdSpec {
  ThresholdMode mode = ThresholdMode::kStd;
  double tau = 0.3;
  double thr = 0.0;
  int64_t kz = 0;
};

// Validated spec; throws std::invalid_argument naming the bad argument (mode, tau, threshold, kz).
ThresholdSpec make_threshold_spec(ThresholdMode mode, double tau, double thr, int64_t kz, int64_t dim);

// ----- span kernels (T = float or double; every variant gives identical results)
// Mean and population standard deviation of n values. False on NaN/Inf.
template <typename T>
using MomentsFn = bool (*)(const T *x, int64_t n, double &mean, double &stddev);
template <typename T>
bool moments_scalar(const T *x, int64_t n, double &mean, double &stddev);
template <typename T>
bool moments_avx2(const T *x, int64_t n, double &mean, double &stddev);
template <typename T>
bool moments_avx512(const T *x, int64_t n, double &mean, double &stddev);
template <typename T>
bool moments_neon(const T *x, int64_t n, double &mean, double &stddev);
template <typename T>
constexpr Variants<MomentsFn<T>> kMoments{moments_scalar<T>, moments_avx2<T>, moments_avx512<T>,
                                          TERNHD_NEON_ONLY(moments_neon<T>)};
template <typename T>
bool row_moments(const T *x, int64_t n, double &mean, double &stddev, Simd simd) {
  return pick(kMoments<T>, simd)(x, n, mean, stddev);
}

// out[i] = +1 if x[i] > thr, -1 if x[i] < -thr, else 0. False on NaN/Inf.
template <typename T>
using QuantizeFn = bool (*)(const T *x, int64_t n, double thr, int8_t *out);
template <typename T>
bool quantize_scalar(const T *x, int64_t n, double thr, int8_t *out);
template <typename T>
bool quantize_avx2(const T *x, int64_t n, double thr, int8_t *out);
template <typename T>
bool quantize_avx512(const T *x, int64_t n, double thr, int8_t *out);
template <typename T>
bool quantize_neon(const T *x, int64_t n, double thr, int8_t *out);
template <typename T>
constexpr Variants<QuantizeFn<T>> kQuantize{quantize_scalar<T>, quantize_avx2<T>, quantize_avx512<T>,
                                            TERNHD_NEON_ONLY(quantize_neon<T>)};
template <typename T>
bool quantize_span(const T *x, int64_t n, double thr, int8_t *out, Simd simd) {
  return pick(kQuantize<T>, simd)(x, n, thr, out);
}

// Quantize then pack into ceil(n/4) bytes; scratch holds n int8. False on NaN/Inf.
template <typename T>
bool quantize_pack_span(const T *x, int64_t n, double thr, uint8_t *out, int8_t *scratch, Simd simd);

// Per-row scratch of row_threshold (grown on demand; one per thread).
struct ThresholdScratch {
  std::vector<uint32_t> u32;
  std::vector<uint64_t> u64;
};

// The kz-th smallest |x| (1 <= kz <= n), exactly; NaN sorts above +Inf.
float kth_abs(const float *x, int64_t n, int64_t kz, ThresholdScratch &s);
double kth_abs(const double *x, int64_t n, int64_t kz, ThresholdScratch &s);

// The threshold of one row under `spec`. False on NaN/Inf (in the std mode, or a non-finite
// sparsity threshold); the thresholding pass checks the remaining values.
template <typename T>
bool row_threshold(const T *x, int64_t n, const ThresholdSpec &spec, ThresholdScratch &s, double &thr, Simd simd);

// ----- row operations (threaded). x: rows * dim values, C order. Throw std::invalid_argument
// ("x: contains NaN or Inf", "threshold: ...") on bad input.
// out[r] = std(row r).
template <typename T>
void row_std(const T *x, int64_t rows, int64_t dim, double *out, Simd simd);
// One threshold per row; out: rows * dim int8 trits, or rows * ceil(dim/4) bytes when packed.
template <typename T>
void quantize_rows(const T *x, int64_t rows, int64_t dim, const double *thr, bool packed, void *out, Simd simd);
// Thresholds from `spec`, computed and applied in one pass over each row.
template <typename T>
void quantize_rows(const T *x, int64_t rows, int64_t dim, const ThresholdSpec &spec, bool packed, void *out, Simd simd);

}  // namespace ternhd
