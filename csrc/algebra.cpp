// HDC algebra kernels (contract in algebra.hpp): scalar reference, AVX2 and AVX-512 variants of
// bind, bundle sums and the bit funnel under permute, and the threaded row drivers.
//
// In every byte the "+1" bits sit at even positions and the "-1" bits at the odd position above
// them (docs/FORMAT.md). With M = 0x55.. and swap(B) exchanging the bits of every pair:
//   X = A & B        (same signs)      ->  +1 where (X | X >> 1) & M
//   Y = A & swap(B)  (opposite signs)  ->  -1 where ((Y | Y >> 1) & M) << 1
// A code 0b11 anywhere in the input bytes is an error (A & A >> 1 & M != 0).
#include "dispatch.hpp"  // TERNHD_X86

#if TERNHD_X86
#include <immintrin.h>
#endif
#include <algorithm>
#include <atomic>
#include <climits>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "algebra.hpp"
#include "threads.hpp"

namespace ternhd {
namespace {

constexpr uint64_t kM = 0x5555555555555555ULL;

inline uint64_t bind_word(uint64_t a, uint64_t b, uint64_t &bad) {
  bad |= (a & (a >> 1) & kM) | (b & (b >> 1) & kM);
  const uint64_t sb = ((b >> 1) & kM) | ((b & kM) << 1);
  const uint64_t x = a & b, y = a & sb;
  return ((x | (x >> 1)) & kM) | (((y | (y >> 1)) & kM) << 1);
}
}  // namespace

// ----------------------------------------------------------------------------- bind
// n bytes of a and b -> out; false on code 0b11.
bool bind_scalar(const uint8_t *a, const uint8_t *b, int64_t n, uint8_t *out) {
  uint64_t bad = 0;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t wa, wb;
    std::memcpy(&wa, a + i, 8);
    std::memcpy(&wb, b + i, 8);
    uint64_t r = bind_word(wa, wb, bad);
    std::memcpy(out + i, &r, 8);
  }
  for (; i < n; ++i) out[i] = static_cast<uint8_t>(bind_word(a[i], b[i], bad));
  return bad == 0;
}

#if TERNHD_X86
TERNHD_AVX2 bool bind_avx2(const uint8_t *a, const uint8_t *b, int64_t n, uint8_t *out) {
  const __m256i m = _mm256_set1_epi8(0x55);
  __m256i bad = _mm256_setzero_si256();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m256i va = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(a + i));
    __m256i vb = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(b + i));
    bad = _mm256_or_si256(bad, _mm256_and_si256(_mm256_and_si256(va, _mm256_srli_epi64(va, 1)), m));
    bad = _mm256_or_si256(bad, _mm256_and_si256(_mm256_and_si256(vb, _mm256_srli_epi64(vb, 1)), m));
    __m256i sb =
        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi64(vb, 1), m), _mm256_slli_epi64(_mm256_and_si256(vb, m), 1));
    __m256i x = _mm256_and_si256(va, vb), y = _mm256_and_si256(va, sb);
    __m256i p = _mm256_and_si256(_mm256_or_si256(x, _mm256_srli_epi64(x, 1)), m);
    __m256i q = _mm256_slli_epi64(_mm256_and_si256(_mm256_or_si256(y, _mm256_srli_epi64(y, 1)), m), 1);
    _mm256_storeu_si256(reinterpret_cast<__m256i *>(out + i), _mm256_or_si256(p, q));
  }
  bool ok = _mm256_testz_si256(bad, bad);
  return bind_scalar(a + i, b + i, n - i, out + i) && ok;
}

