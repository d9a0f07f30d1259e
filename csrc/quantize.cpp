// Ternary quantization of float rows: per-row statistics, thresholding, and the fused
// threshold + pack epilogue (the float row never goes back to memory as int8).
//   t = +1 if x > thr, -1 if x < -thr, else 0      (thr per row, computed by the caller's mode)
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <limits>

#include "common.hpp"
#include "pack.hpp"
#include "quantize.hpp"

namespace py = pybind11;

namespace ternhd {

// Bodies are written once as always-inline templates with independent lanes (so the compiler
// vectorizes them without reassociating a reduction) and stamped out per ISA below.
namespace {
constexpr int kLanes = 16;

template <typename T>
inline __attribute__((always_inline)) bool moments_body(const T *__restrict x, int64_t n, double &mean,
                                                        double &stddev) {
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
inline __attribute__((always_inline)) bool quantize_body(const T *__restrict x, int64_t n, double thr,
                                                         int8_t *__restrict out) {
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

template <typename T> bool moments_scalar(const T *x, int64_t n, double &m, double &s) { return moments_body(x, n, m, s); }
template <typename T> TERNHD_AVX2 bool moments_avx2(const T *x, int64_t n, double &m, double &s) { return moments_body(x, n, m, s); }
template <typename T> TERNHD_AVX512 bool moments_avx512(const T *x, int64_t n, double &m, double &s) { return moments_body(x, n, m, s); }
template <typename T> bool quantize_scalar(const T *x, int64_t n, double t, int8_t *o) { return quantize_body(x, n, t, o); }
template <typename T> TERNHD_AVX2 bool quantize_avx2(const T *x, int64_t n, double t, int8_t *o) { return quantize_body(x, n, t, o); }
template <typename T> TERNHD_AVX512 bool quantize_avx512(const T *x, int64_t n, double t, int8_t *o) { return quantize_body(x, n, t, o); }
}  // namespace

template <typename T>
bool row_moments(const T *x, int64_t n, double &mean, double &stddev) {
  switch (active_simd()) {
    case Simd::avx512: return moments_avx512(x, n, mean, stddev);
    case Simd::avx2: return moments_avx2(x, n, mean, stddev);
    default: return moments_scalar(x, n, mean, stddev);
  }
}

template <typename T>
bool quantize_span(const T *x, int64_t n, double thr, int8_t *out) {
  switch (active_simd()) {
    case Simd::avx512: return quantize_avx512(x, n, thr, out);
    case Simd::avx2: return quantize_avx2(x, n, thr, out);
    default: return quantize_scalar(x, n, thr, out);
  }
}

template bool quantize_span<float>(const float *, int64_t, double, int8_t *);
template bool quantize_span<double>(const double *, int64_t, double, int8_t *);
template bool row_moments<float>(const float *, int64_t, double &, double &);
template bool row_moments<double>(const double *, int64_t, double &, double &);

template <typename T>
bool quantize_pack_span(const T *x, int64_t n, double thr, uint8_t *out, int8_t *scratch, Simd simd) {
  bool finite = quantize_span(x, n, thr, scratch);
  pack_span(scratch, n, out, simd);
  return finite;
}
template bool quantize_pack_span<float>(const float *, int64_t, double, uint8_t *, int8_t *, Simd);
template bool quantize_pack_span<double>(const double *, int64_t, double, uint8_t *, int8_t *, Simd);

namespace {
[[noreturn]] void nonfinite() { throw std::invalid_argument("x: contains NaN or Inf"); }

void check_rows(const py::array &x, int64_t rows, int64_t dim) {
  if (rows < 0 || dim < 0 || rows * dim != static_cast<int64_t>(x.size()))
    throw std::invalid_argument("x: size does not match rows * dim");
  if (!(x.flags() & py::array::c_style)) throw std::invalid_argument("x: must be C-contiguous");
}

template <typename T>
py::array_t<double> row_std_t(const py::array &x, int64_t rows, int64_t dim) {
  py::array_t<double> out(rows);
  const T *src = static_cast<const T *>(x.data());
  double *dst = out.mutable_data();
  std::atomic<bool> finite{true};
  {
    py::gil_scoped_release release;
    parallel_for(rows, [&](int64_t r) {
      double mean, sd;
      if (!row_moments(src + r * dim, dim, mean, sd)) finite.store(false);
      dst[r] = sd;
    }, std::max<int64_t>(1, 16384 / std::max<int64_t>(dim, 1)));
  }
  if (!finite.load()) nonfinite();
  return out;
}

template <typename T>
py::array quantize_t(const py::array &x, int64_t rows, int64_t dim, const double *thr, bool packed) {
  const int64_t nb = ceil_div(dim, 4);
  py::array out = packed ? py::array(py::array_t<uint8_t>({rows, nb})) : py::array(py::array_t<int8_t>({rows, dim}));
  const T *src = static_cast<const T *>(x.data());
  void *dst = out.mutable_data();
  const Simd simd = active_simd();
  std::atomic<bool> finite{true};
  {
    py::gil_scoped_release release;
    const int64_t per = std::max<int64_t>(1, 16384 / std::max<int64_t>(dim, 1));
    parallel_for(ceil_div(rows, per), [&](int64_t c) {
      std::vector<int8_t> scratch(packed ? static_cast<size_t>(dim) : 0);
      for (int64_t r = c * per; r < std::min(rows, (c + 1) * per); ++r) {
        bool ok = packed ? quantize_pack_span(src + r * dim, dim, thr[r], static_cast<uint8_t *>(dst) + r * nb,
                                              scratch.data(), simd)
                         : quantize_span(src + r * dim, dim, thr[r], static_cast<int8_t *>(dst) + r * dim);
        if (!ok) finite.store(false);
      }
    });
  }
  if (!finite.load()) nonfinite();
  return out;
}
}  // namespace

static void register_quantize(py::module_ &m) {
  m.def(
      "row_std",
      [](const py::array &x, int64_t rows, int64_t dim) {
        check_rows(x, rows, dim);
        if (x.dtype().is(py::dtype::of<float>())) return row_std_t<float>(x, rows, dim);
        if (x.dtype().is(py::dtype::of<double>())) return row_std_t<double>(x, rows, dim);
        throw py::type_error("x: dtype must be float32 or float64");
      },
      py::arg("x"), py::arg("rows"), py::arg("dim"),
      "Population standard deviation (ddof=0) of each row, in float64; NaN/Inf raise ValueError.");
  m.def(
      "quantize_rows",
      [](const py::array &x, int64_t rows, int64_t dim, py::array_t<double, py::array::c_style> thr, bool packed) {
        check_rows(x, rows, dim);
        if (thr.size() != rows) throw std::invalid_argument("thr: expected one threshold per row");
        const double *t = thr.data();
        for (int64_t r = 0; r < rows; ++r)
          if (!(t[r] >= 0.0) || !std::isfinite(t[r]))
            throw std::invalid_argument("threshold: must be finite and non-negative");
        if (x.dtype().is(py::dtype::of<float>())) return quantize_t<float>(x, rows, dim, t, packed);
        if (x.dtype().is(py::dtype::of<double>())) return quantize_t<double>(x, rows, dim, t, packed);
        throw py::type_error("x: dtype must be float32 or float64");
      },
      py::arg("x"), py::arg("rows"), py::arg("dim"), py::arg("thr"), py::arg("packed") = false,
      "Ternary quantization with one threshold per row; packed=True fuses the 2-bit packing.");
}

static Registration reg_quantize{"quantize", &register_quantize};

}  // namespace ternhd
