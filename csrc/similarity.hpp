// Packed ternary similarity: dot, cosine and Hamming distance, all pairs and streamed top-k.
//
// Kernels run on an internal bit-plane layout: each 16 packed bytes (64 trits) become one 64-bit
// `mask` word (non-zero) and one `sign` word (negative). For rows a, b:
//   both = popcount(ma & mb)                  (positions where both are non-zero)
//   opp  = popcount(ma & mb & (sa ^ sb))      (... with opposite signs)
//   dot = both - 2*opp,  hamming = |a| + |b| - 2*both + opp,  cosine = dot / sqrt(|a| |b|)
// (cosine 0 when a row is all zero). Scores are int32 for dot and hamming, float32 for cosine.
// Top-k lists are best first (highest dot / cosine, lowest hamming), ties to the lower index.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "dispatch.hpp"

namespace ternhd {

enum class Metric : int { kDot = 0, kCosine = 1, kHamming = 2 };
Metric parse_metric(const std::string &name);  // "dot" | "cosine" | "hamming"; else std::invalid_argument

// Packed rows as they come from the caller: rows x nbytes bytes, C order.
struct PackedRows {
  const uint8_t *data = nullptr;
  int64_t rows = 0;
  int64_t nbytes = 0;
};

struct FreeDelete {
  void operator()(void *p) const { std::free(p); }
};

// Packed rows converted once to the bit-plane layout (the C++ face of _core.PlanesIndex).
struct Planes {
  int64_t rows = 0;
  int64_t nbytes = 0;                            // packed bytes per row
  int64_t words = 0;                             // 64-bit words per plane, a multiple of 8 (one zmm)
  int64_t capacity = 0;                          // rows allocated in data (append_rows grows it)
  std::unique_ptr<uint64_t[], FreeDelete> data;  // malloc'ed; per row: mask[words] then sign[words]
  std::vector<int32_t> norms;                    // non-zeros per row
  const uint64_t *row(int64_t r) const { return data.get() + r * 2 * words; }
};

// Throws std::invalid_argument ("<name>: ...") when rows are wider than the int32 counts allow.
void check_packed_width(int64_t nbytes, const char *name);
// Converts packed rows (threaded). Throws std::invalid_argument ("<name>: ...") on a too-wide row
// or the code 0b11.
Planes to_planes(PackedRows p, const char *name);
// Converts packed rows of the planes' width and appends them (amortized: capacity grows 1.5x, by
// realloc). Throws std::invalid_argument ("<name>: ...") on a width mismatch or the code 0b11
// (the planes are then unchanged).
void append_rows(Planes &dst, PackedRows src, const char *name);
// Keeps the rows whose keep[r] is non-zero, in order (compaction in place).
void keep_rows(Planes &p, const uint8_t *keep);

// The per-pair counts (both, opp) of one query row against nd database rows: the SIMD kernel.
using CountsFn = void (*)(const uint64_t *q, const uint64_t *db, int64_t nd, int64_t words, int32_t *both,
                          int32_t *opp);
void counts_scalar(const uint64_t *, const uint64_t *, int64_t, int64_t, int32_t *, int32_t *);
void counts_avx2(const uint64_t *, const uint64_t *, int64_t, int64_t, int32_t *, int32_t *);
void counts_avx512(const uint64_t *, const uint64_t *, int64_t, int64_t, int32_t *, int32_t *);
void counts_neon(const uint64_t *, const uint64_t *, int64_t, int64_t, int32_t *, int32_t *);
constexpr Variants<CountsFn> kCounts{counts_scalar, TERNHD_X86_ONLY(counts_avx2), TERNHD_X86_ONLY(counts_avx512),
                                     TERNHD_NEON_ONLY(counts_neon)};

// All pairs: out is (a.rows, b.rows), int32 or float32 (cosine). The packed form converts the
// database one cache block at a time (no full copy); b_name names it in errors (row width, 0b11).
void pairwise(const Planes &a, const Planes &b, Metric metric, void *out, Simd simd);
void pairwise(const Planes &a, PackedRows b, Metric metric, void *out, Simd simd, const char *b_name = "b");

// Throws std::invalid_argument ("k: ...") unless 1 <= k <= db_rows.
void check_topk(int64_t k, int64_t db_rows);

// Top-k: scores (q.rows, k), int32 or float32 (cosine), and int64 indices (q.rows, k).
void topk(const Planes &q, const Planes &db, int64_t k, Metric metric, void *scores, int64_t *indices, Simd simd);
void topk(const Planes &q, PackedRows db, int64_t k, Metric metric, void *scores, int64_t *indices, Simd simd,
          const char *db_name = "database");

// Asymmetric scores: float32 queries against ternary rows, q . t = sum of q where t = +1 minus the
// sum where t = -1 (float32 accumulation). Batches of kFloatTableMin or more queries use signed
// 81-entry tables per 4 positions (similarity.cpp); every variant of that kernel gives the same floats.
constexpr int64_t kFloatLanes = 16;     // queries per block
constexpr int64_t kFloatPatterns = 81;  // ternary patterns of a group of 4 positions
// Writes nq <= 16 queries q (nq, dim) position-major into qt (words * 64 positions x 16 lanes, plane
// order, zeros past dim and past nq).
void permute_queries(const float *q, int64_t nq, int64_t dim, int64_t words, float *qt);
// Batches of fewer than kFloatTableMin queries: nq (1..4) queries against one row, `qp` holding
// them permuted into the plane order by permute_query, words * 64 floats each, back to back;
// out[i] = query i . row (float32 accumulation; the variants' sums differ in rounding only).
constexpr int64_t kFloatTableMin = 6;
constexpr int64_t kFloatQueryTile = 4;
using FloatDotsFn = void (*)(const float *qp, int64_t nq, const uint64_t *row, int64_t words, float *out);
void float_dots_scalar(const float *, int64_t, const uint64_t *, int64_t, float *);
void float_dots_avx2(const float *, int64_t, const uint64_t *, int64_t, float *);
void float_dots_avx512(const float *, int64_t, const uint64_t *, int64_t, float *);
constexpr Variants<FloatDotsFn> kFloatDots{float_dots_scalar, TERNHD_X86_ONLY(float_dots_avx2),
                                           TERNHD_X86_ONLY(float_dots_avx512)};
// Writes q (dim floats) in the plane order of `words` plane words into qp (words * 64 floats).
void permute_query(const float *q, int64_t dim, int64_t words, float *qp);
// The tables of one quarter word: qt (16 positions x 16 lanes) -> tab (4 groups x 81 patterns x 16
// lanes), tab[g][e][l] = sum over j of qt[4g + j][l] * t_j for the pattern e = sum_j 3^j d_j (d_j =
// 0, 1, 2 for t_j = 0, +1, -1), built in one fixed order. qt and tab 64-byte aligned. AVX-512
// machines run the AVX2 variant (same floats).
using FloatTablesFn = void (*)(const float *qt, float *tab);
void float_tables_scalar(const float *, float *);
void float_tables_avx2(const float *, float *);
constexpr Variants<FloatTablesFn> kFloatTables{float_tables_scalar, TERNHD_X86_ONLY(float_tables_avx2),
                                               TERNHD_X86_ONLY(float_tables_avx2)};
// Table offsets of rows: for plane words w < words of mask and sign (pos = mask & ~sign, neg = mask
// & sign), out[w * stride + s] holds the byte offsets of quarter word s's groups g = 0..3, 16 bits
// each (group g in bits 16 g ..): (g * 81 + e) << shift for the pattern e of plane bits 16 s + 4 g
// .. + 3. shift kTableShift: into 16-lane tables.
using FloatOffsetsFn = void (*)(const uint64_t *mask, const uint64_t *sign, int64_t words, int shift, uint64_t *out,
                                int64_t stride);
void float_offsets_scalar(const uint64_t *, const uint64_t *, int64_t, int, uint64_t *, int64_t);
void float_offsets_avx2(const uint64_t *, const uint64_t *, int64_t, int, uint64_t *, int64_t);
constexpr Variants<FloatOffsetsFn> kFloatOffsets{float_offsets_scalar, TERNHD_X86_ONLY(float_offsets_avx2),
                                                 TERNHD_X86_ONLY(float_offsets_avx2)};
constexpr int kTableShift = 6;  // log2(16 lanes x 4 bytes)
// One quarter word for nd rows: c[r][l] += sum over the quarter word's 16 positions of qt[k][l] *
// t_r[k], from its tables; row r's offsets word at offs[4 r] (FloatOffsetsFn, shift kTableShift).
// c: nd x 16 floats. tab and c 64-byte aligned.
using FloatWordFn = void (*)(const float *tab, const uint64_t *offs, int64_t nd, float *c);
void float_word_scalar(const float *, const uint64_t *, int64_t, float *);
void float_word_avx2(const float *, const uint64_t *, int64_t, float *);
constexpr Variants<FloatWordFn> kFloatWord{float_word_scalar, TERNHD_X86_ONLY(float_word_avx2),
                                           TERNHD_X86_ONLY(float_word_avx2)};
// All pairs: q (m, dim) float32 against the rows -> out (m, rows) float32 dot products. Throws
// std::invalid_argument when dim exceeds the rows' 4 * nbytes trits (or, for packed rows, on 0b11).
void float_scores(const float *q, int64_t m, int64_t dim, const Planes &db, float *out, Simd simd);
void float_scores(const float *q, int64_t m, int64_t dim, PackedRows db, float *out, Simd simd,
                  const char *db_name = "database");
// Top-k of the same: scores (m, k) float32 and int64 row indices (m, k), best first, ties to the
// lower row. metric kDot: q . t; kCosine: q . t / (|q| sqrt(nnz(t))) (float64 divide, rounded to
// float32, 0 where the denominator is 0), ranked on the float32 value. Throws std::invalid_argument
// as float_scores does, for kHamming, and unless 1 <= k <= rows.
void float_topk(const float *q, int64_t m, int64_t dim, const Planes &db, int64_t k, Metric metric, float *scores,
                int64_t *indices, Simd simd);
void float_topk(const float *q, int64_t m, int64_t dim, PackedRows db, int64_t k, Metric metric, float *scores,
                int64_t *indices, Simd simd, const char *db_name = "database");

}  // namespace ternhd