TERNHD_AVX512 bool bind_avx512(const uint8_t *a, const uint8_t *b, int64_t n, uint8_t *out) {
  const __m512i m = _mm512_set1_epi8(0x55);
  __m512i bad = _mm512_setzero_si512();
  int64_t i = 0;
  for (; i < n; i += 64) {
    const __mmask64 k = n - i >= 64 ? ~__mmask64(0) : (__mmask64(1) << (n - i)) - 1;
    __m512i va = _mm512_maskz_loadu_epi8(k, a + i), vb = _mm512_maskz_loadu_epi8(k, b + i);
    // bad |= (va & va >> 1 & m) | (vb & vb >> 1 & m)
    bad = _mm512_ternarylogic_epi64(bad, va, _mm512_srli_epi64(va, 1), 0xF8);
    bad = _mm512_ternarylogic_epi64(bad, vb, _mm512_srli_epi64(vb, 1), 0xF8);
    __m512i sb =
        _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi64(vb, 1), m), _mm512_slli_epi64(_mm512_and_si512(vb, m), 1));
    __m512i x = _mm512_and_si512(va, vb), y = _mm512_and_si512(va, sb);
    __m512i p = _mm512_and_si512(_mm512_or_si512(x, _mm512_srli_epi64(x, 1)), m);
    __m512i q = _mm512_slli_epi64(_mm512_and_si512(_mm512_or_si512(y, _mm512_srli_epi64(y, 1)), m), 1);
    _mm512_mask_storeu_epi8(out + i, k, _mm512_or_si512(p, q));
  }
  return _mm512_test_epi64_mask(bad, m) == 0;
}
#endif  // TERNHD_X86

// ----------------------------------------------------------------------------- bundle
// Sums of n rows (stride `stride` bytes) over the byte range [0, nbytes) of each row, written to
// sums[4 * j + q] for trit q of byte j. False on code 0b11.
namespace {
struct TritTable {
  int8_t v[256][4];
  bool valid[256];
  TritTable() {
    for (int b = 0; b < 256; ++b) {
      valid[b] = true;
      for (int q = 0; q < 4; ++q) {
        int c = (b >> (6 - 2 * q)) & 3;
        v[b][q] = static_cast<int8_t>(c == 1 ? 1 : (c == 2 ? -1 : 0));
        valid[b] = valid[b] && c != 3;
      }
    }
  }
};
const TritTable kTrit;
}  // namespace

bool sums_scalar(const uint8_t *p, int64_t n, int64_t stride, int64_t nbytes, int32_t *sums) {
  bool ok = true;
  std::fill(sums, sums + 4 * nbytes, 0);
  for (int64_t r = 0; r < n; ++r) {
    const uint8_t *row = p + r * stride;
    for (int64_t j = 0; j < nbytes; ++j) {
      const int8_t *t = kTrit.v[row[j]];
      ok &= kTrit.valid[row[j]];
      sums[4 * j] += t[0];
      sums[4 * j + 1] += t[1];
      sums[4 * j + 2] += t[2];
      sums[4 * j + 3] += t[3];
    }
  }
  return ok;
}

#if TERNHD_X86
// SIMD sums: each 2-bit code c = (byte >> 2(3-q)) & 3 maps to its value {0, 1, -1, 0} with one byte
// shuffle; values add up in int8 lanes for up to 127 rows, then flush into the int32 sums. The
// validity test (no code 0b11) runs once per loaded vector: v & (v >> 1) & 0x55.
namespace {
constexpr int64_t kChunkRows = 127;  // int8 lane accumulators never overflow
}  // namespace

TERNHD_AVX2 bool sums_avx2(const uint8_t *p, int64_t n, int64_t stride, int64_t nbytes, int32_t *sums) {
  const __m256i three = _mm256_set1_epi8(3), m55 = _mm256_set1_epi8(0x55);
  const __m256i lut = _mm256_setr_epi8(0, 1, -1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  //
                                       0, 1, -1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
  __m256i bad = _mm256_setzero_si256();
  std::fill(sums, sums + 4 * nbytes, 0);
  const int64_t full = nbytes / 32 * 32;
  for (int64_t j0 = 0; j0 < full; j0 += 32) {
    for (int64_t r0 = 0; r0 < n; r0 += kChunkRows) {
      __m256i acc[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256()};
      for (int64_t r = r0; r < std::min(n, r0 + kChunkRows); ++r) {
        __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(p + r * stride + j0));
        bad = _mm256_or_si256(bad, _mm256_and_si256(v, _mm256_srli_epi64(v, 1)));
        for (int q = 0; q < 4; ++q)
          acc[q] = _mm256_add_epi8(acc[q],
                                   _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(v, 6 - 2 * q), three)));
      }
      alignas(32) int8_t tmp[32];
      for (int q = 0; q < 4; ++q) {
        _mm256_store_si256(reinterpret_cast<__m256i *>(tmp), acc[q]);
        for (int j = 0; j < 32; ++j) sums[4 * (j0 + j) + q] += tmp[j];
      }
    }
  }
  bool ok = _mm256_testz_si256(bad, m55);
  if (full < nbytes) {
    std::vector<int32_t> tail(static_cast<size_t>(4 * (nbytes - full)));
    ok &= sums_scalar(p + full, n, stride, nbytes - full, tail.data());
    std::copy(tail.begin(), tail.end(), sums + 4 * full);
  }
  return ok;
}

