// AVX2 pair-count candidates for issue 14 (target A: exact top-10, ternhd vs NumKong), measured
// against the shipped counts_avx2 on one 256-row database block (hot in L2) x 64 queries, one thread,
// best of 200 short trials (thread CPU time), every result checked against counts_avx2.
//   gen1   the shipped kernel (counts_avx2, one query at a time, the AVX2 slot of counts2 calls it twice)
//   v1ndK  2 queries x K rows register tile, per-byte pshufb counts in epi8 lanes, one vpsadbw per 31 steps
//   N2/N4  2 / 4 queries x 1 row, the queries' nibbles split once (no per-pair shifts), row split shared
//   hs     Harley-Seal carry-save adders over blocks of 15 / 7 vectors per pair stream, weighted popcounts
//   half   only the 'both' count (wrong result: a bound on what removing half the work gives)
// Build and run (not part of the library build; x86-64 with AVX2):
//   g++ -O3 -std=c++17 -Icsrc benchmarks/cpp/kernel_variants.cpp csrc/threads.cpp csrc/dispatch.cpp -o /tmp/kv
//   -lpthread /tmp/kv [words=64] [rows=256]
#include <time.h>
#include <chrono>
#include "../../csrc/similarity.cpp"
static double cpu_now() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}
#include <cstdio>
#include <random>
using namespace ternhd;

static inline TERNHD_AVX2 __m256i lutc() {
  return _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3,
                          4);
}
// V1: 2 x ND tile, epi8 accumulators, sad every <= 31 steps.
template <int ND>
TERNHD_AVX2 inline void tile2_avx2(const uint64_t *q0, const uint64_t *q1, const uint64_t *d, int64_t words,
                                   int32_t *b0, int32_t *o0, int32_t *b1, int32_t *o1) {
  const __m256i lut = lutc(), low = _mm256_set1_epi8(0x0f), zero = _mm256_setzero_si256();
  const uint64_t *q[2] = {q0, q1};
  __m256i SB[2][ND], SO[2][ND];
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < ND; ++j) SB[i][j] = SO[i][j] = zero;
  for (int64_t w0 = 0; w0 < words; w0 += 4 * 31) {
    const int64_t w1 = std::min(words, w0 + 4 * 31);
    __m256i B[2][ND], O[2][ND];
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < ND; ++j) B[i][j] = O[i][j] = zero;
    for (int64_t w = w0; w < w1; w += 4) {
      __m256i qm[2], qs[2];
      for (int i = 0; i < 2; ++i) {
        qm[i] = _mm256_loadu_si256((const __m256i *)(q[i] + w));
        qs[i] = _mm256_loadu_si256((const __m256i *)(q[i] + words + w));
      }
      for (int j = 0; j < ND; ++j) {
        const __m256i dm = _mm256_loadu_si256((const __m256i *)(d + j * 2 * words + w));
        const __m256i ds = _mm256_loadu_si256((const __m256i *)(d + j * 2 * words + words + w));
        for (int i = 0; i < 2; ++i) {
          const __m256i m = _mm256_and_si256(qm[i], dm);
          const __m256i o = _mm256_and_si256(m, _mm256_xor_si256(qs[i], ds));
          B[i][j] = _mm256_add_epi8(
              B[i][j], _mm256_add_epi8(_mm256_shuffle_epi8(lut, _mm256_and_si256(m, low)),
                                       _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(m, 4), low))));
          O[i][j] = _mm256_add_epi8(
              O[i][j], _mm256_add_epi8(_mm256_shuffle_epi8(lut, _mm256_and_si256(o, low)),
                                       _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(o, 4), low))));
        }
      }
    }
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < ND; ++j) {
        SB[i][j] = _mm256_add_epi64(SB[i][j], _mm256_sad_epu8(B[i][j], zero));
        SO[i][j] = _mm256_add_epi64(SO[i][j], _mm256_sad_epu8(O[i][j], zero));
      }
  }
  int32_t *bb[2] = {b0, b1}, *oo[2] = {o0, o1};
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < ND; ++j) {
      bb[i][j] = (int32_t)hsum_epi64_256(SB[i][j]);
      oo[i][j] = (int32_t)hsum_epi64_256(SO[i][j]);
    }
}
template <int ND>
TERNHD_AVX2 void counts2_v1(const uint64_t *q0, const uint64_t *q1, const uint64_t *db, int64_t nd, int64_t words,
                            int32_t *both0, int32_t *opp0, int32_t *both1, int32_t *opp1) {
  int64_t j = 0;
  for (; j + ND <= nd; j += ND)
    tile2_avx2<ND>(q0, q1, db + j * 2 * words, words, both0 + j, opp0 + j, both1 + j, opp1 + j);
  for (; j < nd; ++j) tile2_avx2<1>(q0, q1, db + j * 2 * words, words, both0 + j, opp0 + j, both1 + j, opp1 + j);
}

