// Packed ternary similarity kernels (contract in similarity.hpp): plane conversion, the pair-count
// kernels (scalar, AVX2, AVX-512 with a register-blocked AVX-512 tile), all pairs and top-k.
// The plane words interleave the trits of two packed words (a fixed permutation of positions, the
// same for every row), which leaves dot, hamming and cosine unchanged.
#include "dispatch.hpp"  // TERNHD_X86, TERNHD_NEON

#if TERNHD_X86
#include <immintrin.h>
#endif
#if TERNHD_NEON
#include <arm_neon.h>
#endif
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <utility>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "bits.hpp"
#include "similarity.hpp"
#include "threads.hpp"

namespace ternhd {

// ----------------------------------------------------------------------------- planes
namespace {
constexpr uint64_t kEven = 0x5555555555555555ULL;
constexpr uint64_t kOdd = 0xAAAAAAAAAAAAAAAAULL;

inline int64_t plane_words(int64_t nbytes) { return std::max<int64_t>(8, ceil_div(ceil_div(nbytes, 16), 8) * 8); }

// Converts `rows` packed rows (nbytes each) to planes of `words` words (every word written,
// padding included) and their norms. Returns non-zero when code 0b11 occurs.
uint64_t convert_rows(const uint8_t *p, int64_t rows, int64_t nbytes, int64_t words, uint64_t *dst, int32_t *norms) {
  uint64_t bad = 0;
  const int64_t full = nbytes / 16;
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t *src = p + r * nbytes;
    uint64_t *mask = dst + r * 2 * words, *sign = mask + words;
    int64_t norm = 0;
    auto put = [&](int64_t k, uint64_t w0, uint64_t w1) {
      bad |= (w0 & (w0 >> 1) & kEven) | (w1 & (w1 >> 1) & kEven);
      const uint64_t m = ((w0 | (w0 >> 1)) & kEven) | (((w1 | (w1 >> 1)) & kEven) << 1);
      mask[k] = m;
      sign[k] = ((w0 >> 1) & kEven) | (w1 & kOdd);
      norm += popcount64(m);
    };
    for (int64_t k = 0; k < full; ++k) {
      uint64_t w[2];
      std::memcpy(w, src + 16 * k, 16);
      put(k, w[0], w[1]);
    }
    int64_t k = full;
    if (nbytes % 16) {
      uint64_t w[2] = {0, 0};
      std::memcpy(w, src + 16 * full, static_cast<size_t>(nbytes % 16));
      put(k++, w[0], w[1]);
    }
    for (; k < words; ++k) mask[k] = sign[k] = 0;
    norms[r] = static_cast<int32_t>(norm);
  }
  return bad;
}

// Converts a whole packed matrix. Returns false when code 0b11 occurs.
bool convert_all(const uint8_t *p, int64_t rows, int64_t nbytes, Planes &out) {
  out.rows = rows;
  out.nbytes = nbytes;
  out.words = plane_words(nbytes);
  out.data.reset(static_cast<uint64_t *>(
      std::malloc(sizeof(uint64_t) * static_cast<size_t>(std::max<int64_t>(1, rows * 2 * out.words)))));
  if (!out.data) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  // A large index on transparent huge pages (before the first write): a one-query scan streams all
  // of it, and 4 KiB pages cost it about 5-10% (measured on the 256 MB planes of 100,000 x 10,000).
  const size_t bytes = sizeof(uint64_t) * static_cast<size_t>(rows * 2 * out.words);
  if (bytes >= (size_t{4} << 20)) {
    const uintptr_t a = reinterpret_cast<uintptr_t>(out.data.get()), lo = (a + 4095) & ~uintptr_t{4095};
    madvise(reinterpret_cast<void *>(lo), a + bytes - lo, MADV_HUGEPAGE);  // advice only: failure is harmless
  }
#endif
  out.capacity = rows;
  out.norms.assign(static_cast<size_t>(rows), 0);
  std::atomic<bool> ok{true};
  parallel_for(ceil_div(rows, 256), [&](int64_t blk) {
    const int64_t r0 = blk * 256, n = std::min<int64_t>(256, rows - r0);
    if (convert_rows(p + r0 * nbytes, n, nbytes, out.words, out.data.get() + r0 * 2 * out.words, out.norms.data() + r0))
      ok.store(false);
  });
  return ok.load();
}

// Where database rows come from: planes converted once (Index), or packed rows converted one
// cache block at a time into a per-task buffer that is then hot in L2 (the function path: no
// N-row plane copy, no page faults on a fresh N-row buffer).
struct DbSource {
  const Planes *planes = nullptr;
  const uint8_t *packed = nullptr;
  int64_t rows = 0, nbytes = 0, words = 0;
  std::atomic<bool> *bad = nullptr;  // set when a converted block holds code 0b11

  static DbSource of(const Planes &p) { return DbSource{&p, nullptr, p.rows, p.nbytes, p.words, nullptr}; }
  static DbSource of(const uint8_t *packed, int64_t rows, int64_t nbytes, std::atomic<bool> *bad) {
    return DbSource{nullptr, packed, rows, nbytes, plane_words(nbytes), bad};
  }

  struct Block {
    std::vector<uint64_t> buf;
    std::vector<int32_t> nbuf;
    const uint64_t *rows = nullptr;
    const int32_t *norms = nullptr;
  };
  void load(int64_t d0, int64_t nd, Block &b) const {
    if (planes) {
      b.rows = planes->row(d0);
      b.norms = planes->norms.data() + d0;
      return;
    }
    b.buf.resize(static_cast<size_t>(nd * 2 * words));
    b.nbuf.resize(static_cast<size_t>(nd));
    if (convert_rows(packed + d0 * nbytes, nd, nbytes, words, b.buf.data(), b.nbuf.data())) bad->store(true);
    b.rows = b.buf.data();
    b.norms = b.nbuf.data();
  }
};
}  // namespace

// ----------------------------------------------------------------------------- pair counts
// counts(q, db, nd, words, both, opp): one query row against nd consecutive database rows.
void counts_scalar(const uint64_t *q, const uint64_t *db, int64_t nd, int64_t words, int32_t *both, int32_t *opp) {
  const uint64_t *qm = q, *qs = q + words;
  for (int64_t j = 0; j < nd; ++j) {
    const uint64_t *dm = db + j * 2 * words, *ds = dm + words;
    int64_t c1 = 0, c2 = 0;
    for (int64_t w = 0; w < words; ++w) {
      uint64_t b = qm[w] & dm[w];
      c1 += popcount64(b);
      c2 += popcount64(b & (qs[w] ^ ds[w]));
    }
    both[j] = static_cast<int32_t>(c1);
    opp[j] = static_cast<int32_t>(c2);
  }
}

#if TERNHD_X86
TERNHD_AVX2 static inline __m256i popcnt256(__m256i v) {
  const __m256i lut =
      _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
  const __m256i low = _mm256_set1_epi8(0x0f);
  __m256i lo = _mm256_shuffle_epi8(lut, _mm256_and_si256(v, low));
  __m256i hi = _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(v, 4), low));
  return _mm256_add_epi8(lo, hi);  // per-byte counts (<= 8)
}