// AVX-512: 64 bytes (256 trits) per step, masked loads for the last partial block.
TERNHD_AVX512 bool sums_avx512(const uint8_t *p, int64_t n, int64_t stride, int64_t nbytes, int32_t *sums) {
  const __m512i three = _mm512_set1_epi8(3), m55 = _mm512_set1_epi8(0x55);
  const __m512i lut = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, -1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0));
  __m512i bad = _mm512_setzero_si512();
  std::fill(sums, sums + 4 * nbytes, 0);
  for (int64_t j0 = 0; j0 < nbytes; j0 += 64) {
    const int64_t w = std::min<int64_t>(64, nbytes - j0);
    const __mmask64 k = w == 64 ? ~__mmask64(0) : (__mmask64(1) << w) - 1;
    for (int64_t r0 = 0; r0 < n; r0 += kChunkRows) {
      __m512i acc[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512()};
      for (int64_t r = r0; r < std::min(n, r0 + kChunkRows); ++r) {
        __m512i v = _mm512_maskz_loadu_epi8(k, p + r * stride + j0);
        bad = _mm512_ternarylogic_epi64(bad, v, _mm512_srli_epi64(v, 1), 0xF8);  // bad | (v & v >> 1)
        for (int q = 0; q < 4; ++q)
          acc[q] = _mm512_add_epi8(acc[q],
                                   _mm512_shuffle_epi8(lut, _mm512_and_si512(_mm512_srli_epi16(v, 6 - 2 * q), three)));
      }
      alignas(64) int8_t tmp[64];
      for (int q = 0; q < 4; ++q) {
        _mm512_store_si512(tmp, acc[q]);
        for (int j = 0; j < w; ++j) sums[4 * (j0 + j) + q] += tmp[j];
      }
    }
  }
  return _mm512_test_epi64_mask(bad, m55) == 0;
}
#endif  // TERNHD_X86

// ----------------------------------------------------------------------------- permute
namespace {
inline unsigned trit_at(const uint8_t *p, int64_t t) { return (p[t >> 2] >> (6 - 2 * (t & 3))) & 3u; }

}  // namespace

void funnel_scalar(const uint8_t *src, int64_t nsrc, int64_t pos, uint8_t *dst, int64_t count) {
  (void)nsrc;
  const int64_t b = pos >> 3;
  const int s = static_cast<int>(pos & 7);
  if (s == 0) {
    std::memcpy(dst, src + b, static_cast<size_t>(count));
    return;
  }
  for (int64_t j = 0; j < count; ++j) dst[j] = static_cast<uint8_t>((src[b + j] << s) | (src[b + j + 1] >> (8 - s)));
}

#if TERNHD_X86
TERNHD_AVX2 void funnel_avx2(const uint8_t *src, int64_t nsrc, int64_t pos, uint8_t *dst, int64_t count) {
  const int64_t b = pos >> 3;
  const int s = static_cast<int>(pos & 7);
  if (s == 0) return funnel_scalar(src, nsrc, pos, dst, count);
  const __m128i sl = _mm_cvtsi32_si128(s), sr = _mm_cvtsi32_si128(8 - s);
  const __m256i mhi = _mm256_set1_epi8(static_cast<char>((0xFF << s) & 0xFF));
  const __m256i mlo = _mm256_set1_epi8(static_cast<char>(0xFF >> (8 - s)));
  int64_t j = 0;
  for (; j + 32 <= count && b + j + 33 <= nsrc; j += 32) {
    __m256i v0 = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(src + b + j));
    __m256i v1 = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(src + b + j + 1));
    __m256i r = _mm256_or_si256(_mm256_and_si256(_mm256_sll_epi16(v0, sl), mhi),
                                _mm256_and_si256(_mm256_srl_epi16(v1, sr), mlo));
    _mm256_storeu_si256(reinterpret_cast<__m256i *>(dst + j), r);
  }
  funnel_scalar(src, nsrc, pos + 8 * j, dst + j, count - j);
}