// V2: query nibble splits precomputed (qsplit: per query 4 streams of words: m_lo, m_hi, s_lo, s_hi);
// NQ queries x 1 row tile; row split once per step and shared.
TERNHD_AVX2 inline void split_query(const uint64_t *q, int64_t words, uint64_t *out) {
  const __m256i low = _mm256_set1_epi8(0x0f);
  for (int64_t w = 0; w < words; w += 4) {
    __m256i m = _mm256_loadu_si256((const __m256i *)(q + w)), s = _mm256_loadu_si256((const __m256i *)(q + words + w));
    _mm256_storeu_si256((__m256i *)(out + w), _mm256_and_si256(m, low));
    _mm256_storeu_si256((__m256i *)(out + words + w), _mm256_and_si256(_mm256_srli_epi16(m, 4), low));
    _mm256_storeu_si256((__m256i *)(out + 2 * words + w), _mm256_and_si256(s, low));
    _mm256_storeu_si256((__m256i *)(out + 3 * words + w), _mm256_and_si256(_mm256_srli_epi16(s, 4), low));
  }
}
template <int NQ, bool PF>
TERNHD_AVX2 inline void tileq_avx2(const uint64_t *qs, const uint64_t *d, int64_t words, int32_t *const *both,
                                   int32_t *const *opp, int64_t j) {
  const __m256i lut = lutc(), low = _mm256_set1_epi8(0x0f), zero = _mm256_setzero_si256();
  int64_t sb[NQ] = {}, so[NQ] = {};
  for (int64_t w0 = 0; w0 < words; w0 += 4 * 31) {
    const int64_t w1 = std::min(words, w0 + 4 * 31);
    __m256i B[NQ], O[NQ];
    for (int i = 0; i < NQ; ++i) B[i] = O[i] = zero;
    for (int64_t w = w0; w < w1; w += 4) {
      if (PF) {
        _mm_prefetch(reinterpret_cast<const char *>(d + 2 * words + 2 * w), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char *>(d + 2 * words + 2 * w + 8), _MM_HINT_T0);
      }
      const __m256i dm = _mm256_loadu_si256((const __m256i *)(d + w));
      const __m256i ds = _mm256_loadu_si256((const __m256i *)(d + words + w));
      const __m256i dml = _mm256_and_si256(dm, low), dmh = _mm256_and_si256(_mm256_srli_epi16(dm, 4), low);
      const __m256i dsl = _mm256_and_si256(ds, low), dsh = _mm256_and_si256(_mm256_srli_epi16(ds, 4), low);
      for (int i = 0; i < NQ; ++i) {
        const uint64_t *qi = qs + i * 4 * words + w;
        const __m256i ml = _mm256_and_si256(dml, _mm256_loadu_si256((const __m256i *)qi));
        const __m256i mh = _mm256_and_si256(dmh, _mm256_loadu_si256((const __m256i *)(qi + words)));
        const __m256i ol =
            _mm256_and_si256(ml, _mm256_xor_si256(dsl, _mm256_loadu_si256((const __m256i *)(qi + 2 * words))));
        const __m256i oh =
            _mm256_and_si256(mh, _mm256_xor_si256(dsh, _mm256_loadu_si256((const __m256i *)(qi + 3 * words))));
        B[i] = _mm256_add_epi8(B[i], _mm256_add_epi8(_mm256_shuffle_epi8(lut, ml), _mm256_shuffle_epi8(lut, mh)));
        O[i] = _mm256_add_epi8(O[i], _mm256_add_epi8(_mm256_shuffle_epi8(lut, ol), _mm256_shuffle_epi8(lut, oh)));
      }
    }
    for (int i = 0; i < NQ; ++i) {
      sb[i] += hsum_epi64_256(_mm256_sad_epu8(B[i], zero));
      so[i] += hsum_epi64_256(_mm256_sad_epu8(O[i], zero));
    }
  }
  for (int i = 0; i < NQ; ++i) {
    both[i][j] = (int32_t)sb[i];
    opp[i][j] = (int32_t)so[i];
  }
}
template <int NQ>
TERNHD_AVX2 void counts2_v2(const uint64_t *q0, const uint64_t *q1, const uint64_t *db, int64_t nd, int64_t words,
                            int32_t *both0, int32_t *opp0, int32_t *both1, int32_t *opp1) {
  static thread_local std::vector<uint64_t> buf;
  buf.resize(4 * 4 * words);
  const uint64_t *q[4] = {q0, q1, q0, q1};
  for (int i = 0; i < NQ; ++i) split_query(q[i], words, buf.data() + i * 4 * words);
  int32_t dummyb[2][256], dummyo[2][256];
  int32_t *b[4] = {both0, both1, dummyb[0], dummyb[1]}, *o[4] = {opp0, opp1, dummyo[0], dummyo[1]};
  for (int64_t j = 0; j < nd; ++j) tileq_avx2<NQ, false>(buf.data(), db + j * 2 * words, words, b, o, j);
}

