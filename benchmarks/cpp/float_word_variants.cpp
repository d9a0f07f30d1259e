// AVX2 asymmetric (float query) word-kernel candidates for issue 14 (target B): the kernel shipped
// until 2026-12-02 ("prev": 16 groups of 4 positions, 16-entry pos and neg tables, 32 lookups of 64
// bytes a row and word, 16 KiB of tables; copied here), 3-position groups with a 27-entry signed
// table each (22 lookups a word, built per half word: 11 groups, 17.4 KiB) at R4/R3/R2 rows a step,
// and the shipped float_word_avx2 (4-position groups, 81-entry signed tables per quarter word: 16
// lookups of 64 bytes a row and word, offsets from float_offsets_avx2 of random planes).
// Random offsets and tables (timing only), best of 30, wall clock; a whole word (64 positions x 16
// queries) for NDV rows per pass.
// Build and run (not part of the library build; x86-64 with AVX2; NDV = rows per task):
//   g++ -O3 -std=c++17 -DNDV=1024 -Icsrc benchmarks/cpp/float_word_variants.cpp csrc/threads.cpp csrc/dispatch.cpp -o
//   /tmp/fv -lpthread
#include <time.h>
#include <cstdio>
#include <random>
#include "../../csrc/similarity.cpp"
using namespace ternhd;
static double now() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}
template <int R>
TERNHD_AVX2 TERNHD_INLINE void prev_rows(const char *tab, const uint64_t *o, float *c) {
  __m256 a[R][2];
  for (int r = 0; r < R; ++r) {
    a[r][0] = _mm256_load_ps(c + r * kL);
    a[r][1] = _mm256_load_ps(c + r * kL + 8);
  }
  for (int half = 0; half < 2; ++half) {
    uint64_t xp[R], xn[R];
    for (int r = 0; r < R; ++r) {
      xp[r] = o[4 * r + half];
      xn[r] = o[4 * r + 2 + half];
    }
    for (int g = 0; g < 8; ++g, tab += 16 * kL * sizeof(float)) {
      for (int r = 0; r < R; ++r) {
        const float *tp = reinterpret_cast<const float *>(tab + (xp[r] & 0xFF) * 8);
        const float *tn = reinterpret_cast<const float *>(tab + (xn[r] & 0xFF) * 8);
        xp[r] >>= 8;
        xn[r] >>= 8;
        a[r][0] = _mm256_sub_ps(_mm256_add_ps(a[r][0], _mm256_load_ps(tp)), _mm256_load_ps(tn));
        a[r][1] = _mm256_sub_ps(_mm256_add_ps(a[r][1], _mm256_load_ps(tp + 8)), _mm256_load_ps(tn + 8));
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    _mm256_store_ps(c + r * kL, a[r][0]);
    _mm256_store_ps(c + r * kL + 8, a[r][1]);
  }
}

using RowsFn = void (*)(const char *tab, const uint64_t *o, float *c);
// nd rows through a row kernel, R rows a step then single rows; S offset words a row.
template <int R, int S, RowsFn StepR, RowsFn Step1>
TERNHD_AVX2 void over_rows(const float *tab, const uint64_t *offs, int64_t nd, float *c) {
  const char *t = reinterpret_cast<const char *>(tab);
  int64_t r = 0;
  for (; r + R <= nd; r += R) StepR(t, offs + r * S, c + r * kL);
  for (; r < nd; ++r) Step1(t, offs + r * S, c + r * kL);
}
constexpr int kG = 11;            // groups per half word
constexpr int kTabEntries = 279;  // 10 * 27 + 9
template <int R>
TERNHD_AVX2 TERNHD_INLINE void rows3(const char *tab, const uint64_t *o, float *c) {
  __m256 a[R][2];
  for (int r = 0; r < R; ++r) {
    a[r][0] = _mm256_load_ps(c + r * kL);
    a[r][1] = _mm256_load_ps(c + r * kL + 8);
  }
  for (int q4 = 0; q4 < 3; ++q4) {
    uint64_t x[R];
    for (int r = 0; r < R; ++r) x[r] = o[r * 3 + q4];
    for (int g = 0; g < (q4 < 2 ? 4 : 3); ++g) {
      for (int r = 0; r < R; ++r) {
        const float *t = reinterpret_cast<const float *>(tab + (x[r] & 0xFFFF));
        x[r] >>= 16;
        a[r][0] = _mm256_add_ps(a[r][0], _mm256_load_ps(t));
        a[r][1] = _mm256_add_ps(a[r][1], _mm256_load_ps(t + 8));
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    _mm256_store_ps(c + r * kL, a[r][0]);
    _mm256_store_ps(c + r * kL + 8, a[r][1]);
  }
}
template <int R>
constexpr auto word3 = over_rows<R, 3, rows3<R>, rows3<1>>;
int main() {
  const int64_t nd = NDV, W = 64;
  std::mt19937_64 rng(1);
  AlignedFloats tab(16 * 16 * kL), tab3(kTabEntries * kL), tab4(4 * kFloatPatterns * kL), c(nd * kL);
  for (int i = 0; i < 4 * kFloatPatterns * kL; ++i) tab4.get()[i] = (rng() % 1000) / 7.0f;
  std::vector<uint64_t> planes(W * nd * 2), o4(W * nd * 4);  // random mask and sign words, their offsets
  for (auto &x : planes) x = rng();
  for (int64_t r = 0; r < nd; ++r)
    float_offsets_avx2(planes.data() + r * 2 * W, planes.data() + r * 2 * W + W, W, kTableShift, o4.data() + r * 4,
                       nd * 4);
  for (int i = 0; i < 16 * 16 * kL; ++i) tab.get()[i] = (rng() % 1000) / 7.0f;
  for (int i = 0; i < kTabEntries * kL; ++i) tab3.get()[i] = (rng() % 1000) / 7.0f;
  std::vector<uint64_t> offs(W * nd * 4);
  for (auto &x : offs) x = (rng() & 0x0F0F0F0F0F0F0F0FULL) << 3;
  std::vector<uint64_t> o3(W * 2 * nd * 3);
  for (size_t i = 0; i < o3.size(); ++i) {
    uint64_t v = 0;
    for (int g = 0; g < 4; ++g)
      v |= uint64_t((i % 3) * 4 + g < 10 ? ((i % 3) * 4 + g) * 27 + rng() % 27 : 270 + rng() % 9) * 64 << (16 * g);
    o3[i] = v;
  }
  for (int rep = 0; rep < 4; ++rep) {
    double b[5] = {1e9, 1e9, 1e9, 1e9, 1e9};
    for (int t = 0; t < 30; ++t) {
      double t0 = now();
      for (int64_t w = 0; w < W; ++w)
        over_rows<4, 4, prev_rows<4>, prev_rows<1>>(tab.get(), offs.data() + w * nd * 4, nd, c.get());
      double t1 = now();
      for (int64_t w = 0; w < 2 * W; ++w) word3<4>(tab3.get(), o3.data() + w * nd * 3, nd, c.get());
      double t2 = now();
      for (int64_t w = 0; w < 2 * W; ++w) word3<3>(tab3.get(), o3.data() + w * nd * 3, nd, c.get());
      double t3 = now();
      for (int64_t w = 0; w < 2 * W; ++w) word3<2>(tab3.get(), o3.data() + w * nd * 3, nd, c.get());
      double t4 = now();
      for (int64_t w = 0; w < W; ++w)
        for (int64_t qw = 0; qw < 4; ++qw) float_word_avx2(tab4.get(), o4.data() + w * nd * 4 + qw, nd, c.get());
      double t5 = now();
      b[4] = std::min(b[4], t5 - t4);
      b[0] = std::min(b[0], t1 - t0);
      b[1] = std::min(b[1], t2 - t1);
      b[2] = std::min(b[2], t3 - t2);
      b[3] = std::min(b[3], t4 - t3);
    }
    std::printf("prev %.3f  half3 R4 %.3f R3 %.3f R2 %.3f  shipped %.3f ms\n", b[0] * 1e3, b[1] * 1e3, b[2] * 1e3,
                b[3] * 1e3, b[4] * 1e3);
  }
}