TERNHD_AVX512 void funnel_avx512(const uint8_t *src, int64_t nsrc, int64_t pos, uint8_t *dst, int64_t count) {
  const int64_t b = pos >> 3;
  const int s = static_cast<int>(pos & 7);
  if (s == 0) return funnel_scalar(src, nsrc, pos, dst, count);
  const __m128i sl = _mm_cvtsi32_si128(s), sr = _mm_cvtsi32_si128(8 - s);
  const __m512i mhi = _mm512_set1_epi8(static_cast<char>((0xFF << s) & 0xFF));
  const __m512i mlo = _mm512_set1_epi8(static_cast<char>(0xFF >> (8 - s)));
  int64_t j = 0;
  for (; j + 64 <= count && b + j + 65 <= nsrc; j += 64) {
    __m512i v0 = _mm512_loadu_si512(src + b + j);
    __m512i v1 = _mm512_loadu_si512(src + b + j + 1);
    __m512i r = _mm512_ternarylogic_epi64(_mm512_and_si512(_mm512_sll_epi16(v0, sl), mhi), _mm512_srl_epi16(v1, sr),
                                          mlo, 0xF8);  // a | (b & c)
    _mm512_storeu_si512(dst + j, r);
  }
  funnel_scalar(src, nsrc, pos + 8 * j, dst + j, count - j);
}
#endif  // TERNHD_X86

namespace {
void funnel(const uint8_t *src, int64_t nsrc, int64_t pos, uint8_t *dst, int64_t count, Simd simd) {
  if (count > 0) pick(kFunnel, simd)(src, nsrc, pos, dst, count);
}

// Code 0b11 among the first dim trits of a row of nb bytes?
bool row_has_invalid(const uint8_t *p, int64_t nb, int64_t dim) {
  uint64_t bad = 0;
  const int64_t full = dim / 4;  // bytes whose 4 trits are all inside dim
  int64_t i = 0;
  for (; i + 8 <= full; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    bad |= w & (w >> 1) & kM;
  }
  for (; i < full; ++i) bad |= p[i] & (p[i] >> 1) & 0x55u;
  for (int64_t t = 4 * full; t < dim; ++t) bad |= trit_at(p, t) == 3u;
  (void)nb;
  return bad != 0;
}

// out = roll(src, k) over dim trits (out trit i = src trit (i - k) mod dim), 0 <= k < dim.
void permute_row(const uint8_t *src, int64_t nb, int64_t dim, int64_t k, uint8_t *out, Simd simd) {
  const int64_t whole = dim / 4;  // output bytes with 4 trits inside dim
  // Segment A: bytes j < k / 4 (all 4 trits < k) come from source trits dim - k + 4 j.
  const int64_t na = k / 4;
  funnel(src, nb, 2 * (dim - k), out, na, simd);
  // Segment B: bytes ceil(k / 4) <= j < dim / 4 come from source trits 4 j - k.
  const int64_t jb = (k + 3) / 4;
  if (whole > jb) funnel(src, nb, 8 * jb - 2 * k, out + jb, whole - jb, simd);
  // The byte that straddles trit k and the last partial byte: trit by trit.
  auto slow = [&](int64_t j) {
    unsigned byte = 0;
    for (int64_t q = 0; q < 4 && 4 * j + q < dim; ++q) {
      int64_t t = 4 * j + q - k;
      if (t < 0) t += dim;
      byte |= trit_at(src, t) << (6 - 2 * q);
    }
    out[j] = static_cast<uint8_t>(byte);
  };
  const int64_t straddle = k % 4 ? k / 4 : -1;
  if (straddle >= 0) slow(straddle);
  if (dim % 4 && whole != straddle) slow(whole);
}

}  // namespace