template <int NQ, bool PF>
TERNHD_AVX2 void countsN(const uint64_t *const *q, const uint64_t *db, int64_t nd, int64_t words, int32_t *const *b,
                         int32_t *const *o) {
  static thread_local std::vector<uint64_t> buf;
  buf.resize(NQ * 4 * words);
  for (int i = 0; i < NQ; ++i) split_query(q[i], words, buf.data() + i * 4 * words);
  for (int64_t j = 0; j < nd; ++j) tileq_avx2<NQ, PF>(buf.data(), db + j * 2 * words, words, b, o, j);
}
using FN = void (*)(const uint64_t *const *, const uint64_t *, int64_t, int64_t, int32_t *const *, int32_t *const *);
template <int NQ>
void runN(const char *name, FN f, std::vector<uint64_t> &q, std::vector<uint64_t> &db, int64_t W, int64_t ND,
          int64_t NQT) {
  std::vector<int32_t> b(NQT * ND), o(NQT * ND), rb(NQT * ND), ro(NQT * ND);
  double best = 1e9;
  int iters = 1;
  for (int trial = 0; trial < 200; ++trial) {
    auto t0 = cpu_now();
    for (int it = 0; it < iters; ++it)
      for (int64_t i = 0; i < NQT; i += NQ) {
        const uint64_t *qq[NQ];
        int32_t *bb[NQ], *oo[NQ];
        for (int u = 0; u < NQ; ++u) {
          qq[u] = &q[(i + u) * 2 * W];
          bb[u] = &b[(i + u) * ND];
          oo[u] = &o[(i + u) * ND];
        }
        f(qq, db.data(), ND, W, bb, oo);
      }
    best = std::min(best, (cpu_now() - t0));
  }
  double dt = best;
  for (int64_t i = 0; i < NQT; ++i) counts_avx2(&q[i * 2 * W], db.data(), ND, W, &rb[i * ND], &ro[i * ND]);
  std::printf("%-10s %.2f Mpairs/s %s\n", name, iters * NQT * ND / dt / 1e6, (rb == b && ro == o) ? "ok" : "MISMATCH");
}

