// Cross-ISA tests of the ternhd kernels, without Python: every SIMD variant of every kernel family
// (pack, quantize, similarity, algebra, encoder, base3) must give exactly the scalar reference's
// output on random inputs of awkward sizes (0 and 1 rows, widths that are not a multiple of the
// vector width), and the scalar reference must match a naive trit-by-trit model. Variants this CPU
// cannot run are skipped with a printed line. Run by CTest (tests/cpp, TERNHD_BUILD_TESTS=ON).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "algebra.hpp"
#include "base3.hpp"
#include "dispatch.hpp"
#include "encoder.hpp"
#include "pack.hpp"
#include "quantize.hpp"
#include "similarity.hpp"
#include "threads.hpp"

using namespace ternhd;

namespace {

int g_checks = 0, g_failures = 0;
std::string g_context;  // printed with a failure: family, path, sizes

#define CHECK(cond)                                                                        \
  do {                                                                                     \
    ++g_checks;                                                                            \
    if (!(cond)) {                                                                         \
      ++g_failures;                                                                        \
      std::printf("FAIL %s:%d: %s  [%s]\n", __FILE__, __LINE__, #cond, g_context.c_str()); \
    }                                                                                      \
  } while (0)

// Expects `fn` to throw E.
template <typename E>
bool throws(const std::function<void()> &fn) {
  try {
    fn();
  } catch (const E &) {
    return true;
  } catch (...) {
    return false;
  }
  return false;
}

std::mt19937_64 g_rng(20240611);

// Sizes that straddle every vector width in the kernels (4 trits/byte, 16/32/64-byte registers).
const std::vector<int64_t> kDims = {0, 1, 2, 3, 4, 5, 7, 15, 17, 31, 33, 63, 64, 65, 127, 129, 255, 257, 1000, 1027};
const std::vector<int64_t> kRows = {0, 1, 2, 3, 7};

std::vector<int8_t> random_trits(int64_t n, double zero_fraction = 0.3) {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<int8_t> t(static_cast<size_t>(n));
  for (auto &v : t) {
    const double r = u(g_rng);
    v = r < zero_fraction ? 0 : (r < (1 + zero_fraction) / 2 ? 1 : -1);
  }
  return t;
}

// Reference packing, trit by trit (docs/FORMAT.md).
std::vector<uint8_t> ref_pack(const std::vector<int8_t> &t, int64_t rows, int64_t dim) {
  const int64_t nb = ceil_div(dim, 4);
  std::vector<uint8_t> p(static_cast<size_t>(rows * nb), 0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < dim; ++i) {
      const int8_t v = t[r * dim + i];
      const unsigned code = v == 1 ? 1u : (v == -1 ? 2u : 0u);
      p[r * nb + i / 4] |= static_cast<uint8_t>(code << (6 - 2 * (i % 4)));
    }
  return p;
}

std::vector<uint8_t> random_packed(int64_t rows, int64_t dim) { return ref_pack(random_trits(rows * dim), rows, dim); }

std::vector<float> random_floats(int64_t n, float scale = 1.0f) {
  std::normal_distribution<float> g(0.0f, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto &x : v) x = g(g_rng);
  return v;
}

// Calls fn(simd) for each non-scalar path this CPU runs; prints one line per skipped path.
void for_each_simd(const char *family, const std::function<void(Simd)> &fn) {
  for (Simd s : {Simd::avx2, Simd::avx512, Simd::neon}) {
    if (!simd_supported(s)) {
      std::printf("  skip %s/%s: this CPU lacks it\n", family, simd_name(s));
      continue;
    }
    fn(s);
  }
}

void context(const char *family, Simd s, int64_t rows, int64_t dim, const std::string &extra = "") {
  g_context = std::string(family) + " " + simd_name(s) + " rows=" + std::to_string(rows) +
              " dim=" + std::to_string(dim) + (extra.empty() ? "" : " " + extra);
}

// ----------------------------------------------------------------------------- pack
void test_pack() {
  std::printf("pack\n");
  // Scalar reference against the trit-by-trit model, including invalid values and codes.
  for (int64_t dim : kDims)
    for (int64_t rows : kRows) {
      context("pack", Simd::scalar, rows, dim);
      auto t = random_trits(rows * dim);
      std::vector<uint8_t> p(static_cast<size_t>(rows * ceil_div(dim, 4)) + 1, 0xEE);
      pack_rows(t.data(), rows, dim, p.data(), Simd::scalar);
      p.pop_back();
      CHECK(p == ref_pack(t, rows, dim));
      std::vector<int8_t> back(t.size() + 1, 9);
      unpack_rows(p.data(), rows, dim, back.data(), Simd::scalar);
      back.pop_back();
      CHECK(back == t);
    }
  for_each_simd("pack", [](Simd s) {
    for (int64_t n : kDims) {
      context("pack span", s, 1, n);
      auto t = random_trits(n);
      std::vector<uint8_t> want(static_cast<size_t>(ceil_div(n, 4))), got(want.size());
      CHECK(pack_span(t.data(), n, want.data(), Simd::scalar));
      CHECK(pack_span(t.data(), n, got.data(), s));
      CHECK(got == want);
      std::vector<int8_t> tw(static_cast<size_t>(n)), tg(static_cast<size_t>(n));
      CHECK(unpack_span(want.data(), n, tw.data(), Simd::scalar));
      CHECK(unpack_span(want.data(), n, tg.data(), s));
      CHECK(tg == tw);
      if (n > 0) {
        // An invalid value / code at every kind of position is reported by every path.
        for (int64_t at : {int64_t{0}, n / 2, n - 1}) {
          auto bad = t;
          bad[at] = 2;
          CHECK(!pack_span(bad.data(), n, got.data(), s));
          auto badp = want;
          badp[at / 4] |= static_cast<uint8_t>(3u << (6 - 2 * (at % 4)));
          CHECK(!unpack_span(badp.data(), n, tg.data(), Simd::scalar));
          CHECK(!unpack_span(badp.data(), n, tg.data(), s));
        }
      }
    }
    for (int64_t dim : kDims)
      for (int64_t rows : kRows) {
        context("pack rows", s, rows, dim);
        auto t = random_trits(rows * dim);
        std::vector<uint8_t> want(static_cast<size_t>(rows * ceil_div(dim, 4))), got(want.size());
        pack_rows(t.data(), rows, dim, want.data(), Simd::scalar);
        pack_rows(t.data(), rows, dim, got.data(), s);
        CHECK(got == want);
        std::vector<int8_t> back(t.size());
        unpack_rows(got.data(), rows, dim, back.data(), s);
        CHECK(back == t);
        if (rows * dim > 0) {
          t[t.size() / 2] = -2;
          CHECK(throws<std::invalid_argument>([&] { pack_rows(t.data(), rows, dim, got.data(), s); }));
        }
      }
  });
  CHECK(throws<std::invalid_argument>([] { pack_rows(nullptr, -1, 4, nullptr, Simd::scalar); }));
}

// ----------------------------------------------------------------------------- quantize
template <typename T>
std::vector<T> with_specials(int64_t rows, int64_t dim) {
  std::vector<T> x(static_cast<size_t>(rows * dim));
  auto f = random_floats(rows * dim, 2.0f);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<T>(f[i]);
  // Ties and exact zeros: thresholds land on data values.
  for (size_t i = 0; i < x.size(); i += 5) x[i] = static_cast<T>(std::round(f[i] * 3) / 3);
  return x;
}

template <typename T>
void test_quantize_type(const char *tname) {
  const ThresholdSpec specs[] = {
      {ThresholdMode::kStd, 0.3, 0.0, 0},       {ThresholdMode::kStd, 0.0, 0.0, 0},
      {ThresholdMode::kFixed, 0.0, 0.5, 0},     {ThresholdMode::kFixed, 0.0, 1e-300, 0},
      {ThresholdMode::kSparsity, 0.0, 0.0, -1},  // kz = dim / 3 (filled in below)
      {ThresholdMode::kSparsity, 0.0, 0.0, -2},  // kz = dim
  };
  // Scalar reference against a direct model of the modes.
  for (int64_t dim : kDims) {
    for (int64_t rows : kRows) {
      auto x = with_specials<T>(rows, dim);
      for (ThresholdSpec q : specs) {
        if (q.kz == -1) q.kz = dim / 3;
        if (q.kz == -2) q.kz = dim;
        context("quantize", Simd::scalar, rows, dim, std::string(tname) + " mode=" + std::to_string(int(q.mode)));
        std::vector<int8_t> got(x.size());
        quantize_rows(x.data(), rows, dim, q, false, got.data(), Simd::scalar);
        bool ok = true;
        for (int64_t r = 0; r < rows; ++r) {
          const T *row = x.data() + r * dim;
          double thr = q.thr;
          if (q.mode == ThresholdMode::kStd) {
            long double m = 0, v = 0;
            for (int64_t i = 0; i < dim; ++i) m += row[i];
            m = dim ? m / dim : 0;
            for (int64_t i = 0; i < dim; ++i) v += (row[i] - m) * (row[i] - m);
            thr = q.tau * std::sqrt(static_cast<double>(dim ? v / dim : 0));
          } else if (q.mode == ThresholdMode::kSparsity) {
            std::vector<double> a(row, row + dim);
            for (auto &e : a) e = std::fabs(e);
            std::sort(a.begin(), a.end());
            thr = q.kz ? a[q.kz - 1] : 0.0;
          }
          for (int64_t i = 0; i < dim; ++i) {
            const double v = row[i];
            const int want = v > thr ? 1 : (v < -thr ? -1 : 0);
            // The std model sums in a different order: allow disagreement only at the threshold.
            const bool near = q.mode == ThresholdMode::kStd && std::fabs(std::fabs(v) - thr) <= 1e-9 * (thr + 1);
            if (got[r * dim + i] != want && !near) ok = false;
          }
        }
        CHECK(ok);
      }
    }
  }
  for_each_simd("quantize", [&](Simd s) {
    for (int64_t dim : kDims)
      for (int64_t rows : kRows) {
        auto x = with_specials<T>(rows, dim);
        context("quantize moments", s, rows, dim, tname);
        for (int64_t r = 0; r < rows; ++r) {
          double m0, s0, m1, s1;
          CHECK(row_moments(x.data() + r * dim, dim, m0, s0, Simd::scalar));
          CHECK(row_moments(x.data() + r * dim, dim, m1, s1, s));
          CHECK(m0 == m1 && s0 == s1);
        }
        std::vector<double> sd0(static_cast<size_t>(rows)), sd1(sd0.size()), thr(sd0.size());
        row_std(x.data(), rows, dim, sd0.data(), Simd::scalar);
        row_std(x.data(), rows, dim, sd1.data(), s);
        CHECK(sd0 == sd1);
        for (int64_t r = 0; r < rows; ++r) thr[r] = 0.3 * sd0[r];
        for (bool packed : {false, true}) {
          const size_t n = static_cast<size_t>(packed ? rows * ceil_div(dim, 4) : rows * dim);
          std::vector<uint8_t> want(n), got(n);
          context("quantize thr", s, rows, dim, std::string(tname) + (packed ? " packed" : ""));
          quantize_rows(x.data(), rows, dim, thr.data(), packed, want.data(), Simd::scalar);
          quantize_rows(x.data(), rows, dim, thr.data(), packed, got.data(), s);
          CHECK(got == want);
          for (ThresholdSpec q : specs) {
            if (q.kz == -1) q.kz = dim / 3;
            if (q.kz == -2) q.kz = dim;
            context("quantize spec", s, rows, dim,
                    std::string(tname) + " mode=" + std::to_string(int(q.mode)) + (packed ? " packed" : ""));
            quantize_rows(x.data(), rows, dim, q, packed, want.data(), Simd::scalar);
            quantize_rows(x.data(), rows, dim, q, packed, got.data(), s);
            CHECK(got == want);
            if (rows * dim > 0) {
              // NaN and +-Inf anywhere (first value: inside a vector block; last: the tail) are
              // reported on every path and mode.
              for (T bad : {std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::infinity(),
                            -std::numeric_limits<T>::infinity()})
                for (size_t at : {size_t{0}, x.size() - 1}) {
                  auto y = x;
                  y[at] = bad;
                  CHECK(throws<std::invalid_argument>(
                      [&] { quantize_rows(y.data(), rows, dim, q, packed, got.data(), s); }));
                }
            }
          }
        }
      }
  });
}

void test_quantize() {
  std::printf("quantize\n");
  test_quantize_type<float>("float32");
  test_quantize_type<double>("float64");
  g_context = "quantize spec validation";
  CHECK(throws<std::invalid_argument>([] { make_threshold_spec(ThresholdMode::kStd, -1.0, 0.0, 0, 4); }));
  CHECK(throws<std::invalid_argument>([] { make_threshold_spec(ThresholdMode::kFixed, 0.3, NAN, 0, 4); }));
  CHECK(throws<std::invalid_argument>([] { make_threshold_spec(ThresholdMode::kSparsity, 0.3, 0.0, 5, 4); }));
  CHECK(throws<std::invalid_argument>([] { make_threshold_spec(static_cast<ThresholdMode>(7), 0.3, 0.0, 0, 4); }));
}

// ----------------------------------------------------------------------------- similarity
void test_similarity() {
  std::printf("similarity\n");
  const Metric metrics[] = {Metric::kDot, Metric::kCosine, Metric::kHamming};
  for (int64_t dim : kDims) {
    if (dim == 0) continue;
    // Query counts 0, 1, 2 (one pair of queries), 3 and 5 (pairs then a single query); row counts
    // 0, 1, 2, 5, 7 and 300 (a 256-row block then 44 rows).
    for (int64_t m : {int64_t{0}, int64_t{1}, int64_t{2}, int64_t{3}, int64_t{5}}) {
      for (int64_t n : {int64_t{0}, int64_t{1}, int64_t{2}, int64_t{5}, int64_t{7}, int64_t{300}}) {
        auto ta = random_trits(m * dim), tb = random_trits(n * dim);
        auto a = ref_pack(ta, m, dim), b = ref_pack(tb, n, dim);
        const int64_t nb = ceil_div(dim, 4);
        const Planes pa = to_planes(PackedRows{a.data(), m, nb}, "a");
        const Planes pb = to_planes(PackedRows{b.data(), n, nb}, "b");
        for (Metric metric : metrics) {
          const std::string mname = std::to_string(int(metric)) + " n=" + std::to_string(n);
          // Scalar against the naive model.
          std::vector<int32_t> want(static_cast<size_t>(m * n));  // cosine as float bits
          context("pairwise", Simd::scalar, m, dim, mname);
          pairwise(pa, PackedRows{b.data(), n, nb}, metric, want.data(), Simd::scalar);
          bool ok = true;
          for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < n; ++j) {
              int dot = 0, ham = 0, na = 0, nbn = 0;
              for (int64_t t = 0; t < dim; ++t) {
                const int x = ta[i * dim + t], y = tb[j * dim + t];
                dot += x * y;
                ham += x != y;
                na += x != 0;
                nbn += y != 0;
              }
              const int32_t got = want[i * n + j];
              if (metric == Metric::kDot) ok &= got == dot;
              if (metric == Metric::kHamming) ok &= got == ham;
              if (metric == Metric::kCosine) {
                float c;
                std::memcpy(&c, &got, 4);
                const double ref = (na && nbn) ? dot / std::sqrt(double(na) * nbn) : 0.0;
                ok &= std::fabs(c - ref) < 1e-6;
              }
            }
          CHECK(ok);
          // Every path and both database forms give identical scores.
          for (Simd s : kAllSimd) {
            if (!simd_supported(s)) continue;
            context("pairwise", s, m, dim, mname);
            std::vector<int32_t> got(want.size(), -7), got2(want.size(), -7);
            pairwise(pa, PackedRows{b.data(), n, nb}, metric, got.data(), s);
            pairwise(pa, pb, metric, got2.data(), s);
            CHECK(got == want);
            CHECK(got2 == want);
            for (int64_t k : {int64_t{1}, int64_t{3}, n}) {
              if (k < 1 || k > n) continue;
              context("topk", s, m, dim, mname + " k=" + std::to_string(k));
              std::vector<int32_t> s0(static_cast<size_t>(m * k)), s1(s0.size()), s2(s0.size());
              std::vector<int64_t> i0(s0.size()), i1(s0.size()), i2(s0.size());
              topk(pa, PackedRows{b.data(), n, nb}, k, metric, s0.data(), i0.data(), Simd::scalar);
              topk(pa, PackedRows{b.data(), n, nb}, k, metric, s1.data(), i1.data(), s);
              topk(pa, pb, k, metric, s2.data(), i2.data(), s);
              CHECK(s1 == s0 && i1 == i0);
              CHECK(s2 == s0 && i2 == i0);
              // Top-k equals the all-pairs scores sorted: best first (highest dot / cosine, lowest
              // hamming), ties to the lower row; cosine compared as float bits.
              bool consistent = true;
              for (int64_t i = 0; i < m; ++i) {
                std::vector<std::pair<double, int64_t>> all(static_cast<size_t>(n));
                for (int64_t j = 0; j < n; ++j) {
                  const int32_t w = want[i * n + j];
                  float c;
                  std::memcpy(&c, &w, 4);
                  const double v = metric == Metric::kCosine ? double(c) : double(w);
                  all[j] = {metric == Metric::kHamming ? v : -v, j};
                }
                std::sort(all.begin(), all.end());
                for (int64_t j = 0; j < k; ++j)
                  consistent &= i0[i * k + j] == all[j].second && s0[i * k + j] == want[i * n + all[j].second];
              }
              CHECK(consistent);
            }
          }
        }
        g_context = "topk k out of range";
        CHECK(throws<std::invalid_argument>([&] {
          std::vector<int32_t> s(static_cast<size_t>(m * (n + 1)) + 1);
          std::vector<int64_t> i(s.size());
          topk(pa, pb, n + 1, Metric::kDot, s.data(), i.data(), Simd::scalar);
        }));
      }
    }
  }
  for_each_simd("similarity", [](Simd) {});
  // The code 0b11 names the argument.
  std::vector<uint8_t> bad = {0x40, 0x0C};
  g_context = "similarity invalid code";
  CHECK(throws<std::invalid_argument>([&] { to_planes(PackedRows{bad.data(), 1, 2}, "database"); }));
  try {
    to_planes(PackedRows{bad.data(), 1, 2}, "database");
  } catch (const std::invalid_argument &e) {
    CHECK(std::string(e.what()).rfind("database:", 0) == 0);
  }
}

// ----------------------------------------------------------------------------- search (append, keep, float queries)
void test_search() {
  std::printf("search\n");
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
  for (int64_t dim : kDims) {
    if (dim == 0) continue;
    // n = 301: a full 256-row block, then 45 rows (4-row kernel steps and a single-row tail).
    const int64_t nb = ceil_div(dim, 4), n = 301;
    auto tb = random_trits(n * dim);
    auto b = ref_pack(tb, n, dim);
    // append_rows in pieces equals one conversion; keep_rows compacts.
    Planes whole = to_planes(PackedRows{b.data(), n, nb}, "b");
    Planes grown = to_planes(PackedRows{b.data(), 1, nb}, "b");
    for (int64_t r0 = 1; r0 < n; r0 += 37)
      append_rows(grown, PackedRows{b.data() + r0 * nb, std::min<int64_t>(37, n - r0), nb}, "vectors");
    g_context = "append_rows dim=" + std::to_string(dim);
    CHECK(grown.rows == n && grown.norms == whole.norms &&
          std::memcmp(grown.data.get(), whole.data.get(), sizeof(uint64_t) * n * 2 * whole.words) == 0);
    std::vector<uint8_t> keep(n);
    for (int64_t r = 0; r < n; ++r) keep[r] = r % 3 != 1;
    keep_rows(grown, keep.data());
    bool kept = true;
    int64_t o = 0;
    for (int64_t r = 0; r < n; ++r)
      if (keep[r]) {
        kept &= std::memcmp(grown.row(o), whole.row(r), sizeof(uint64_t) * 2 * whole.words) == 0 &&
                grown.norms[o] == whole.norms[r];
        ++o;
      }
    g_context = "keep_rows dim=" + std::to_string(dim);
    CHECK(kept && grown.rows == o);
    // Float queries: every path against a float64 sum (float32 rounding), both database forms. m:
    // the few-query path (query tiles of 4 and 1, or one of 3); the table path with one partial block of 16;
    // (two dims) 70 = two tasks of 8 and 1 blocks, the last partial. The table path is bit for bit
    // equal to scalar on every path (same tables, same order of adds).
    for (int64_t m : {dim % 2 ? int64_t{5} : int64_t{3}, dim == 65 || dim == 1027 ? int64_t{70} : int64_t{13}}) {
      const bool table = m >= kFloatTableMin;
      std::vector<float> q(static_cast<size_t>(m * dim));
      for (float &v : q) v = uni(rng);
      std::vector<double> ref(static_cast<size_t>(m * n)), mag(static_cast<size_t>(m));
      for (int64_t i = 0; i < m; ++i) {
        for (int64_t t = 0; t < dim; ++t) mag[i] += std::fabs(q[i * dim + t]);
        for (int64_t j = 0; j < n; ++j) {
          double acc = 0;
          for (int64_t t = 0; t < dim; ++t) acc += double(q[i * dim + t]) * tb[j * dim + t];
          ref[i * n + j] = acc;
        }
      }
      std::vector<float> want(static_cast<size_t>(m * n));
      for (Simd s : kAllSimd) {
        if (!simd_supported(s)) continue;
        context("float_scores", s, m, dim, "");
        std::vector<float> got(want.size(), -7.0f), got2(want.size(), -7.0f);
        float_scores(q.data(), m, dim, whole, got.data(), s);
        float_scores(q.data(), m, dim, PackedRows{b.data(), n, nb}, got2.data(), s);
        if (s == Simd::scalar) want = got;
        bool close = true;
        for (int64_t i = 0; i < m; ++i)
          for (int64_t j = 0; j < n; ++j) close &= std::fabs(got[i * n + j] - ref[i * n + j]) <= 1e-5 * (mag[i] + 1);
        CHECK(close);
        CHECK(got2 == got);
        if (table) CHECK(got == want);
        // Top-k: the scores above (or their cosines), best first, ties to the lower row; both forms.
        for (Metric mt : {Metric::kDot, Metric::kCosine}) {
          context("float_topk", s, m, dim, mt == Metric::kDot ? "dot" : "cosine");
          for (int64_t k : {int64_t{1}, int64_t{10}, n}) {
            std::vector<float> ts(static_cast<size_t>(m * k)), ts2(ts.size());
            std::vector<int64_t> ti(ts.size()), ti2(ts.size());
            float_topk(q.data(), m, dim, whole, k, mt, ts.data(), ti.data(), s);
            float_topk(q.data(), m, dim, PackedRows{b.data(), n, nb}, k, mt, ts2.data(), ti2.data(), s);
            bool same = ts == ts2 && ti == ti2;
            for (int64_t i = 0; i < m; ++i) {
              double qn = 0;
              for (int64_t t = 0; t < dim; ++t) qn += double(q[i * dim + t]) * q[i * dim + t];
              std::vector<std::pair<float, int64_t>> all(static_cast<size_t>(n));
              for (int64_t j = 0; j < n; ++j) {
                float v = got[i * n + j];
                if (mt == Metric::kCosine) {
                  const double den = std::sqrt(qn) * std::sqrt(double(whole.norms[j]));
                  v = den > 0 ? float(double(v) / den) : 0.0f;
                }
                all[j] = {-v, j};  // ascending = best first, ties to the lower row
              }
              std::sort(all.begin(), all.end());
              for (int64_t j = 0; j < k; ++j) same &= ts[i * k + j] == -all[j].first && ti[i * k + j] == all[j].second;
            }
            CHECK(same);
          }
        }
      }
    }
  }
  g_context = "append_rows width / float_scores dim";
  std::vector<uint8_t> row(3, 0);
  Planes p = to_planes(PackedRows{row.data(), 1, 2}, "b");
  CHECK(throws<std::invalid_argument>([&] { append_rows(p, PackedRows{row.data(), 1, 3}, "vectors"); }));
  std::vector<uint8_t> bad = {0x40, 0x0C};
  CHECK(throws<std::invalid_argument>([&] { append_rows(p, PackedRows{bad.data(), 1, 2}, "vectors"); }));
  CHECK(p.rows == 1);
  std::vector<float> q(9, 1.0f), out(1);
  CHECK(throws<std::invalid_argument>([&] { float_scores(q.data(), 1, 9, p, out.data(), Simd::scalar); }));
  {
    // Tasks of several kFloatRows segments (one thread: 2,600 rows -> tasks of 768 rows, the last of
    // 296): scores against float64, top-k against the scores, every path.
    const int64_t n2 = 2600, dim2 = 200, nb2 = ceil_div(dim2, 4), m2 = 20, k2 = 7;
    auto t2 = random_trits(n2 * dim2);
    auto b2 = ref_pack(t2, n2, dim2);
    Planes p2 = to_planes(PackedRows{b2.data(), n2, nb2}, "b");
    std::vector<float> q2(static_cast<size_t>(m2 * dim2));
    for (float &v : q2) v = uni(rng);
    const int saved = num_threads();
    set_num_threads(1);
    for (Simd s : kAllSimd) {
      if (!simd_supported(s)) continue;
      context("float_topk tasks", s, m2, dim2, "");
      std::vector<float> sc(static_cast<size_t>(m2 * n2)), ts(static_cast<size_t>(m2 * k2));
      std::vector<int64_t> ti(ts.size());
      float_scores(q2.data(), m2, dim2, p2, sc.data(), s);
      float_topk(q2.data(), m2, dim2, p2, k2, Metric::kDot, ts.data(), ti.data(), s);
      bool ok = true;
      for (int64_t i = 0; i < m2; ++i) {
        std::vector<std::pair<float, int64_t>> all(static_cast<size_t>(n2));
        for (int64_t j = 0; j < n2; ++j) {
          double ref = 0, mag = 0;
          for (int64_t t = 0; t < dim2; ++t) {
            ref += double(q2[i * dim2 + t]) * t2[j * dim2 + t];
            mag += std::fabs(q2[i * dim2 + t]);
          }
          ok &= std::fabs(sc[i * n2 + j] - ref) <= 1e-5 * (mag + 1);
          all[j] = {-sc[i * n2 + j], j};
        }
        std::sort(all.begin(), all.end());
        for (int64_t j = 0; j < k2; ++j) ok &= ts[i * k2 + j] == -all[j].first && ti[i * k2 + j] == all[j].second;
      }
      CHECK(ok);
    }
    set_num_threads(saved);
  }
  {
    // The table kernel's parts against their definitions: offsets of every pattern digit (random
    // words plus all-zero, all-pos, all-neg), and each table entry as the sum of its 4 signed values
    // (exact here: quarter-integer inputs).
    std::vector<uint64_t> mk = {0, ~0ULL, ~0ULL}, sg = {0, 0, ~0ULL};
    std::mt19937_64 r64(3);
    for (int i = 0; i < 29; ++i) mk.push_back(r64()), sg.push_back(r64());
    const int64_t nw = static_cast<int64_t>(mk.size());
    std::vector<uint64_t> want(static_cast<size_t>(nw * 4));
    for (int64_t w = 0; w < nw; ++w)
      for (int64_t s4 = 0; s4 < 4; ++s4) {
        uint64_t v = 0;
        for (int g = 0; g < 4; ++g) {
          int e = 0;
          for (int j = 0, p3 = 1; j < 4; ++j, p3 *= 3) {
            const int b = static_cast<int>(16 * s4 + 4 * g + j);
            const bool m1 = (mk[w] >> b) & 1, s1 = (sg[w] >> b) & 1;
            e += m1 ? (s1 ? 2 : 1) * p3 : 0;
          }
          v |= static_cast<uint64_t>((g * kFloatPatterns + e) << kTableShift) << (16 * g);
        }
        want[w * 4 + s4] = v;
      }
    std::vector<float> qt(16 * kFloatLanes);
    for (size_t i = 0; i < qt.size(); ++i) qt[i] = static_cast<float>(static_cast<int>(r64() % 41) - 20) / 4.0f;
    std::vector<float> wtab(4 * kFloatPatterns * kFloatLanes);
    for (int g = 0; g < 4; ++g)
      for (int e = 0; e < kFloatPatterns; ++e)
        for (int64_t l = 0; l < kFloatLanes; ++l) {
          float acc = 0;
          for (int j = 0, d = e; j < 4; ++j, d /= 3)
            acc += d % 3 == 1   ? qt[(4 * g + j) * kFloatLanes + l]
                   : d % 3 == 2 ? -qt[(4 * g + j) * kFloatLanes + l]
                                : 0.0f;
          wtab[(g * kFloatPatterns + e) * kFloatLanes + l] = acc;
        }
    for (Simd s : kAllSimd) {
      if (!simd_supported(s)) continue;
      context("float_offsets / float_tables", s, nw, 64, "");
      std::vector<uint64_t> got(want.size(), 7);
      pick(kFloatOffsets, s)(mk.data(), sg.data(), nw, kTableShift, got.data(), 4);
      CHECK(got == want);
      alignas(64) static float tab[4 * kFloatPatterns * kFloatLanes];
      alignas(64) static float qa[16 * kFloatLanes];
      std::copy(qt.begin(), qt.end(), qa);
      pick(kFloatTables, s)(qa, tab);
      CHECK(std::equal(wtab.begin(), wtab.end(), tab));
    }
  }
  g_context = "float_topk dim / k / metric";
  std::vector<int64_t> ix(2);
  CHECK(throws<std::invalid_argument>(
      [&] { float_topk(q.data(), 1, 9, p, 1, Metric::kDot, out.data(), ix.data(), Simd::scalar); }));
  CHECK(throws<std::invalid_argument>(
      [&] { float_topk(q.data(), 1, 8, p, 2, Metric::kDot, out.data(), ix.data(), Simd::scalar); }));
  CHECK(throws<std::invalid_argument>(
      [&] { float_topk(q.data(), 1, 8, p, 0, Metric::kDot, out.data(), ix.data(), Simd::scalar); }));
  CHECK(throws<std::invalid_argument>(
      [&] { float_topk(q.data(), 1, 8, p, 1, Metric::kHamming, out.data(), ix.data(), Simd::scalar); }));
  // NaN scores rank last (a total order: no out-of-range sort on any input).
  std::vector<float> qn = {std::nanf(""), 1, 1, 1, 1, 1, 1, 1};
  std::vector<uint8_t> rows2 = {0x40, 0x00, 0x00, 0x00};  // row 0 has a trit under the NaN, row 1 is zero
  Planes p2 = to_planes(PackedRows{rows2.data(), 2, 2}, "b");
  std::vector<float> s2(2);
  float_topk(qn.data(), 1, 8, p2, 2, Metric::kDot, s2.data(), ix.data(), Simd::scalar);
  CHECK(ix[0] == 1 && ix[1] == 0 && s2[0] == 0.0f && std::isnan(s2[1]));
}

// ----------------------------------------------------------------------------- algebra
// bundle_rows (thresholds 0, 1, 1.5, 2, n - 1, n, huge) and bundle_sums_rows against sums computed
// trit by trit, on Simd s and scalar; the bit-sliced counts directly against per-bit counts.
void test_bundle_case(Simd s, int64_t groups, int64_t n, int64_t dim, const std::vector<uint8_t> &v) {
  const int64_t nb = ceil_div(dim, 4);
  std::vector<int8_t> t(static_cast<size_t>(groups * n * dim));
  unpack_rows(v.data(), groups * n, dim, t.data(), Simd::scalar);
  std::vector<int32_t> want_sums(static_cast<size_t>(groups * 4 * nb), 0);
  for (int64_t g = 0; g < groups; ++g)
    for (int64_t r = 0; r < n; ++r)
      for (int64_t i = 0; i < dim; ++i) want_sums[g * 4 * nb + i] += t[(g * n + r) * dim + i];
  context("bundle", s, groups * n, dim, "n=" + std::to_string(n));
  for (Simd path : {Simd::scalar, s}) {
    std::vector<int32_t> sums(want_sums.size(), -7);
    bundle_sums_rows(v.data(), groups, n, nb, sums.data(), path);
    CHECK(sums == want_sums);
    for (double thr : {0.0, 1.0, 1.5, 2.0, static_cast<double>(n - 1), static_cast<double>(n), 1e300}) {
      std::vector<int8_t> q(static_cast<size_t>(groups * dim));
      const double ti = std::floor(thr);
      for (int64_t g = 0; g < groups; ++g)
        for (int64_t i = 0; i < dim; ++i) {
          const int32_t x = want_sums[g * 4 * nb + i];
          q[g * dim + i] = static_cast<int8_t>(x > ti ? 1 : (x < -ti ? -1 : 0));
        }
      std::vector<uint8_t> got(static_cast<size_t>(groups * nb), 0xEE);
      bundle_rows(v.data(), groups, n, nb, thr, got.data(), path);
      CHECK(got == ref_pack(q, groups, dim));
    }
  }
  if (groups > 0) {  // the count kernel itself: plane l, bit b of byte j = bit l of the rows' bit-b count
    const int levels = count_levels(n);
    std::vector<uint8_t> planes(static_cast<size_t>(levels * nb), 0xEE);
    CHECK(pick(kCount, s)(v.data(), n, nb, nb, levels, planes.data()));
    bool same = true;
    for (int64_t j = 0; j < nb; ++j)
      for (int b = 0; b < 8; ++b) {
        int64_t c = 0;
        for (int64_t r = 0; r < n; ++r) c += (v[r * nb + j] >> b) & 1;
        for (int l = 0; l < levels; ++l) same &= ((planes[l * nb + j] >> b) & 1) == ((c >> l) & 1);
      }
    CHECK(same);
  }
  if (groups * n * nb > 0) {  // code 0b11 in the last row's last byte
    auto bad = v;
    bad[bad.size() - 1] |= 0x03;
    std::vector<uint8_t> out(static_cast<size_t>(groups * nb));
    std::vector<int32_t> sums(static_cast<size_t>(groups * 4 * nb));
    CHECK(throws<std::invalid_argument>([&] { bundle_rows(bad.data(), groups, n, nb, 0.0, out.data(), s); }));
    CHECK(throws<std::invalid_argument>([&] { bundle_sums_rows(bad.data(), groups, n, nb, sums.data(), s); }));
  }
}

void test_algebra() {
  std::printf("algebra\n");
  // Scalar bind against the trit product.
  for (int64_t dim : kDims) {
    for (int64_t rows : kRows) {
      auto ta = random_trits(rows * dim), tb = random_trits(rows * dim);
      std::vector<int8_t> prod(ta.size());
      for (size_t i = 0; i < ta.size(); ++i) prod[i] = static_cast<int8_t>(ta[i] * tb[i]);
      auto a = ref_pack(ta, rows, dim), b = ref_pack(tb, rows, dim);
      const int64_t nb = ceil_div(dim, 4);
      std::vector<uint8_t> out(a.size());
      context("bind", Simd::scalar, rows, dim);
      bind_rows(a.data(), rows, b.data(), rows, nb, out.data(), Simd::scalar);
      CHECK(out == ref_pack(prod, rows, dim));
    }
  }
  for_each_simd("algebra", [](Simd s) {
    for (int64_t dim : kDims) {
      const int64_t nb = ceil_div(dim, 4);
      for (int64_t rows : kRows) {
        auto a = random_packed(rows, dim), b = random_packed(rows, dim), one = random_packed(1, dim);
        std::vector<uint8_t> want(a.size()), got(a.size());
        context("bind", s, rows, dim);
        bind_rows(a.data(), rows, b.data(), rows, nb, want.data(), Simd::scalar);
        bind_rows(a.data(), rows, b.data(), rows, nb, got.data(), s);
        CHECK(got == want);
        if (rows > 0) {  // one side broadcast
          bind_rows(one.data(), 1, b.data(), rows, nb, want.data(), Simd::scalar);
          bind_rows(one.data(), 1, b.data(), rows, nb, got.data(), s);
          CHECK(got == want);
        }
        if (rows * nb > 0) {
          auto badb = b;
          badb[badb.size() - 1] |= 0x03;  // code 0b11 in the last trit slot (maybe padding: still invalid bytes)
          CHECK(
              throws<std::invalid_argument>([&] { bind_rows(a.data(), rows, badb.data(), rows, nb, got.data(), s); }));
        }
        // bundle: groups x n rows against the trit-by-trit model (majority with thresholds, int32
        // sums); n crosses the 16-row adder tree and every count width up to 1000 rows.
        for (int64_t n :
             {int64_t{1}, int64_t{2}, int64_t{3}, int64_t{5}, int64_t{16}, int64_t{17}, int64_t{130}, int64_t{1000}}) {
          const int64_t groups = std::min<int64_t>(rows, n >= 1000 ? 1 : 3);
          if (n >= 1000 && dim > 257) continue;  // keeps the test fast; the widths below 257 straddle every block
          test_bundle_case(s, groups, n, dim, random_packed(groups * n, dim));
        }
        if (rows == 1) {  // ties everywhere: each row repeated with its negation (sums 0, or +-1 with one more row)
          for (int64_t n : {int64_t{2}, int64_t{3}, int64_t{32}, int64_t{33}}) {
            auto half = random_trits(n / 2 * dim);
            std::vector<int8_t> t(static_cast<size_t>(n * dim), 0);
            for (int64_t i = 0; i < n / 2 * dim; ++i) {
              t[i] = half[i];
              t[n / 2 * dim + i] = static_cast<int8_t>(-half[i]);
            }
            if (n % 2) {
              auto last = random_trits(dim);
              std::copy(last.begin(), last.end(), t.begin() + 2 * (n / 2) * dim);
            }
            test_bundle_case(s, 1, n, dim, ref_pack(t, n, dim));
          }
        }
        // permute by several k, including 0 and dim - 1
        if (dim > 0) {
          for (int64_t k : {int64_t{0}, int64_t{1}, dim / 3, dim / 2, dim - 1}) {
            if (k >= dim) continue;
            std::vector<uint8_t> w(a.size()), g(a.size());
            context("permute", s, rows, dim, "k=" + std::to_string(k));
            permute_rows(a.data(), rows, nb, k, dim, w.data(), Simd::scalar);
            permute_rows(a.data(), rows, nb, k, dim, g.data(), s);
            CHECK(g == w);
            // Scalar against numpy.roll of the trits.
            std::vector<int8_t> t(static_cast<size_t>(rows * dim)), rolled(t.size());
            unpack_rows(a.data(), rows, dim, t.data(), Simd::scalar);
            for (int64_t r = 0; r < rows; ++r)
              for (int64_t i = 0; i < dim; ++i) rolled[r * dim + (i + k) % dim] = t[r * dim + i];
            CHECK(w == ref_pack(rolled, rows, dim));
          }
        }
      }
      // The funnel shifter directly, every bit offset.
      std::vector<uint8_t> src(static_cast<size_t>(nb + 70));
      for (auto &c : src) c = static_cast<uint8_t>(g_rng());
      for (int64_t pos = 0; pos < 16; pos += 2) {
        const int64_t count = std::max<int64_t>(0, static_cast<int64_t>(src.size()) - 1 - pos / 8 - 1);
        std::vector<uint8_t> w(static_cast<size_t>(count)), g(w.size());
        context("funnel", s, 1, dim, "pos=" + std::to_string(pos));
        pick(kFunnel, Simd::scalar)(src.data(), static_cast<int64_t>(src.size()), pos, w.data(), count);
        pick(kFunnel, s)(src.data(), static_cast<int64_t>(src.size()), pos, g.data(), count);
        CHECK(g == w);
      }
    }
  });
  g_context = "algebra argument checks";
  CHECK(throws<std::invalid_argument>([] { bundle_rows(nullptr, 1, 0, 4, 0.0, nullptr, Simd::scalar); }));
  CHECK(throws<std::invalid_argument>([] { bundle_rows(nullptr, 1, 1, 4, -1.0, nullptr, Simd::scalar); }));
  CHECK(throws<std::invalid_argument>([] { bundle_sums_rows(nullptr, 1, 0, 4, nullptr, Simd::scalar); }));
  CHECK(throws<std::invalid_argument>(
      [] { bundle_sums_rows(nullptr, 1, int64_t{1} << 31, 4, nullptr, Simd::scalar); }));  // int32 sums
  CHECK(count_levels(1) == 1 && count_levels(2) == 2 && count_levels(1000) == 10 && count_levels(1023) == 10);
  CHECK(throws<std::invalid_argument>([] { permute_rows(nullptr, 1, 2, 8, 8, nullptr, Simd::scalar); }));
  CHECK(throws<std::invalid_argument>([] { permute_rows(nullptr, 1, 3, 1, 8, nullptr, Simd::scalar); }));
  CHECK(throws<std::invalid_argument>([] { bind_rows(nullptr, 2, nullptr, 3, 4, nullptr, Simd::scalar); }));
}

// ----------------------------------------------------------------------------- encoder
void test_encoder() {
  std::printf("encoder\n");
  const ThresholdSpec specs[] = {
      {ThresholdMode::kStd, 0.3, 0.0, 0},
      {ThresholdMode::kFixed, 0.0, 0.25, 0},
      {ThresholdMode::kSparsity, 0.0, 0.0, -1},
  };
  // The epilogue equals quantize_rows with the same spec (one threshold rule for both).
  for (int64_t dim : kDims)
    for (int64_t rows : kRows) {
      auto h = with_specials<float>(rows, dim);
      for (ThresholdSpec q : specs) {
        if (q.kz < 0) q.kz = dim / 2;
        for (bool packed : {true, false}) {
          const int64_t width = packed ? ceil_div(dim, 4) : dim;
          std::vector<uint8_t> want(static_cast<size_t>(rows * width)), got(want.size());
          context("encode_epilogue", Simd::scalar, rows, dim, "mode=" + std::to_string(int(q.mode)));
          quantize_rows(h.data(), rows, dim, q, packed, want.data(), Simd::scalar);
          encode_epilogue(h.data(), rows, dim, q, EncodeOut{got.data(), packed, width}, Simd::scalar);
          CHECK(got == want);
        }
      }
    }
  for_each_simd("encoder", [&](Simd s) {
    for (int64_t dim : kDims)
      for (int64_t rows : kRows) {
        auto h = with_specials<float>(rows, dim);
        for (ThresholdSpec q : specs) {
          if (q.kz < 0) q.kz = dim / 2;
          for (bool packed : {true, false}) {
            const int64_t width = packed ? ceil_div(dim, 4) : dim;
            std::vector<uint8_t> want(static_cast<size_t>(rows * width)), got(want.size());
            context("encode_epilogue", s, rows, dim, "mode=" + std::to_string(int(q.mode)));
            encode_epilogue(h.data(), rows, dim, q, EncodeOut{want.data(), packed, width}, Simd::scalar);
            encode_epilogue(h.data(), rows, dim, q, EncodeOut{got.data(), packed, width}, s);
            CHECK(got == want);
            if (rows * dim > 0) {
              auto bad = h;
              bad[bad.size() / 2] = std::numeric_limits<float>::infinity();
              CHECK(throws<std::invalid_argument>(
                  [&] { encode_epilogue(bad.data(), rows, dim, q, EncodeOut{got.data(), packed, width}, s); }));
            }
          }
        }
      }
    // FWHT: bit-identical on every path, for every power of two up to 4096.
    for (int64_t n = 1; n <= 4096; n *= 2)
      for (int64_t rows : {int64_t{0}, int64_t{1}, int64_t{3}}) {
        auto a = random_floats(rows * n), b = a;
        context("fwht", s, rows, n);
        fwht_rows(a.data(), rows, n, Simd::scalar);
        fwht_rows(b.data(), rows, n, s);
        CHECK(a == b);
      }
    // SRHT and sparse projections fused with the epilogue.
    for (int64_t in_dim : {int64_t{1}, int64_t{5}, int64_t{33}, int64_t{100}}) {
      for (int64_t dim : {int64_t{1}, int64_t{7}, int64_t{130}}) {
        int64_t size = 1;
        while (size < in_dim) size *= 2;
        const int64_t blocks = ceil_div(dim, size) + 1;
        auto signs = random_floats(blocks * in_dim);
        std::vector<int32_t> select(static_cast<size_t>(dim));
        for (auto &v : select) v = static_cast<int32_t>(g_rng() % static_cast<uint64_t>(blocks * size));
        const SrhtSpec srht{signs.data(), select.data(), blocks, in_dim, dim, size};
        const int64_t k = std::min<int64_t>(in_dim, 3);
        std::vector<int32_t> idx(static_cast<size_t>(dim * k));
        for (auto &v : idx) v = static_cast<int32_t>(g_rng() % static_cast<uint64_t>(in_dim));
        auto vals = random_floats(dim * k);
        const SparseSpec sparse{idx.data(), vals.data(), dim, k, in_dim};
        for (int64_t rows : {int64_t{0}, int64_t{1}, int64_t{17}}) {
          auto x = random_floats(rows * in_dim);
          for (ThresholdSpec q : specs) {
            if (q.kz < 0) q.kz = dim / 2;
            for (bool packed : {true, false}) {
              const int64_t width = packed ? ceil_div(dim, 4) : dim;
              std::vector<uint8_t> w(static_cast<size_t>(rows * width)), g(w.size());
              context("srht_encode", s, rows, dim, "in_dim=" + std::to_string(in_dim));
              srht_encode(x.data(), rows, srht, q, EncodeOut{w.data(), packed, width}, Simd::scalar);
              srht_encode(x.data(), rows, srht, q, EncodeOut{g.data(), packed, width}, s);
              CHECK(g == w);
              context("sparse_encode", s, rows, dim, "in_dim=" + std::to_string(in_dim));
              sparse_encode(x.data(), rows, sparse, q, EncodeOut{w.data(), packed, width}, Simd::scalar);
              sparse_encode(x.data(), rows, sparse, q, EncodeOut{g.data(), packed, width}, s);
              CHECK(g == w);
            }
          }
        }
      }
    }
  });
  // kth_abs is exact, for float and double.
  for (int64_t n : {int64_t{1}, int64_t{2}, int64_t{100}, int64_t{4097}}) {
    auto f = random_floats(n);
    std::vector<double> d(f.begin(), f.end());
    std::vector<float> fs(f);
    for (auto &v : fs) v = std::fabs(v);
    std::sort(fs.begin(), fs.end());
    ThresholdScratch scratch;
    g_context = "kth_abs n=" + std::to_string(n);
    for (int64_t kz : {int64_t{1}, n / 2 + 1, n}) {
      CHECK(kth_abs(f.data(), n, kz, scratch) == fs[kz - 1]);
      CHECK(kth_abs(d.data(), n, kz, scratch) == static_cast<double>(fs[kz - 1]));
    }
  }
  g_context = "encoder argument checks";
  std::vector<float> x(8, 1.0f);
  std::vector<uint8_t> out(2);
  const ThresholdSpec std_spec{ThresholdMode::kStd, 0.3, 0.0, 0};
  CHECK(throws<std::invalid_argument>([&] { fwht_rows(x.data(), 1, 6, Simd::scalar); }));
  CHECK(throws<std::invalid_argument>([&] {
    encode_epilogue(x.data(), 1, 8, ThresholdSpec{ThresholdMode::kSparsity, 0.3, 0.0, 9},
                    EncodeOut{out.data(), true, 2}, Simd::scalar);
  }));
  CHECK(throws<std::invalid_argument>(
      [&] { encode_epilogue(x.data(), 1, 8, std_spec, EncodeOut{out.data(), true, 3}, Simd::scalar); }));
  int32_t bad_select = 99;
  float sign = 1.0f;
  CHECK(throws<std::invalid_argument>([&] {
    srht_encode(x.data(), 1, SrhtSpec{&sign, &bad_select, 1, 1, 1, 1}, std_spec, EncodeOut{out.data(), true, 1},
                Simd::scalar);
  }));
}

// ----------------------------------------------------------------------------- base3
void test_base3() {
  std::printf("base3 (one implementation for every path)\n");
  for (int64_t dim : kDims)
    for (int64_t rows : kRows) {
      context("base3", Simd::scalar, rows, dim);
      auto t = random_trits(rows * dim);
      auto p = ref_pack(t, rows, dim);
      const Base3Sizes sz = base3_sizes(rows, dim);
      CHECK(sz.stream_bytes == ceil_div(rows * dim, 5));
      std::vector<uint8_t> stream(static_cast<size_t>(sz.stream_bytes));
      base3_encode(p.data(), rows, dim, stream.data());
      // Against the layout: digit of trit t at byte t / 5, position t % 5, most significant first.
      std::vector<uint8_t> want(stream.size(), 0);
      for (int64_t j = 0; j < sz.stream_bytes; ++j) {
        int byte = 0;
        for (int64_t q = 0; q < 5; ++q) {
          const int64_t i = 5 * j + q;
          const int d = i < rows * dim ? (t[i] == 1 ? 1 : (t[i] == -1 ? 2 : 0)) : 0;
          byte = byte * 3 + d;
        }
        want[j] = static_cast<uint8_t>(byte);
      }
      CHECK(stream == want);
      std::vector<uint8_t> back(p.size(), 0xAA);
      base3_decode(stream.data(), rows, dim, back.data());
      CHECK(back == p);
      if (!stream.empty()) {
        auto bad = stream;
        bad[0] = 243;
        CHECK(throws<std::invalid_argument>([&] { base3_decode(bad.data(), rows, dim, back.data()); }));
        if ((rows * dim) % 5) {  // a non-zero padding digit
          bad = stream;
          bad.back() = static_cast<uint8_t>(bad.back() + 1);
          if (bad.back() < 243)
            CHECK(throws<std::invalid_argument>([&] { base3_decode(bad.data(), rows, dim, back.data()); }));
        }
        auto badp = p;
        badp[0] |= 0xC0;  // first trit: code 0b11
        CHECK(throws<std::invalid_argument>([&] { base3_encode(badp.data(), rows, dim, stream.data()); }));
      }
    }
  g_context = "base3 sizes";
  CHECK(throws<std::invalid_argument>([] { base3_sizes(-1, 4); }));
  CHECK(throws<std::invalid_argument>([] { base3_sizes(int64_t{1} << 40, int64_t{1} << 40); }));
}

}  // namespace

int main() {
  std::printf("ternhd kernel tests: best SIMD path of this CPU = %s\n", simd_name(best_simd()));
  // 3 threads exercise the threaded drivers even on small machines; TERNHD_TEST_THREADS overrides
  // it (the aarch64 run under qemu uses 1: emulated thread hand-offs dominate its time there, and
  // the drivers are the same code as on the native run).
  const char *env_threads = std::getenv("TERNHD_TEST_THREADS");
  set_num_threads(env_threads ? std::atoi(env_threads) : 3);
  for (void (*family)() :
       {test_pack, test_quantize, test_similarity, test_search, test_algebra, test_encoder, test_base3}) {
    const auto t0 = std::chrono::steady_clock::now();
    try {
      family();
      std::printf("  (%.1f s)\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      std::fflush(stdout);
    } catch (const std::exception &e) {  // an unexpected throw fails the family, the others still run
      ++g_failures;
      std::printf("FAIL: unexpected exception '%s'  [%s]\n", e.what(), g_context.c_str());
    }
  }
  std::printf("%d checks, %d failures\n", g_checks, g_failures);
  return g_failures == 0 ? 0 : 1;
}