// ----------------------------------------------------------------------------- row drivers
void bind_rows(const uint8_t *pa, int64_t ra, const uint8_t *pb, int64_t rb, int64_t nb, uint8_t *po, Simd simd) {
  if (ra < 0 || rb < 0 || nb < 0) throw std::invalid_argument("a, b: sizes must be non-negative");
  if (ra != rb && ra != 1 && rb != 1)
    throw std::invalid_argument("b: row counts differ and neither a nor b is a single row");
  const int64_t rows = std::max(ra, rb);
  const int64_t sa = ra == 1 ? 0 : nb, sb = rb == 1 ? 0 : nb;
  const BindFn bind = pick(kBind, simd);
  std::atomic<bool> ok{true};
  const int64_t per = std::max<int64_t>(1, 65536 / std::max<int64_t>(nb, 1));
  parallel_for(ceil_div(rows, per), [&](int64_t c) {
    for (int64_t r = c * per; r < std::min(rows, (c + 1) * per); ++r)
      if (!bind(pa + r * sa, pb + r * sb, nb, po + r * nb)) ok.store(false);
  });
  if (!ok.load()) throw std::invalid_argument("a, b: contain the invalid 2-bit code 0b11");
}

void bundle_rows(const uint8_t *src, int64_t groups, int64_t n, int64_t nb, double thr, uint8_t *dst, Simd simd) {
  if (!(thr >= 0.0) || !std::isfinite(thr)) throw std::invalid_argument("threshold: must be finite and non-negative");
  if (n < 1) throw std::invalid_argument("vectors: need at least one vector to bundle");
  if (groups < 0 || nb < 0) throw std::invalid_argument("vectors: sizes must be non-negative");
  const SumsFn sums_of = pick(kSums, simd);
  // Sums are integers: sum > thr <=> sum > floor(thr), sum < -thr <=> sum < -floor(thr).
  const int32_t ti = thr >= 2147483647.0 ? INT32_MAX : static_cast<int32_t>(std::floor(thr));
  // Work unit: one group x one column block of 256 bytes (1024 trits).
  constexpr int64_t kCols = 256;
  const int64_t cblocks = std::max<int64_t>(1, ceil_div(nb, kCols));
  std::atomic<bool> ok{true};
  parallel_for(groups * cblocks, [&](int64_t task) {
    const int64_t g = task / cblocks, j0 = (task % cblocks) * kCols, w = std::min(kCols, nb - j0);
    if (w <= 0) return;
    std::vector<int32_t> sums(static_cast<size_t>(4 * w));
    if (!sums_of(src + g * n * nb + j0, n, nb, w, sums.data())) ok.store(false);
    for (int64_t j = 0; j < w; ++j) {
      unsigned byte = 0;
      for (int q = 0; q < 4; ++q) {
        const int32_t s = sums[4 * j + q];
        byte |= (static_cast<unsigned>(s > ti) | (static_cast<unsigned>(s < -ti) << 1)) << (6 - 2 * q);
      }
      dst[g * nb + j0 + j] = static_cast<uint8_t>(byte);
    }
  });
  if (!ok.load()) throw std::invalid_argument("vectors: contain the invalid 2-bit code 0b11");
}

void permute_rows(const uint8_t *src, int64_t rows, int64_t nb, int64_t k, int64_t dim, uint8_t *dst, Simd simd) {
  if (dim < 1) throw std::invalid_argument("dim: must be at least 1");
  if (rows < 0 || nb != ceil_div(dim, 4)) throw std::invalid_argument("a: row width does not match ceil(dim / 4)");
  if (k < 0 || k >= dim) throw std::invalid_argument("k: must be reduced to [0, dim)");
  std::atomic<bool> ok{true};
  const int64_t per = std::max<int64_t>(1, 65536 / nb);
  parallel_for(ceil_div(rows, per), [&](int64_t c) {
    for (int64_t r = c * per; r < std::min(rows, (c + 1) * per); ++r) {
      if (row_has_invalid(src + r * nb, nb, dim)) ok.store(false);
      if (k == 0) {
        std::memcpy(dst + r * nb, src + r * nb, static_cast<size_t>(nb));
        if (dim % 4) dst[r * nb + nb - 1] &= static_cast<uint8_t>(0xFF << (8 - 2 * (dim % 4)));
      } else {
        permute_row(src + r * nb, nb, dim, k, dst + r * nb, simd);
      }
    }
  });
  if (!ok.load()) throw std::invalid_argument("a: contains the invalid 2-bit code 0b11");
}

}  // namespace ternhd