TERNHD_AVX2 TERNHD_INLINE void in4(const uint64_t *qm, const uint64_t *qs, const uint64_t *dm, const uint64_t *ds,
                                   int64_t k, __m256i &m, __m256i &o) {
  m = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(qm + 4 * k)),
                       _mm256_loadu_si256((const __m256i *)(dm + 4 * k)));
  o = _mm256_and_si256(m, _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(qs + 4 * k)),
                                           _mm256_loadu_si256((const __m256i *)(ds + 4 * k))));
}
TERNHD_AVX2 TERNHD_INLINE void csa(__m256i &h, __m256i &l, __m256i a, __m256i b, __m256i c) {
  const __m256i u = _mm256_xor_si256(a, b);
  h = _mm256_or_si256(_mm256_and_si256(a, b), _mm256_and_si256(u, c));
  l = _mm256_xor_si256(u, c);
}
TERNHD_AVX2 TERNHD_INLINE __m256i wpop(__m256i v, __m256i lut, __m256i low) {
  return _mm256_add_epi8(_mm256_shuffle_epi8(lut, _mm256_and_si256(v, low)),
                         _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(v, 4), low)));
}
TERNHD_AVX2 TERNHD_INLINE __m256i lutw(int w) {
  return _mm256_setr_epi8(0, w, w, 2 * w, w, 2 * w, 2 * w, 3 * w, w, 2 * w, 2 * w, 3 * w, 2 * w, 3 * w, 3 * w, 4 * w, 0,
                          w, w, 2 * w, w, 2 * w, 2 * w, 3 * w, w, 2 * w, 2 * w, 3 * w, 2 * w, 3 * w, 3 * w, 4 * w);
}
// Harley-Seal per pair: blocks of 15 / 7 vectors through carry-save adders, then weighted popcounts.
template <bool PF>
TERNHD_AVX2 void counts_hs(const uint64_t *q, const uint64_t *db, int64_t nd, int64_t words, int32_t *both,
                           int32_t *opp) {
  const uint64_t *qm = q, *qs = q + words;
  const __m256i zero = _mm256_setzero_si256(), low = _mm256_set1_epi8(0x0f);
  const __m256i l1 = lutw(1), l2 = lutw(2), l4 = lutw(4), l8 = lutw(8);
  const int64_t n = words / 4;
  for (int64_t j = 0; j < nd; ++j) {
    const uint64_t *dm = db + j * 2 * words, *ds = dm + words;
    const uint64_t *next = j + 1 < nd ? ds + words : dm;
    if (PF)
      for (int64_t w = 0; w < words; w += 8) {
        _mm_prefetch(reinterpret_cast<const char *>(next + w), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char *>(next + words + w), _MM_HINT_T0);
      }
    __m256i a1 = zero, a2 = zero;
    int64_t k = 0;
    for (; k + 15 <= n; k += 15) {
      __m256i om, oo, tm[7], to[7], x1m, x1o, x2m, x2o;
      in4(qm, qs, dm, ds, k, om, oo);
      for (int c = 0; c < 7; ++c) {
        in4(qm, qs, dm, ds, k + 1 + 2 * c, x1m, x1o);
        in4(qm, qs, dm, ds, k + 2 + 2 * c, x2m, x2o);
        csa(tm[c], om, om, x1m, x2m);
        csa(to[c], oo, oo, x1o, x2o);
      }
      __m256i fm[3], fo[3], twm = tm[0], two = to[0];
      for (int c = 0; c < 3; ++c) {
        csa(fm[c], twm, twm, tm[1 + 2 * c], tm[2 + 2 * c]);
        csa(fo[c], two, two, to[1 + 2 * c], to[2 + 2 * c]);
      }
      __m256i em, eo, fom, foo;
      csa(em, fom, fm[0], fm[1], fm[2]);
      csa(eo, foo, fo[0], fo[1], fo[2]);
      const __m256i cm = _mm256_add_epi8(_mm256_add_epi8(wpop(om, l1, low), wpop(twm, l2, low)),
                                         _mm256_add_epi8(wpop(fom, l4, low), wpop(em, l8, low)));
      const __m256i co = _mm256_add_epi8(_mm256_add_epi8(wpop(oo, l1, low), wpop(two, l2, low)),
                                         _mm256_add_epi8(wpop(foo, l4, low), wpop(eo, l8, low)));
      a1 = _mm256_add_epi64(a1, _mm256_sad_epu8(cm, zero));
      a2 = _mm256_add_epi64(a2, _mm256_sad_epu8(co, zero));
    }
    for (; k + 7 <= n; k += 7) {
      __m256i om, oo, tm[3], to[3], x1m, x1o, x2m, x2o;
      in4(qm, qs, dm, ds, k, om, oo);
      for (int c = 0; c < 3; ++c) {
        in4(qm, qs, dm, ds, k + 1 + 2 * c, x1m, x1o);
        in4(qm, qs, dm, ds, k + 2 + 2 * c, x2m, x2o);
        csa(tm[c], om, om, x1m, x2m);
        csa(to[c], oo, oo, x1o, x2o);
      }
      __m256i fm, fo, twm, two;
      csa(fm, twm, tm[0], tm[1], tm[2]);
      csa(fo, two, to[0], to[1], to[2]);
      const __m256i cm = _mm256_add_epi8(_mm256_add_epi8(wpop(om, l1, low), wpop(twm, l2, low)), wpop(fm, l4, low));
      const __m256i co = _mm256_add_epi8(_mm256_add_epi8(wpop(oo, l1, low), wpop(two, l2, low)), wpop(fo, l4, low));
      a1 = _mm256_add_epi64(a1, _mm256_sad_epu8(cm, zero));
      a2 = _mm256_add_epi64(a2, _mm256_sad_epu8(co, zero));
    }
    __m256i cm = zero, co = zero;
    for (; k < n; ++k) {
      __m256i m, o;
      in4(qm, qs, dm, ds, k, m, o);
      cm = _mm256_add_epi8(cm, wpop(m, l1, low));
      co = _mm256_add_epi8(co, wpop(o, l1, low));
    }
    a1 = _mm256_add_epi64(a1, _mm256_sad_epu8(cm, zero));
    a2 = _mm256_add_epi64(a2, _mm256_sad_epu8(co, zero));
    both[j] = static_cast<int32_t>(hsum_epi64_256(a1));
    opp[j] = static_cast<int32_t>(hsum_epi64_256(a2));
  }
}