TERNHD_AVX2 static inline int64_t hsum_epi64_256(__m256i v) {
  __m128i s = _mm_add_epi64(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  return _mm_cvtsi128_si64(s) + _mm_extract_epi64(s, 1);
}

// One query streams the database once: memory-bound. Each row is two short streams (mask, sign:
// 20 cache lines each at D = 10,000) that the hardware prefetcher picks up too late, so the loop
// prefetches the same lines of the next row (measured 1.4-1.9x on a Zen 3 guest, D = 10,000).
TERNHD_AVX2 void counts_avx2(const uint64_t *q, const uint64_t *db, int64_t nd, int64_t words, int32_t *both,
                             int32_t *opp) {
  const uint64_t *qm = q, *qs = q + words;
  const __m256i zero = _mm256_setzero_si256();
  for (int64_t j = 0; j < nd; ++j) {
    const uint64_t *dm = db + j * 2 * words, *ds = dm + words;
    const uint64_t *next = j + 1 < nd ? ds + words : dm;  // the last row prefetches itself
    __m256i a1 = zero, a2 = zero;
    for (int64_t w = 0; w < words; w += 8) {  // words is a multiple of 8: two ymm per step
      _mm_prefetch(reinterpret_cast<const char *>(next + w), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char *>(next + words + w), _MM_HINT_T0);
      __m256i c1 = zero, c2 = zero;
      for (int h = 0; h < 8; h += 4) {
        __m256i m = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(qm + w + h)),
                                     _mm256_loadu_si256((const __m256i *)(dm + w + h)));
        __m256i x = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(qs + w + h)),
                                     _mm256_loadu_si256((const __m256i *)(ds + w + h)));
        c1 = _mm256_add_epi8(c1, popcnt256(m));
        c2 = _mm256_add_epi8(c2, popcnt256(_mm256_and_si256(m, x)));
      }
      a1 = _mm256_add_epi64(a1, _mm256_sad_epu8(c1, zero));
      a2 = _mm256_add_epi64(a2, _mm256_sad_epu8(c2, zero));
    }
    both[j] = static_cast<int32_t>(hsum_epi64_256(a1));
    opp[j] = static_cast<int32_t>(hsum_epi64_256(a2));
  }
}

TERNHD_AVX512 void counts_avx512(const uint64_t *q, const uint64_t *db, int64_t nd, int64_t words, int32_t *both,
                                 int32_t *opp) {
  const uint64_t *qm = q, *qs = q + words;
  for (int64_t j = 0; j < nd; ++j) {
    const uint64_t *dm = db + j * 2 * words, *ds = dm + words;
    const uint64_t *next = j + 1 < nd ? ds + words : dm;  // the last row prefetches itself
    __m512i a1 = _mm512_setzero_si512(), a2 = _mm512_setzero_si512();
    for (int64_t w = 0; w < words; w += 8) {  // the next row's lines, as in counts_avx2
      _mm_prefetch(reinterpret_cast<const char *>(next + w), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char *>(next + words + w), _MM_HINT_T0);
      __m512i m = _mm512_and_si512(_mm512_loadu_si512(qm + w), _mm512_loadu_si512(dm + w));
      // m & (qs ^ ds): truth table 0x60 for (A=m, B=qs, C=ds)
      __m512i o = _mm512_ternarylogic_epi64(m, _mm512_loadu_si512(qs + w), _mm512_loadu_si512(ds + w), 0x60);
      a1 = _mm512_add_epi64(a1, _mm512_popcnt_epi64(m));
      a2 = _mm512_add_epi64(a2, _mm512_popcnt_epi64(o));
    }
    both[j] = static_cast<int32_t>(_mm512_reduce_add_epi64(a1));
    opp[j] = static_cast<int32_t>(_mm512_reduce_add_epi64(a2));
  }
}
#endif  // TERNHD_X86

#if TERNHD_NEON
// Per-byte popcounts (vcntq_u8) of 4 vectors (8 words) add up in uint8 lanes (<= 32), then widen
// into uint32 accumulators.
void counts_neon(const uint64_t *q, const uint64_t *db, int64_t nd, int64_t words, int32_t *both, int32_t *opp) {
  const uint8_t *qm = reinterpret_cast<const uint8_t *>(q), *qs = reinterpret_cast<const uint8_t *>(q + words);
  for (int64_t j = 0; j < nd; ++j) {
    const uint8_t *dm = reinterpret_cast<const uint8_t *>(db + j * 2 * words);
    const uint8_t *ds = reinterpret_cast<const uint8_t *>(db + j * 2 * words + words);
    uint32x4_t a1 = vdupq_n_u32(0), a2 = vdupq_n_u32(0);
    for (int64_t b = 0; b < 8 * words; b += 64) {  // words is a multiple of 8: four vectors per step
      uint8x16_t c1 = vdupq_n_u8(0), c2 = vdupq_n_u8(0);
      for (int h = 0; h < 64; h += 16) {
        const uint8x16_t m = vandq_u8(vld1q_u8(qm + b + h), vld1q_u8(dm + b + h));
        const uint8x16_t x = veorq_u8(vld1q_u8(qs + b + h), vld1q_u8(ds + b + h));
        c1 = vaddq_u8(c1, vcntq_u8(m));
        c2 = vaddq_u8(c2, vcntq_u8(vandq_u8(m, x)));
      }
      a1 = vpadalq_u16(a1, vpaddlq_u8(c1));
      a2 = vpadalq_u16(a2, vpaddlq_u8(c2));
    }
    both[j] = static_cast<int32_t>(vaddvq_u32(a1));
    opp[j] = static_cast<int32_t>(vaddvq_u32(a2));
  }
}
#endif  // TERNHD_NEON

