// An exact int8-query kernel for the few-query asymmetric path (issue 14), measured and not adopted:
// per 32 positions the mask and sign bits are spread to bytes (pshufb + and + cmpeq), the trits
// applied with vpsignb and summed with vpmaddubsw into int16 lanes (widened every 64 words). One
// and four queries against 100,000 x 4,096-trit rows, one thread, the row 4 ahead prefetched, as
// in the shipped float path. Build and run (x86-64 with AVX2):
//   g++ -O3 -std=c++17 -Icsrc benchmarks/cpp/int8_dots.cpp csrc/similarity.cpp csrc/threads.cpp csrc/dispatch.cpp
//   csrc/pack.cpp -o /tmp/i8 -lpthread && /tmp/i8
#include <immintrin.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>
#include "random_rows.hpp"
#include "similarity.hpp"
#include "threads.hpp"
using namespace ternhd;
template <int NQ>
__attribute__((target("avx2"))) void i8dots(const int8_t *qp, const uint64_t *row, int64_t words, int32_t *out) {
  const uint64_t *m = row, *s = row + words;
  const __m256i ctrl =
      _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
  const __m256i bitsel = _mm256_set1_epi64x(0x8040201008040201LL);
  const __m256i one8 = _mm256_set1_epi8(1), one16 = _mm256_set1_epi16(1);
  __m256i acc16[NQ], acc32[NQ];
  for (int i = 0; i < NQ; ++i) {
    acc16[i] = _mm256_setzero_si256();
    acc32[i] = _mm256_setzero_si256();
  }
  const int64_t qs = words * 64;
  for (int64_t w = 0; w < words; ++w) {
    for (int h = 0; h < 2; ++h) {
      const __m256i mb = _mm256_set1_epi32((int)(uint32_t)(m[w] >> (32 * h)));
      const __m256i sb = _mm256_set1_epi32((int)(uint32_t)(s[w] >> (32 * h)));
      const __m256i m8 = _mm256_cmpeq_epi8(_mm256_and_si256(_mm256_shuffle_epi8(mb, ctrl), bitsel), bitsel);
      const __m256i s8 = _mm256_cmpeq_epi8(_mm256_and_si256(_mm256_shuffle_epi8(sb, ctrl), bitsel), bitsel);
      const __m256i t8 = _mm256_and_si256(m8, _mm256_or_si256(s8, one8));
      for (int i = 0; i < NQ; ++i) {
        const __m256i q = _mm256_loadu_si256((const __m256i *)(qp + i * qs + 64 * w + 32 * h));
        acc16[i] = _mm256_add_epi16(acc16[i], _mm256_maddubs_epi16(one8, _mm256_sign_epi8(q, t8)));
      }
    }
    if ((w & 63) == 63)
      for (int i = 0; i < NQ; ++i) {
        acc32[i] = _mm256_add_epi32(acc32[i], _mm256_madd_epi16(acc16[i], one16));
        acc16[i] = _mm256_setzero_si256();
      }
  }
  for (int i = 0; i < NQ; ++i) {
    __m256i a = _mm256_add_epi32(acc32[i], _mm256_madd_epi16(acc16[i], one16));
    __m128i r = _mm_add_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
    r = _mm_add_epi32(r, _mm_shuffle_epi32(r, 0x4E));
    r = _mm_add_epi32(r, _mm_shuffle_epi32(r, 0xB1));
    out[i] = _mm_cvtsi128_si32(r);
  }
}
int main(int argc, char **argv) {
  const int64_t N = 100000, nb = 1024, W = 64;
  std::mt19937_64 rng(1);
  std::vector<uint8_t> v = random_packed_rows(rng, N, nb);
  Planes db = to_planes(PackedRows{v.data(), N, nb}, "db");
  std::vector<int8_t> q(W * 64 * 4);
  for (auto &x : q) x = (int8_t)((int)(rng() % 255) - 127);
  std::vector<int32_t> out(N * 4);
  for (int rep = 0; rep < 5; ++rep) {
    auto t0 = std::chrono::steady_clock::now();
    for (int64_t r = 0; r < N; ++r) {
      if (r + 4 < N)
        for (int64_t o = 0; o < 2 * W; o += 8) __builtin_prefetch(db.row(r + 4) + o);
      i8dots<1>(q.data(), db.row(r), W, out.data() + r);
    }
    auto t1 = std::chrono::steady_clock::now();
    for (int64_t r = 0; r < N; ++r) {
      if (r + 4 < N)
        for (int64_t o = 0; o < 2 * W; o += 8) __builtin_prefetch(db.row(r + 4) + o);
      i8dots<4>(q.data(), db.row(r), W, out.data() + 4 * r);
    }
    auto t2 = std::chrono::steady_clock::now();
    std::printf("int8 1q %.1f ms  4q %.1f ms\n", std::chrono::duration<double>(t1 - t0).count() * 1e3,
                std::chrono::duration<double>(t2 - t1).count() * 1e3);
  }
}