TERNHD_AVX2 void counts_half(const uint64_t *q, const uint64_t *db, int64_t nd, int64_t words, int32_t *both,
                             int32_t *opp) {
  const uint64_t *qm = q;
  const __m256i zero = _mm256_setzero_si256();
  for (int64_t j = 0; j < nd; ++j) {
    const uint64_t *dm = db + j * 2 * words;
    __m256i a1 = zero;
    for (int64_t w = 0; w < words; w += 8) {
      __m256i c1 = zero;
      for (int h = 0; h < 8; h += 4) {
        __m256i m = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(qm + w + h)),
                                     _mm256_loadu_si256((const __m256i *)(dm + w + h)));
        c1 = _mm256_add_epi8(c1, popcnt256(m));
      }
      a1 = _mm256_add_epi64(a1, _mm256_sad_epu8(c1, zero));
    }
    both[j] = static_cast<int32_t>(hsum_epi64_256(a1));
    opp[j] = 0;
  }
}

using F2 = void (*)(const uint64_t *, const uint64_t *, const uint64_t *, int64_t, int64_t, int32_t *, int32_t *,
                    int32_t *, int32_t *);
int main(int argc, char **argv) {
  const int64_t W = argc > 1 ? atoi(argv[1]) : 64, ND = argc > 2 ? atoi(argv[2]) : 256, NQ = 64;
  std::mt19937_64 rng(1);
  std::vector<uint64_t> db(ND * 2 * W), q(NQ * 2 * W);
  for (auto &x : db) x = rng();
  for (auto &x : q) x = rng();
  for (int64_t r = 0; r < ND; ++r)
    for (int64_t w = 0; w < W; ++w) db[r * 2 * W + W + w] &= db[r * 2 * W + w];
  struct V {
    const char *name;
    F2 f;
  } vs[] = {{"generic", counts2_generic<counts_avx2>},
            {"v1_nd1", counts2_v1<1>},
            {"v1_nd2", counts2_v1<2>},
            {"v1_nd3", counts2_v1<3>},
            {"v1_nd4", counts2_v1<4>},
            {"v2_nq2", counts2_v2<2>},
            {"v2_nq4(x2work)", counts2_v2<4>}};
  std::vector<int32_t> rb(2 * ND), ro(2 * ND), b(2 * ND), o(2 * ND);
  for (int rep = 0; rep < 3; ++rep) {
    runN<2>("N2", countsN<2, false>, q, db, W, ND, NQ);
    runN<4>("N4", countsN<4, false>, q, db, W, ND, NQ);
    runN<1>(
        "gen1",
        [](const uint64_t *const *q, const uint64_t *db, int64_t nd, int64_t w, int32_t *const *b, int32_t *const *o) {
          counts_avx2(q[0], db, nd, w, b[0], o[0]);
        },
        q, db, W, ND, NQ);
    runN<4>("N4pf", countsN<4, true>, q, db, W, ND, NQ);
    runN<1>(
        "half(wrong)",
        [](const uint64_t *const *q, const uint64_t *db, int64_t nd, int64_t w, int32_t *const *b, int32_t *const *o) {
          counts_half(q[0], db, nd, w, b[0], o[0]);
        },
        q, db, W, ND, NQ);
    runN<2>(
        "v1nd2",
        [](const uint64_t *const *q, const uint64_t *db, int64_t nd, int64_t w, int32_t *const *b, int32_t *const *o) {
          counts2_v1<2>(q[0], q[1], db, nd, w, b[0], o[0], b[1], o[1]);
        },
        q, db, W, ND, NQ);
    runN<2>(
        "v1nd4",
        [](const uint64_t *const *q, const uint64_t *db, int64_t nd, int64_t w, int32_t *const *b, int32_t *const *o) {
          counts2_v1<4>(q[0], q[1], db, nd, w, b[0], o[0], b[1], o[1]);
        },
        q, db, W, ND, NQ);
    runN<1>(
        "hs",
        [](const uint64_t *const *q, const uint64_t *db, int64_t nd, int64_t w, int32_t *const *b, int32_t *const *o) {
          counts_hs<false>(q[0], db, nd, w, b[0], o[0]);
        },
        q, db, W, ND, NQ);
    runN<1>(
        "hspf",
        [](const uint64_t *const *q, const uint64_t *db, int64_t nd, int64_t w, int32_t *const *b, int32_t *const *o) {
          counts_hs<true>(q[0], db, nd, w, b[0], o[0]);
        },
        q, db, W, ND, NQ);
  }
  for (int rep = 0; rep < 0; ++rep)
    for (auto &v : vs) {
      auto t0 = cpu_now();
      int iters = 20;
      for (int it = 0; it < iters; ++it)
        for (int64_t i = 0; i < NQ; i += 2)
          v.f(&q[i * 2 * W], &q[(i + 1) * 2 * W], db.data(), ND, W, b.data(), o.data(), b.data() + ND, o.data() + ND);
      double dt = (cpu_now() - t0);
      counts2_generic<counts_scalar>(&q[(NQ - 2) * 2 * W], &q[(NQ - 1) * 2 * W], db.data(), ND, W, rb.data(), ro.data(),
                                     rb.data() + ND, ro.data() + ND);
      bool ok = rb == b && ro == o;
      std::printf("%-10s %.2f Mpairs/s %s\n", v.name, iters * NQ * ND / dt / 1e6, ok ? "ok" : "MISMATCH");
    }
}