namespace {
#if TERNHD_X86
// Register-blocked tile: NQ query rows x ND database rows. Every loaded database chunk serves NQ
// queries and every query chunk ND database rows, so loads per pair drop from 4 to 2/ND + 2/NQ.
template <int NQ, int ND>
TERNHD_AVX512 inline void tile_avx512(const uint64_t *const *q, const uint64_t *d, int64_t words, int32_t *const *both,
                                      int32_t *const *opp) {
  __m512i B[NQ][ND], O[NQ][ND];
  for (int i = 0; i < NQ; ++i)
    for (int j = 0; j < ND; ++j) B[i][j] = O[i][j] = _mm512_setzero_si512();
  for (int64_t w = 0; w < words; w += 8) {
    __m512i qm[NQ], qs[NQ];
    for (int i = 0; i < NQ; ++i) {
      qm[i] = _mm512_loadu_si512(q[i] + w);
      qs[i] = _mm512_loadu_si512(q[i] + words + w);
    }
    for (int j = 0; j < ND; ++j) {
      const __m512i dm = _mm512_loadu_si512(d + j * 2 * words + w);
      const __m512i ds = _mm512_loadu_si512(d + j * 2 * words + words + w);
      for (int i = 0; i < NQ; ++i) {
        const __m512i m = _mm512_and_si512(qm[i], dm);
        B[i][j] = _mm512_add_epi64(B[i][j], _mm512_popcnt_epi64(m));
        // m & (qs ^ ds): truth table 0x60 for (A=m, B=qs, C=ds)
        O[i][j] = _mm512_add_epi64(O[i][j], _mm512_popcnt_epi64(_mm512_ternarylogic_epi64(m, qs[i], ds, 0x60)));
      }
    }
  }
  for (int i = 0; i < NQ; ++i)
    for (int j = 0; j < ND; ++j) {
      both[i][j] = static_cast<int32_t>(_mm512_reduce_add_epi64(B[i][j]));
      opp[i][j] = static_cast<int32_t>(_mm512_reduce_add_epi64(O[i][j]));
    }
}

// Two query rows against nd database rows.
TERNHD_AVX512 void counts2_avx512(const uint64_t *q0, const uint64_t *q1, const uint64_t *db, int64_t nd, int64_t words,
                                  int32_t *both0, int32_t *opp0, int32_t *both1, int32_t *opp1) {
  constexpr int ND = 4;  // 2 x 4 tile: 24 zmm registers live (2 and 3 measured the same)
  const uint64_t *q[2] = {q0, q1};
  int64_t j = 0;
  for (; j + ND <= nd; j += ND) {
    int32_t *b[2] = {both0 + j, both1 + j}, *o[2] = {opp0 + j, opp1 + j};
    tile_avx512<2, ND>(q, db + j * 2 * words, words, b, o);
  }
  for (; j < nd; ++j) {
    int32_t *b[2] = {both0 + j, both1 + j}, *o[2] = {opp0 + j, opp1 + j};
    tile_avx512<2, 1>(q, db + j * 2 * words, words, b, o);
  }
}
#endif  // TERNHD_X86

using Counts2Fn = void (*)(const uint64_t *, const uint64_t *, const uint64_t *, int64_t, int64_t, int32_t *, int32_t *,
                           int32_t *, int32_t *);

template <CountsFn F>
void counts2_generic(const uint64_t *q0, const uint64_t *q1, const uint64_t *db, int64_t nd, int64_t words,
                     int32_t *both0, int32_t *opp0, int32_t *both1, int32_t *opp1) {
  F(q0, db, nd, words, both0, opp0);
  F(q1, db, nd, words, both1, opp1);
}

constexpr Variants<Counts2Fn> kCounts2{counts2_generic<counts_scalar>, TERNHD_X86_ONLY(counts2_generic<counts_avx2>),
                                       TERNHD_X86_ONLY(counts2_avx512), TERNHD_NEON_ONLY(counts2_generic<counts_neon>)};

inline float cosine_of(int32_t dot, int32_t na, int32_t nb) {
  if (na == 0 || nb == 0) return 0.0f;
  return static_cast<float>(static_cast<double>(dot) / std::sqrt(static_cast<double>(na) * static_cast<double>(nb)));
}

constexpr int64_t kDbBlock = 256;    // database rows per cache block
constexpr int64_t kQueryBlock = 64;  // query rows per task

// ----------------------------------------------------------------------------- all pairs
// Tasks are (database block, query block) pairs. When the database is converted on the fly, each
// task takes as many queries as keeps every thread busy, so a block is converted few times.
void pairwise_impl(const Planes &a, const DbSource &b, Metric metric, void *out, Simd simd) {
  const int64_t M = a.rows, N = b.rows, W = a.words;
  const CountsFn counts = pick(kCounts, simd);
  const Counts2Fn counts2 = pick(kCounts2, simd);
  const int64_t ndb = ceil_div(N, kDbBlock);
  const int64_t want = 4 * static_cast<int64_t>(num_threads());
  const int64_t qb =
      b.planes ? kQueryBlock
               : std::max<int64_t>(2, ceil_div(M, std::max<int64_t>(1, ceil_div(want, std::max<int64_t>(ndb, 1)))));
  const int64_t nqb = ceil_div(M, qb);
  parallel_for(nqb * ndb, [&](int64_t task) {
    const int64_t db0 = (task / nqb) * kDbBlock, q0 = (task % nqb) * qb;
    const int64_t nd = std::min(kDbBlock, N - db0), q1 = std::min(M, q0 + qb);
    DbSource::Block blk;
    b.load(db0, nd, blk);
    int32_t both2[2][kDbBlock], opp2[2][kDbBlock];
    for (int64_t i0 = q0; i0 < q1; i0 += 2) {
      const int64_t nq = std::min<int64_t>(2, q1 - i0);
      if (nq == 2)
        counts2(a.row(i0), a.row(i0 + 1), blk.rows, nd, W, both2[0], opp2[0], both2[1], opp2[1]);
      else
        counts(a.row(i0), blk.rows, nd, W, both2[0], opp2[0]);
      for (int64_t u = 0; u < nq; ++u) {
        const int64_t i = i0 + u;
        const int32_t *both = both2[u], *opp = opp2[u];
        const int32_t na = a.norms[i];
        for (int64_t j = 0; j < nd; ++j) {
          const int64_t o = i * N + db0 + j;
          const int32_t nb = blk.norms[j];
          switch (metric) {
            case Metric::kDot: static_cast<int32_t *>(out)[o] = both[j] - 2 * opp[j]; break;
            case Metric::kHamming: static_cast<int32_t *>(out)[o] = na + nb - 2 * both[j] + opp[j]; break;
            case Metric::kCosine: static_cast<float *>(out)[o] = cosine_of(both[j] - 2 * opp[j], na, nb); break;
          }
        }
      }
    }
  });
}

// ----------------------------------------------------------------------------- top-k
// A candidate is better when its score is higher, ties to the lower index. Hamming scores are
// stored negated so that "higher is better" holds for every metric.
struct Cand {
  double score;
  int64_t index;
};
inline bool better(const Cand &x, const Cand &y) {
  return x.score > y.score || (x.score == y.score && x.index < y.index);
}
// Min-heap of the k best so far: the worst candidate sits at the top.
struct WorseFirst {
  bool operator()(const Cand &x, const Cand &y) const { return better(x, y); }
};

// Top-k of query rows [qbegin, qbegin + M) (outputs indexed from qbegin).
void topk_chunk(const Planes &q, int64_t qbegin, int64_t M, const DbSource &db, int64_t k, Metric metric, float *out_f,
                int32_t *out_i, int64_t *out_idx, Simd simd) {
  const int64_t N = db.rows, W = q.words;
  const CountsFn counts = pick(kCounts, simd);
  const Counts2Fn counts2 = pick(kCounts2, simd);
  const int64_t nt = num_threads();
  // Split the database into R ranges and the queries into blocks; each task keeps its own heaps
  // and walks its range one cache block at a time (converted once per task when packed).
  const int64_t R = std::max<int64_t>(1, std::min<int64_t>(nt, ceil_div(N, kDbBlock)));
  const int64_t range = ceil_div(N, R);
  const int64_t qb = std::max<int64_t>(1, ceil_div(M, std::max<int64_t>(1, nt / R)));
  const int64_t nqb = ceil_div(M, qb);
  std::vector<Cand> heaps(static_cast<size_t>(R * M * k));
  std::vector<int64_t> sizes(static_cast<size_t>(R * M), 0);
  parallel_for(R * nqb, [&](int64_t task) {
    const int64_t r = task / nqb, q0 = (task % nqb) * qb, q1 = std::min(M, q0 + qb);
    const int64_t lo = r * range, hi = std::min(N, lo + range);
    DbSource::Block blk;
    int32_t both2[2][kDbBlock], opp2[2][kDbBlock];
    double rinv[kDbBlock];  // cosine: 1 / sqrt(|row|), 0 for an all-zero row
    for (int64_t d0 = lo; d0 < hi; d0 += kDbBlock) {
      const int64_t nd = std::min(kDbBlock, hi - d0);
      db.load(d0, nd, blk);
      if (metric == Metric::kCosine)
        for (int64_t j = 0; j < nd; ++j)
          rinv[j] = blk.norms[j] ? 1.0 / std::sqrt(static_cast<double>(blk.norms[j])) : 0.0;
      for (int64_t i0 = q0; i0 < q1; i0 += 2) {
        const int64_t nq = std::min<int64_t>(2, q1 - i0);
        if (nq == 2)
          counts2(q.row(qbegin + i0), q.row(qbegin + i0 + 1), blk.rows, nd, W, both2[0], opp2[0], both2[1], opp2[1]);
        else
          counts(q.row(qbegin + i0), blk.rows, nd, W, both2[0], opp2[0]);
        for (int64_t u = 0; u < nq; ++u) {
          const int64_t i = i0 + u;
          const int32_t *both = both2[u], *opp = opp2[u];
          Cand *h = heaps.data() + (r * M + i) * k;
          int64_t &sz = sizes[r * M + i];
          const int32_t na = q.norms[qbegin + i];
          const double qinv = na ? 1.0 / std::sqrt(static_cast<double>(na)) : 0.0;
          for (int64_t j = 0; j < nd; ++j) {
            const int32_t nb = blk.norms[j];
            double s;
            switch (metric) {
              case Metric::kDot: s = both[j] - 2 * opp[j]; break;
              case Metric::kHamming: s = -static_cast<double>(na + nb - 2 * both[j] + opp[j]); break;
              default:
                // The exact cosine (square root, divide, float rounding: about a tenth of the search
                // time) only for rows that may enter the heap. The estimate below is within 1e-7 of
                // it (|cosine| <= 1: float rounding 6e-8, double error 1e-15), so a row 1e-6 below
                // the current worst cannot enter, and the result is unchanged.
                if (sz == k && (both[j] - 2 * opp[j]) * qinv * rinv[j] < h[0].score - 1e-6) continue;
                s = cosine_of(both[j] - 2 * opp[j], na, nb);
                break;
            }
            if (sz == k && !(s >= h[0].score)) continue;  // cheap reject before building a candidate
            Cand c{s, d0 + j};
            if (sz < k) {
              h[sz++] = c;
              std::push_heap(h, h + sz, WorseFirst());
            } else if (better(c, h[0])) {
              std::pop_heap(h, h + k, WorseFirst());
              h[k - 1] = c;
              std::push_heap(h, h + k, WorseFirst());
            }
          }
        }
      }
    }
  });
  // Merge the R partial heaps of each query, best first.
  parallel_for(
      M,
      [&](int64_t i) {
        std::vector<Cand> all;
        all.reserve(static_cast<size_t>(R * k));
        for (int64_t r = 0; r < R; ++r) {
          const Cand *h = heaps.data() + (r * M + i) * k;
          all.insert(all.end(), h, h + sizes[r * M + i]);
        }
        std::partial_sort(all.begin(), all.begin() + k, all.end(), better);
        const int64_t o = (qbegin + i) * k;
        for (int64_t j = 0; j < k; ++j) {
          const Cand &c = all[j];
          out_idx[o + j] = c.index;
          if (metric == Metric::kCosine)
            out_f[o + j] = static_cast<float>(c.score);
          else
            out_i[o + j] = static_cast<int32_t>(metric == Metric::kHamming ? -c.score : c.score);
        }
      },
      64);
}

// Queries go in chunks so that the per-task heaps stay bounded (chunk * k * threads candidates).
void topk_impl(const Planes &q, const DbSource &db, int64_t k, Metric metric, void *scores, int64_t *out_idx,
               Simd simd) {
  check_topk(k, db.rows);
  float *out_f = metric == Metric::kCosine ? static_cast<float *>(scores) : nullptr;
  int32_t *out_i = metric == Metric::kCosine ? nullptr : static_cast<int32_t *>(scores);
  const int64_t chunk = std::max<int64_t>(kQueryBlock, (int64_t{1} << 22) / std::max<int64_t>(1, k * num_threads()));
  for (int64_t q0 = 0; q0 < q.rows; q0 += chunk)
    topk_chunk(q, q0, std::min(chunk, q.rows - q0), db, k, metric, out_f, out_i, out_idx, simd);
}

}  // namespace

// ----------------------------------------------------------------------------- public API
Metric parse_metric(const std::string &m) {
  if (m == "dot") return Metric::kDot;
  if (m == "cosine") return Metric::kCosine;
  if (m == "hamming") return Metric::kHamming;
  throw std::invalid_argument("metric: expected 'dot', 'cosine' or 'hamming', got '" + m + "'");
}

void check_packed_width(int64_t nbytes, const char *name) {
  if (nbytes > (int64_t{1} << 28))  // counts are int32: at most 4 trits per byte
    throw std::invalid_argument(std::string(name) + ": packed rows of " + std::to_string(nbytes) +
                                " bytes exceed the supported 268435456");
}

void check_topk(int64_t k, int64_t db_rows) {
  if (k < 1) throw std::invalid_argument("k: must be at least 1");
  if (k > db_rows)
    throw std::invalid_argument("k: " + std::to_string(k) + " exceeds the database size " + std::to_string(db_rows));
}

namespace {
[[noreturn]] void invalid_code(const char *name) {
  throw std::invalid_argument(std::string(name) + ": contains the invalid 2-bit code 0b11");
}
}  // namespace

Planes to_planes(PackedRows p, const char *name) {
  check_packed_width(p.nbytes, name);
  Planes out;
  if (!convert_all(p.data, p.rows, p.nbytes, out)) invalid_code(name);
  return out;
}

void pairwise(const Planes &a, const Planes &b, Metric metric, void *out, Simd simd) {
  pairwise_impl(a, DbSource::of(b), metric, out, simd);
}

void pairwise(const Planes &a, PackedRows b, Metric metric, void *out, Simd simd, const char *b_name) {
  check_packed_width(b.nbytes, b_name);
  std::atomic<bool> bad{false};
  pairwise_impl(a, DbSource::of(b.data, b.rows, b.nbytes, &bad), metric, out, simd);
  if (bad.load()) invalid_code(b_name);
}

void topk(const Planes &q, const Planes &db, int64_t k, Metric metric, void *scores, int64_t *indices, Simd simd) {
  topk_impl(q, DbSource::of(db), k, metric, scores, indices, simd);
}

void topk(const Planes &q, PackedRows db, int64_t k, Metric metric, void *scores, int64_t *indices, Simd simd,
          const char *db_name) {
  check_packed_width(db.nbytes, db_name);
  std::atomic<bool> bad{false};
  topk_impl(q, DbSource::of(db.data, db.rows, db.nbytes, &bad), k, metric, scores, indices, simd);
  if (bad.load()) invalid_code(db_name);
}

// ----------------------------------------------------------------------------- append / keep
void append_rows(Planes &dst, PackedRows src, const char *name) {
  if (src.nbytes != dst.nbytes)
    throw std::invalid_argument(std::string(name) + ": packed row width " + std::to_string(src.nbytes) +
                                " does not match the index's " + std::to_string(dst.nbytes));
  if (src.rows == 0) return;
  const int64_t W = dst.words, need = dst.rows + src.rows;
  if (need > dst.capacity) {
    const int64_t cap = std::max(need, dst.capacity + dst.capacity / 2);
    void *p = std::realloc(dst.data.get(), sizeof(uint64_t) * static_cast<size_t>(cap * 2 * W));
    if (!p) throw std::bad_alloc();
    (void)dst.data.release();
    dst.data.reset(static_cast<uint64_t *>(p));
    dst.capacity = cap;
  }
  std::vector<int32_t> norms(static_cast<size_t>(src.rows));
  uint64_t *base = dst.data.get() + dst.rows * 2 * W;
  std::atomic<bool> ok{true};
  parallel_for(ceil_div(src.rows, 256), [&](int64_t blk) {
    const int64_t r0 = blk * 256, n = std::min<int64_t>(256, src.rows - r0);
    if (convert_rows(src.data + r0 * src.nbytes, n, src.nbytes, W, base + r0 * 2 * W, norms.data() + r0))
      ok.store(false);
  });
  if (!ok.load()) invalid_code(name);  // rows stays unchanged: the converted rows are not counted
  dst.norms.insert(dst.norms.end(), norms.begin(), norms.end());
  dst.rows = need;
}

void keep_rows(Planes &p, const uint8_t *keep) {
  const int64_t W = p.words;
  int64_t out = 0;
  for (int64_t r = 0; r < p.rows; ++r) {
    if (!keep[r]) continue;
    if (out != r) {
      std::memmove(p.data.get() + out * 2 * W, p.data.get() + r * 2 * W, sizeof(uint64_t) * 2 * W);
      p.norms[out] = p.norms[r];
    }
    ++out;
  }
  p.rows = out;
  p.norms.resize(static_cast<size_t>(out));
}

// ----------------------------------------------------------------------------- asymmetric scores
// Table method (a "four Russians" product). Queries go in blocks of kFloatLanes = 16, laid out
// position-major: qt[k][l] = query l's value at plane position k (plane word k / 64, bit k % 64).
// Plane bit b of word w holds 2-bit slot p = b/2 of the group's first (b even) or second (b odd)
// packed 64-bit word, and slot p holds trit 4 (p / 4) + 3 - p % 4 (first trit in the high bits).
// A quarter word (16 positions) is 4 groups of 4 positions; for every ternary pattern e = d0 + 3 d1
// + 9 d2 + 27 d3 of a group (digit d_j: 0 for t = 0, 1 for +1, 2 for -1) the table holds
//   tab[g][e][l] = sum over j of qt[4g + j][l] * t_j,
// so a row adds one 64-byte entry per group: one offset serves 4 positions x 16 queries. Signed
// 81-entry tables halve the lookups of separate 16-entry pos and neg tables; a quarter word's
// tables (20.7 KiB) stay in L1. Every variant builds the tables in the same order and adds in the
// same order (per row: quarter words in order, groups 0..3), so all paths give the same floats.
void permute_queries(const float *q, int64_t nq, int64_t dim, int64_t words, float *qt) {
  for (int64_t k = 0; k < words; ++k)
    for (int64_t b = 0; b < 64; ++b) {
      const int64_t p = b / 2, t = 64 * k + (b & 1 ? 32 : 0) + 4 * (p / 4) + 3 - p % 4;
      float *dst = qt + (64 * k + b) * kFloatLanes;
      for (int64_t l = 0; l < kFloatLanes; ++l) dst[l] = l < nq && t < dim ? q[l * dim + t] : 0.0f;
    }
}

namespace {
constexpr int64_t kL = kFloatLanes, kE = kFloatPatterns;

// Pattern index of a group from its pos and neg nibbles: kTrits[pn | nn << 4] = sum_j 3^j (bit j of
// pn) + 2 * 3^j (bit j of nn) (pn & nn = 0 in valid rows; other pairs never occur).
struct Trits {
  uint16_t v[256];
};
constexpr Trits make_trits() {
  Trits t{};
  for (int x = 0; x < 256; ++x) {
    int s = 0, p = 1;
    for (int j = 0; j < 4; ++j, p *= 3) s += ((x >> j) & 1) * p + ((x >> (4 + j)) & 1) * 2 * p;
    t.v[x] = static_cast<uint16_t>(s);
  }
  return t;
}
constexpr Trits kTrits = make_trits();
}  // namespace

void float_offsets_scalar(const uint64_t *mask, const uint64_t *sign, int64_t words, int shift, uint64_t *out,
                          int64_t stride) {
  for (int64_t w = 0; w < words; ++w) {
    const uint64_t pos = mask[w] & ~sign[w], neg = mask[w] & sign[w];
    for (int s = 0; s < 4; ++s) {  // quarter word s
      uint64_t v = 0;
      for (int g = 0; g < 4; ++g) {
        const int sh = 16 * s + 4 * g;
        const uint64_t e = kTrits.v[((pos >> sh) & 0xF) | (((neg >> sh) & 0xF) << 4)];
        v |= ((static_cast<uint64_t>(g) * kE + e) << shift) << (16 * g);
      }
      out[w * stride + s] = v;
    }
  }
}

#if TERNHD_X86
// The 16 nibbles of pos and neg spread to bytes, mapped by pshufb to their pattern digits, widened
// to 16 bits, plus the group base, shifted: 16 offsets in float_offsets order.
TERNHD_AVX2 void float_offsets_avx2(const uint64_t *mask, const uint64_t *sign, int64_t words, int shift, uint64_t *out,
                                    int64_t stride) {
  const __m128i lo4 = _mm_set1_epi8(0x0F);
  const __m128i t1 = _mm_setr_epi8(0, 1, 3, 4, 9, 10, 12, 13, 27, 28, 30, 31, 36, 37, 39, 40);  // sum 3^j bit j
  const __m128i t2 = _mm_add_epi8(t1, t1);
  const __m256i base = _mm256_setr_epi16(0, 81, 162, 243, 0, 81, 162, 243, 0, 81, 162, 243, 0, 81, 162, 243);
  const __m128i sh = _mm_cvtsi32_si128(shift);
  const auto nibbles = [&](uint64_t x) {
    const __m128i v = _mm_cvtsi64_si128(static_cast<long long>(x));
    return _mm_unpacklo_epi8(_mm_and_si128(v, lo4), _mm_and_si128(_mm_srli_epi16(v, 4), lo4));
  };
  for (int64_t w = 0; w < words; ++w) {
    const uint64_t pos = mask[w] & ~sign[w], neg = mask[w] & sign[w];
    const __m128i e = _mm_add_epi8(_mm_shuffle_epi8(t1, nibbles(pos)), _mm_shuffle_epi8(t2, nibbles(neg)));
    const __m256i o = _mm256_sll_epi16(_mm256_add_epi16(_mm256_cvtepu8_epi16(e), base), sh);
    _mm256_storeu_si256(reinterpret_cast<__m256i *>(out + w * stride), o);
  }
}
#endif  // TERNHD_X86

// Entry e is built from the entry with e's lowest non-zero digit cleared, plus (digit 1) or minus
// (digit 2) the query value at that digit's position: tab[0] = 0, then digits 3, 2, 1, 0 (each step
// reads entries the previous steps wrote). One fixed order for every variant.
void float_tables_scalar(const float *qt, float *tab) {
  for (int g = 0; g < 4; ++g) {
    const float *q = qt + 4 * g * kL;
    float *t = tab + g * kE * kL;
    for (int64_t l = 0; l < kL; ++l) t[l] = 0.0f;
    for (int j = 3, p = 27; j >= 0; --j, p /= 3)
      for (int e = 0; e < kE; e += 3 * p)
        for (int64_t l = 0; l < kL; ++l) {
          t[(e + p) * kL + l] = t[e * kL + l] + q[j * kL + l];
          t[(e + 2 * p) * kL + l] = t[e * kL + l] - q[j * kL + l];
        }
  }
}

void float_word_scalar(const float *tab, const uint64_t *offs, int64_t nd, float *c) {
  const char *base = reinterpret_cast<const char *>(tab);
  for (int64_t r = 0; r < nd; ++r) {
    float *cr = c + r * kL;
    for (int g = 0; g < 4; ++g) {
      const float *t = reinterpret_cast<const float *>(base + ((offs[4 * r] >> (16 * g)) & 0xFFFF));
      for (int64_t l = 0; l < kL; ++l) cr[l] += t[l];
    }
  }
}

#if TERNHD_X86
TERNHD_AVX2 void float_tables_avx2(const float *qt, float *tab) {
  for (int g = 0; g < 4; ++g) {
    float *t = tab + g * kE * kL;
    for (int h = 0; h < 2; ++h) {
      float *th = t + 8 * h;
      _mm256_store_ps(th, _mm256_setzero_ps());
      for (int j = 3, p = 27; j >= 0; --j, p /= 3) {
        const __m256 q = _mm256_load_ps(qt + (4 * g + j) * kL + 8 * h);
        for (int e = 0; e < kE; e += 3 * p) {
          const __m256 a = _mm256_load_ps(th + e * kL);
          _mm256_store_ps(th + (e + p) * kL, _mm256_add_ps(a, q));
          _mm256_store_ps(th + (e + 2 * p) * kL, _mm256_sub_ps(a, q));
        }
      }
    }
  }
}

namespace {
// R rows against one quarter word's tables: 4 lookups of two ymm a row. R = 2 (4 independent add
// chains) measured fastest on Zen 3: R = 1, 3, 4 and 6 were 3-10% slower, R = 4 and up spill. The
// offsets come 4 to a 64-bit load and are shifted out.
template <int R>
TERNHD_AVX2 TERNHD_INLINE void rows_avx2(const char *tab, const uint64_t *o, float *c) {
  __m256 a[R][2];
  uint64_t x[R];
  for (int r = 0; r < R; ++r) {
    a[r][0] = _mm256_load_ps(c + r * kL);
    a[r][1] = _mm256_load_ps(c + r * kL + 8);
    x[r] = o[4 * r];
  }
  for (int g = 0; g < 4; ++g)
    for (int r = 0; r < R; ++r) {
      const float *t = reinterpret_cast<const float *>(tab + (x[r] & 0xFFFF));
      x[r] >>= 16;
      a[r][0] = _mm256_add_ps(a[r][0], _mm256_load_ps(t));
      a[r][1] = _mm256_add_ps(a[r][1], _mm256_load_ps(t + 8));
    }
  for (int r = 0; r < R; ++r) {
    _mm256_store_ps(c + r * kL, a[r][0]);
    _mm256_store_ps(c + r * kL + 8, a[r][1]);
  }
}
}  // namespace

TERNHD_AVX2 void float_word_avx2(const float *tab, const uint64_t *offs, int64_t nd, float *c) {
  const char *t = reinterpret_cast<const char *>(tab);
  int64_t r = 0;
  for (; r + 2 <= nd; r += 2) rows_avx2<2>(t, offs + r * 4, c + r * kL);
  for (; r < nd; ++r) rows_avx2<1>(t, offs + r * 4, c + r * kL);
}
#endif  // TERNHD_X86

// Few queries (m < kFloatTableMin): the table kernel would leave most of its 16 lanes empty, so each
// row is scored directly against up to 4 queries in the plane order (permute_query), the lane masks
// of each 8 trits made once for them.
void permute_query(const float *q, int64_t dim, int64_t words, float *qp) {
  for (int64_t k = 0; k < words; ++k)
    for (int64_t b = 0; b < 64; ++b) {
      const int64_t p = b / 2, t = 64 * k + (b & 1 ? 32 : 0) + 4 * (p / 4) + 3 - p % 4;
      qp[64 * k + b] = t < dim ? q[t] : 0.0f;
    }
}

void float_dots_scalar(const float *qp, int64_t nq, const uint64_t *row, int64_t words, float *out) {
  const uint64_t *m = row, *s = row + words;
  for (int64_t i = 0; i < nq; ++i) {
    const float *qi = qp + i * words * 64;
    float acc = 0.0f;
    for (int64_t w = 0; w < words; ++w) {
      const float *q = qi + 64 * w;
      for (uint64_t pos = m[w] & ~s[w]; pos; pos &= pos - 1) acc += q[__builtin_ctzll(pos)];
      for (uint64_t neg = m[w] & s[w]; neg; neg &= neg - 1) acc -= q[__builtin_ctzll(neg)];
    }
    out[i] = acc;
  }
}

#if TERNHD_X86
namespace {
TERNHD_AVX2 inline float hsum256_ps(__m256 a) {
  __m128 r = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  r = _mm_add_ps(r, _mm_movehl_ps(r, r));
  r = _mm_add_ss(r, _mm_movehdup_ps(r));
  return _mm_cvtss_f32(r);
}

// NQ queries against one row: the lane masks of each 8 trits are made once and serve NQ queries.
template <int NQ>
TERNHD_AVX2 inline void float_dots_avx2_t(const float *qp, const uint64_t *row, int64_t words, float *out) {
  const uint64_t *m = row, *s = row + words;
  // Lane l of group g (g = 0..3 of a 32-bit half) takes bit 8g + l to bit 31.
  const __m256i sh[4] = {_mm256_setr_epi32(31, 30, 29, 28, 27, 26, 25, 24),
                         _mm256_setr_epi32(23, 22, 21, 20, 19, 18, 17, 16),
                         _mm256_setr_epi32(15, 14, 13, 12, 11, 10, 9, 8), _mm256_setr_epi32(7, 6, 5, 4, 3, 2, 1, 0)};
  const __m256i top = _mm256_set1_epi32(static_cast<int>(0x80000000u));
  constexpr int A = NQ == 1 ? 4 : 2;  // accumulators per query (independent add chains)
  __m256 acc[NQ][A];
  for (int i = 0; i < NQ; ++i)
    for (int a = 0; a < A; ++a) acc[i][a] = _mm256_setzero_ps();
  const int64_t qstride = words * 64;
  for (int64_t w = 0; w < words; ++w) {
    if (!m[w]) continue;
    for (int h = 0; h < 2; ++h) {
      const __m256i m32 = _mm256_set1_epi32(static_cast<int>(static_cast<uint32_t>(m[w] >> (32 * h))));
      const __m256i s32 = _mm256_set1_epi32(static_cast<int>(static_cast<uint32_t>(s[w] >> (32 * h))));
      const int64_t off = 64 * w + 32 * h;
      for (int g = 0; g < 4; ++g) {
        const __m256 keep = _mm256_castsi256_ps(_mm256_srai_epi32(_mm256_sllv_epi32(m32, sh[g]), 31));
        const __m256 sign = _mm256_castsi256_ps(_mm256_and_si256(_mm256_sllv_epi32(s32, sh[g]), top));
        for (int i = 0; i < NQ; ++i) {
          const __m256 v = _mm256_and_ps(_mm256_loadu_ps(qp + i * qstride + off + 8 * g), keep);
          acc[i][g % A] = _mm256_add_ps(acc[i][g % A], _mm256_xor_ps(v, sign));
        }
      }
    }
  }
  for (int i = 0; i < NQ; ++i) {
    __m256 t = acc[i][0];
    for (int a = 1; a < A; ++a) t = _mm256_add_ps(t, acc[i][a]);
    out[i] = hsum256_ps(t);
  }
}

template <int NQ>
TERNHD_AVX512 inline void float_dots_avx512_t(const float *qp, const uint64_t *row, int64_t words, float *out) {
  const uint64_t *m = row, *s = row + words;
  constexpr int A = NQ == 1 ? 4 : 2;
  __m512 acc[NQ][A];
  for (int i = 0; i < NQ; ++i)
    for (int a = 0; a < A; ++a) acc[i][a] = _mm512_setzero_ps();
  const int64_t qstride = words * 64;
  for (int64_t w = 0; w < words; ++w) {
    const uint64_t pos = m[w] & ~s[w], neg = m[w] & s[w];
    for (int c = 0; c < 4; ++c) {
      const __mmask16 pk = static_cast<__mmask16>(pos >> (16 * c)), nk = static_cast<__mmask16>(neg >> (16 * c));
      for (int i = 0; i < NQ; ++i) {
        const __m512 q = _mm512_loadu_ps(qp + i * qstride + 64 * w + 16 * c);
        __m512 &a = acc[i][c % A];
        a = _mm512_mask_sub_ps(_mm512_mask_add_ps(a, pk, a, q), nk, a, q);
      }
    }
  }
  for (int i = 0; i < NQ; ++i) {
    __m512 t = acc[i][0];
    for (int a = 1; a < A; ++a) t = _mm512_add_ps(t, acc[i][a]);
    out[i] = _mm512_reduce_add_ps(t);
  }
}
}  // namespace

TERNHD_AVX2 void float_dots_avx2(const float *qp, int64_t nq, const uint64_t *row, int64_t words, float *out) {
  switch (nq) {
    case 1: float_dots_avx2_t<1>(qp, row, words, out); break;
    case 2: float_dots_avx2_t<2>(qp, row, words, out); break;
    case 3: float_dots_avx2_t<3>(qp, row, words, out); break;
    default: float_dots_avx2_t<4>(qp, row, words, out); break;
  }
}

TERNHD_AVX512 void float_dots_avx512(const float *qp, int64_t nq, const uint64_t *row, int64_t words, float *out) {
  switch (nq) {
    case 1: float_dots_avx512_t<1>(qp, row, words, out); break;
    case 2: float_dots_avx512_t<2>(qp, row, words, out); break;
    case 3: float_dots_avx512_t<3>(qp, row, words, out); break;
    default: float_dots_avx512_t<4>(qp, row, words, out); break;
  }
}
#endif  // TERNHD_X86

namespace {
constexpr int64_t kFloatRows = 256;       // database rows per task of the few-query path
constexpr int64_t kFloatTaskRows = 1024;  // at most, per task of the table path (each table serves them all)

// n floats at a 64-byte boundary (no cache-line splits on the 64-byte table entries; the AVX-512
// variant's aligned loads), portable: a vector with room to slide.
struct AlignedFloats {
  std::vector<float> buf;
  float *ptr;
  explicit AlignedFloats(int64_t n) : buf(static_cast<size_t>(n + 16)) { ptr = align64(buf.data()); }
  float *get() const { return ptr; }
  static float *align64(float *p) {
    const uintptr_t a = reinterpret_cast<uintptr_t>(p);
    return p + ((64 - a % 64) % 64) / sizeof(float);
  }
};

// A task's sums: per thread, reused by its next tasks (no fresh pages to fault in per task).
float *task_sums(int64_t n) {
  thread_local std::vector<float> buf;
  if (buf.size() < static_cast<size_t>(n + 16)) buf.resize(static_cast<size_t>(n + 16));
  return AlignedFloats::align64(buf.data());
}

void check_query_dim(int64_t dim, const DbSource &db) {
  if (dim < 1 || dim > 4 * db.nbytes)
    throw std::invalid_argument("queries: " + std::to_string(dim) + " values per row, the rows hold " +
                                std::to_string(4 * db.nbytes) + " trits");
}

// The asymmetric product; sink(b, d0, nd, c, norms) takes query block b's sums c for rows d0..d0+nd
// (nd x kL: row d0 + r, lane l = query kL * b + l at c[r * kL + l]), from any thread; d0 is a
// multiple of kFloatRows.
template <typename Sink>
void float_run(const float *q, int64_t m, int64_t dim, const DbSource &db, Simd simd, const Sink &sink) {
  check_query_dim(dim, db);
  const int64_t N = db.rows, W = db.words;
  if (m == 0 || N == 0) return;
  if (m < kFloatTableMin) {
    std::vector<float> qp(static_cast<size_t>(m * W * 64));
    for (int64_t i = 0; i < m; ++i) permute_query(q + i * dim, dim, W, qp.data() + i * W * 64);
    const FloatDotsFn dots = pick(kFloatDots, simd);
    parallel_for(ceil_div(N, kFloatRows), [&](int64_t rb) {
      const int64_t d0 = rb * kFloatRows, nd = std::min(kFloatRows, N - d0);
      DbSource::Block blk;
      db.load(d0, nd, blk);
      float *c = task_sums(nd * kL);
      for (int64_t i0 = 0; i0 < m; i0 += kFloatQueryTile) {
        const int64_t nq = std::min(kFloatQueryTile, m - i0);
        for (int64_t r = 0; r < nd; ++r) {
          // The row 4 ahead, a line at a time: the kernel's rate is the rate rows arrive at.
          if (r + 4 < nd)
            for (int64_t o = 0; o < 2 * W; o += 8) __builtin_prefetch(blk.rows + (r + 4) * 2 * W + o);
          dots(qp.data() + i0 * W * 64, nq, blk.rows + r * 2 * W, W, c + r * kL + i0);
        }
      }
      sink(0, d0, nd, c, blk.norms);
    });
    return;
  }
  // Words past the last query value add exact zeros: skipped.
  const int64_t Wq = std::min(W, ceil_div(dim, 64));
  const int64_t nqb = ceil_div(m, kL), plane = Wq * 64 * kL, wtab = 4 * kE * kL;
  AlignedFloats qt(nqb * plane);
  parallel_for(nqb, [&](int64_t b) {
    permute_queries(q + b * kL * dim, std::min(kL, m - b * kL), dim, Wq, qt.get() + b * plane);
  });
  const FloatTablesFn build = pick(kFloatTables, simd);
  const FloatWordFn word = pick(kFloatWord, simd);
  const FloatOffsetsFn offsets = pick(kFloatOffsets, simd);
  // Tasks of rt rows (kFloatTaskRows, fewer when that leaves under 4 tasks a thread) and, when the
  // row tasks are still few, a share of the query blocks.
  const int64_t threads = num_threads();
  const int64_t rt =
      std::min(kFloatTaskRows, std::max(kFloatRows, ceil_div(ceil_div(N, 4 * threads), kFloatRows) * kFloatRows));
  const int64_t nrb = ceil_div(N, rt), nqc = std::min(nqb, ceil_div(2 * threads, nrb));
  const int64_t per = ceil_div(nqb, nqc);
  parallel_for(nrb * nqc, [&](int64_t task) {
    const int64_t d0 = (task / nqc) * rt, nd = std::min(rt, N - d0);
    const int64_t b0 = (task % nqc) * per, b1 = std::min(nqb, b0 + per);
    if (b0 >= b1) return;
    DbSource::Block blk;
    db.load(d0, nd, blk);
    // The rows' table offsets, once per task for all its query blocks: offs[w][r][4] (FloatOffsetsFn).
    thread_local std::vector<uint64_t> offs;
    offs.resize(static_cast<size_t>(Wq * nd * 4));
    for (int64_t r = 0; r < nd; ++r)
      offsets(blk.rows + r * 2 * W, blk.rows + r * 2 * W + W, Wq, kTableShift, offs.data() + r * 4, nd * 4);
    // One buffer: a block's sums (nd x kL), then the tables of the current quarter word (20.7 KiB,
    // built per task from qt and used for all nd rows: tables kept for all blocks and words are 5x
    // the bytes of qt and, read from L3 or memory in the kernel's random order, cost more).
    float *c = task_sums(nd * kL + wtab), *tab = c + nd * kL;
    for (int64_t b = b0; b < b1; ++b) {
      std::fill(c, c + nd * kL, 0.0f);
      for (int64_t w = 0; w < Wq; ++w)
        for (int64_t qw = 0; qw < 4; ++qw) {
          build(qt.get() + b * plane + (64 * w + 16 * qw) * kL, tab);
          word(tab, offs.data() + w * nd * 4 + qw, nd, c);
        }
      sink(b, d0, nd, c, blk.norms);
    }
  });
}

void float_scores_impl(const float *q, int64_t m, int64_t dim, const DbSource &db, float *out, Simd simd) {
  const int64_t N = db.rows;
  float_run(q, m, dim, db, simd, [&](int64_t b, int64_t d0, int64_t nd, const float *c, const int32_t *) {
    for (int64_t l = 0; l < std::min(kL, m - b * kL); ++l) {
      float *dst = out + (b * kL + l) * N + d0;
      for (int64_t r = 0; r < nd; ++r) dst[r] = c[r * kL + l];
    }
  });
}

// A candidate of the float top-k. Order: higher score first (NaN as the lowest), ties to the lower
// row: a strict total order, so the heap and sort below are well defined for any input.
struct FloatCand {
  float score;
  int64_t row;
};
TERNHD_INLINE bool float_better(const FloatCand &x, const FloatCand &y) {
  const float a = std::isnan(x.score) ? -INFINITY : x.score, b = std::isnan(y.score) ? -INFINITY : y.score;
  return a > b || (a == b && x.row < y.row);
}

void float_topk_chunk(const float *q, int64_t m, int64_t dim, const DbSource &db, int64_t k, Metric metric,
                      float *scores, int64_t *indices, Simd simd) {
  const int64_t N = db.rows, nrb = ceil_div(N, kFloatRows), kk = std::min(k, kFloatRows);
  std::vector<double> qnorm(static_cast<size_t>(m), 0.0);
  if (metric == Metric::kCosine)
    for (int64_t i = 0; i < m; ++i) {
      double ss = 0;
      for (int64_t t = 0; t < dim; ++t) ss += double(q[i * dim + t]) * double(q[i * dim + t]);
      qnorm[static_cast<size_t>(i)] = std::sqrt(ss);
    }
  // Each kFloatRows segment's best min(k, rows) per query, best first: cand[(segment * m + i) * kk + j].
  std::vector<FloatCand> cand(static_cast<size_t>(nrb * m * kk));
  float_run(q, m, dim, db, simd, [&](int64_t b, int64_t d0, int64_t nd, const float *c, const int32_t *norms) {
    const auto better = [](const FloatCand &x, const FloatCand &y) { return float_better(x, y); };  // inlined
    thread_local std::vector<FloatCand> heap;
    thread_local std::vector<double> root, rinv;  // sqrt of the rows' non-zero counts, its inverse (0 for 0)
    heap.reserve(static_cast<size_t>(kk));
    if (metric == Metric::kCosine) {
      root.resize(static_cast<size_t>(nd));
      rinv.resize(static_cast<size_t>(nd));
      for (int64_t r = 0; r < nd; ++r) {
        root[static_cast<size_t>(r)] = std::sqrt(static_cast<double>(norms[r]));
        rinv[static_cast<size_t>(r)] = norms[r] ? 1.0 / root[static_cast<size_t>(r)] : 0.0;
      }
    }
    for (int64_t s0 = 0; s0 < nd; s0 += kFloatRows) {  // segments of kFloatRows rows: one list each
      const int64_t ns = std::min(kFloatRows, nd - s0), keep = std::min(k, ns), seg = (d0 + s0) / kFloatRows;
      for (int64_t l = 0; l < std::min(kL, m - b * kL); ++l) {
        const int64_t i = b * kL + l;
        heap.clear();
        FloatCand worst{0.0f, 0};
        const double qn = qnorm[static_cast<size_t>(i)], qinv = qn > 0 ? 1.0 / qn : 0.0;
        for (int64_t r = s0; r < s0 + ns; ++r) {
          float s = c[r * kL + l];
          if (metric == Metric::kCosine) {
            // As in topk_chunk: the divide only for rows that may enter the heap. |s| <= 1 up to the
            // float32 sums' rounding, so the estimate is within 1e-7 (1 + |worst|) of the exact
            // value; a NaN estimate is never rejected here.
            if (static_cast<int64_t>(heap.size()) == keep &&
                static_cast<double>(s) * qinv * rinv[static_cast<size_t>(r)] <
                    static_cast<double>(worst.score) - 1e-6 * (1.0 + std::fabs(static_cast<double>(worst.score))))
              continue;
            const double den = qn * root[static_cast<size_t>(r)];
            s = den > 0 ? static_cast<float>(static_cast<double>(s) / den) : 0.0f;
          }
          const FloatCand x{s, d0 + r};
          if (static_cast<int64_t>(heap.size()) < keep) {
            heap.push_back(x);
            std::push_heap(heap.begin(), heap.end(), better);  // the worst on top
            if (static_cast<int64_t>(heap.size()) == keep) worst = heap.front();
          } else if (better(x, worst)) {  // most rows stop here
            std::pop_heap(heap.begin(), heap.end(), better);
            heap.back() = x;
            std::push_heap(heap.begin(), heap.end(), better);
            worst = heap.front();
          }
        }
        std::sort_heap(heap.begin(), heap.end(), better);
        std::copy(heap.begin(), heap.end(), cand.begin() + (seg * m + i) * kk);
      }
    }
  });
  parallel_for(
      m,
      [&](int64_t i) {
        std::vector<FloatCand> all;
        all.reserve(static_cast<size_t>(nrb * kk));
        for (int64_t rb = 0; rb < nrb; ++rb) {
          const int64_t n = std::min(k, std::min(kFloatRows, N - rb * kFloatRows));
          const FloatCand *src = cand.data() + (rb * m + i) * kk;
          all.insert(all.end(), src, src + n);
        }
        std::partial_sort(all.begin(), all.begin() + k, all.end(), float_better);
        for (int64_t j = 0; j < k; ++j) {
          scores[i * k + j] = all[static_cast<size_t>(j)].score;
          indices[i * k + j] = all[static_cast<size_t>(j)].row;
        }
      },
      16);
}
}  // namespace

void float_scores(const float *q, int64_t m, int64_t dim, const Planes &db, float *out, Simd simd) {
  float_scores_impl(q, m, dim, DbSource::of(db), out, simd);
}

void float_scores(const float *q, int64_t m, int64_t dim, PackedRows db, float *out, Simd simd, const char *db_name) {
  check_packed_width(db.nbytes, db_name);
  std::atomic<bool> bad{false};
  float_scores_impl(q, m, dim, DbSource::of(db.data, db.rows, db.nbytes, &bad), out, simd);
  if (bad.load()) invalid_code(db_name);
}

namespace {
// Queries in chunks: the candidate lists of a chunk (segments x queries x min(k, 256)) stay near
// 64 MiB whatever the database and batch sizes (at least 16 queries, one table block, a chunk).
void float_topk_impl(const float *q, int64_t m, int64_t dim, const DbSource &db, int64_t k, Metric metric,
                     float *scores, int64_t *indices, Simd simd) {
  if (metric == Metric::kHamming)
    throw std::invalid_argument("metric: 'hamming' needs ternary queries (float queries: 'dot' or 'cosine')");
  check_topk(k, db.rows);
  check_query_dim(dim, db);
  const int64_t per_query = ceil_div(db.rows, kFloatRows) * std::min(k, kFloatRows) * 16;  // bytes
  const int64_t mc = std::max(kL, (int64_t{64} << 20) / per_query / kL * kL);
  for (int64_t i0 = 0; i0 < m; i0 += mc) {
    const int64_t n = std::min(mc, m - i0);
    float_topk_chunk(q + i0 * dim, n, dim, db, k, metric, scores + i0 * k, indices + i0 * k, simd);
  }
}
}  // namespace

void float_topk(const float *q, int64_t m, int64_t dim, const Planes &db, int64_t k, Metric metric, float *scores,
                int64_t *indices, Simd simd) {
  float_topk_impl(q, m, dim, DbSource::of(db), k, metric, scores, indices, simd);
}

void float_topk(const float *q, int64_t m, int64_t dim, PackedRows db, int64_t k, Metric metric, float *scores,
                int64_t *indices, Simd simd, const char *db_name) {
  check_packed_width(db.nbytes, db_name);
  std::atomic<bool> bad{false};
  float_topk_impl(q, m, dim, DbSource::of(db.data, db.rows, db.nbytes, &bad), k, metric, scores, indices, simd);
  if (bad.load()) invalid_code(db_name);
}

}  // namespace ternhd
