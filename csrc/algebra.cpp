// HDC algebra kernels (contract in algebra.hpp): scalar reference, AVX2 and AVX-512 variants of
// bind, the bit-sliced bundle counts and the bit funnel under permute, and the threaded row drivers.
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
// Bit-sliced counting. A packed word already holds two independent bit streams: the "+1" bits at
// even positions and the "-1" bits at odd ones, so counting, for every bit position separately,
// how many rows have it set gives the +1 count and the -1 count of every trit at once. The counts
// live as vertical binary numbers: plane l holds bit l of every position's count. Rows go through
// a carry-save adder tree 16 at a time (Harley-Seal: the state ones/twos/fours/eights plus one
// "sixteens" word per 16 rows, rippled into planes 4, 5, ...), about 5 logic operations per row
// word. Finishing works on the planes: sum = P - M with P the even and M the odd bits.
int count_levels(int64_t n) {
  int levels = 0;
  for (uint64_t v = static_cast<uint64_t>(n); v; v >>= 1) ++levels;
  return std::max(levels, 1);
}

namespace {
// Carry-save adder: per bit position, a + b + c = 2 h + l.
TERNHD_INLINE void csa(uint64_t &h, uint64_t &l, uint64_t a, uint64_t b, uint64_t c) {
  const uint64_t u = a ^ b;
  h = (a & b) | (u & c);
  l = u ^ c;
}

// count_scalar over the w <= 8 bytes [j0, j0 + w) of each row; planes row stride pstride.
bool count_word(const uint8_t *p, int64_t n, int64_t stride, int64_t j0, int64_t w, int levels, uint8_t *planes,
                int64_t pstride) {
  auto load = [&](int64_t r) {
    uint64_t x = 0;
    std::memcpy(&x, p + r * stride + j0, static_cast<size_t>(w));
    return x;
  };
  uint64_t c[kMaxCountLevels] = {};  // c[0..3] = ones, twos, fours, eights; c[4 + i] = bit i of the 16s
  uint64_t bad = 0, ones = 0, twos = 0, fours = 0, eights = 0;
  int64_t r = 0;
  for (; r + 16 <= n; r += 16) {  // n >= 16 implies levels >= 5
    uint64_t d[16];
    for (int k = 0; k < 16; ++k) {
      d[k] = load(r + k);
      bad |= d[k] & (d[k] >> 1);
    }
    uint64_t ta, tb, fa, fb, ea, eb, sixteens;
    csa(ta, ones, ones, d[0], d[1]);
    csa(tb, ones, ones, d[2], d[3]);
    csa(fa, twos, twos, ta, tb);
    csa(ta, ones, ones, d[4], d[5]);
    csa(tb, ones, ones, d[6], d[7]);
    csa(fb, twos, twos, ta, tb);
    csa(ea, fours, fours, fa, fb);
    csa(ta, ones, ones, d[8], d[9]);
    csa(tb, ones, ones, d[10], d[11]);
    csa(fa, twos, twos, ta, tb);
    csa(ta, ones, ones, d[12], d[13]);
    csa(tb, ones, ones, d[14], d[15]);
    csa(fb, twos, twos, ta, tb);
    csa(eb, fours, fours, fa, fb);
    csa(sixteens, eights, eights, ea, eb);
    for (int l = 4; l < levels && sixteens; ++l) {
      const uint64_t t = c[l] & sixteens;
      c[l] ^= sixteens;
      sixteens = t;
    }
  }
  c[0] = ones;
  c[1] = twos;
  c[2] = fours;
  c[3] = eights;
  for (; r < n; ++r) {  // the last n % 16 rows: one ripple each
    uint64_t x = load(r);
    bad |= x & (x >> 1);
    for (int l = 0; l < levels && x; ++l) {
      const uint64_t t = c[l] & x;
      c[l] ^= x;
      x = t;
    }
  }
  for (int l = 0; l < levels; ++l) std::memcpy(planes + l * pstride + j0, &c[l], static_cast<size_t>(w));
  return (bad & kM) == 0;
}

// Bytes [j0, nbytes) through count_word, 8 at a time (the scalar variant, and the SIMD tails).
bool count_words(const uint8_t *p, int64_t n, int64_t stride, int64_t j0, int64_t nbytes, int levels, uint8_t *planes) {
  bool ok = true;
  for (int64_t j = j0; j < nbytes; j += 8)
    ok &= count_word(p, n, stride, j, std::min<int64_t>(8, nbytes - j), levels, planes, nbytes);
  return ok;
}
}  // namespace

bool count_scalar(const uint8_t *p, int64_t n, int64_t stride, int64_t nbytes, int levels, uint8_t *planes) {
  return count_words(p, n, stride, 0, nbytes, levels, planes);
}

#if TERNHD_X86
namespace {
TERNHD_AVX2 TERNHD_INLINE void csa256(__m256i &h, __m256i &l, __m256i a, __m256i b, __m256i c) {
  const __m256i u = _mm256_xor_si256(a, b);
  h = _mm256_or_si256(_mm256_and_si256(a, b), _mm256_and_si256(u, c));
  l = _mm256_xor_si256(u, c);
}

// Loads 32 row bytes and folds their invalid-code bits into bad (tested against 0x55.. at the end).
TERNHD_AVX2 TERNHD_INLINE __m256i load256(const uint8_t *p, __m256i &bad) {
  const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(p));
  bad = _mm256_or_si256(bad, _mm256_and_si256(x, _mm256_srli_epi64(x, 1)));
  return x;
}

TERNHD_AVX512 TERNHD_INLINE __m512i load512(const uint8_t *p, __mmask64 k, __m512i &bad) {
  const __m512i x = _mm512_maskz_loadu_epi8(k, p);
  bad = _mm512_ternarylogic_epi64(bad, x, _mm512_srli_epi64(x, 1), 0xF8);  // bad | (x & x >> 1)
  return x;
}

TERNHD_AVX512 TERNHD_INLINE void csa512(__m512i &h, __m512i &l, __m512i a, __m512i b, __m512i c) {
  h = _mm512_ternarylogic_epi64(a, b, c, 0xE8);  // majority
  l = _mm512_ternarylogic_epi64(a, b, c, 0x96);  // a ^ b ^ c
}
}  // namespace

TERNHD_AVX2 bool count_avx2(const uint8_t *p, int64_t n, int64_t stride, int64_t nbytes, int levels, uint8_t *planes) {
  const __m256i zero = _mm256_setzero_si256();
  __m256i bad = zero;
  const int64_t full = nbytes / 32 * 32;
  for (int64_t j0 = 0; j0 < full; j0 += 32) {
    const uint8_t *col = p + j0;
    __m256i c[kMaxCountLevels];
    for (int l = 0; l < levels; ++l) c[l] = zero;
    __m256i ones = zero, twos = zero, fours = zero, eights = zero;
    int64_t r = 0;
    for (; r + 16 <= n; r += 16) {
      __m256i ta, tb, fa, fb, ea, eb, sixteens;
      csa256(ta, ones, ones, load256(col + r * stride, bad), load256(col + (r + 1) * stride, bad));
      csa256(tb, ones, ones, load256(col + (r + 2) * stride, bad), load256(col + (r + 3) * stride, bad));
      csa256(fa, twos, twos, ta, tb);
      csa256(ta, ones, ones, load256(col + (r + 4) * stride, bad), load256(col + (r + 5) * stride, bad));
      csa256(tb, ones, ones, load256(col + (r + 6) * stride, bad), load256(col + (r + 7) * stride, bad));
      csa256(fb, twos, twos, ta, tb);
      csa256(ea, fours, fours, fa, fb);
      csa256(ta, ones, ones, load256(col + (r + 8) * stride, bad), load256(col + (r + 9) * stride, bad));
      csa256(tb, ones, ones, load256(col + (r + 10) * stride, bad), load256(col + (r + 11) * stride, bad));
      csa256(fa, twos, twos, ta, tb);
      csa256(ta, ones, ones, load256(col + (r + 12) * stride, bad), load256(col + (r + 13) * stride, bad));
      csa256(tb, ones, ones, load256(col + (r + 14) * stride, bad), load256(col + (r + 15) * stride, bad));
      csa256(fb, twos, twos, ta, tb);
      csa256(eb, fours, fours, fa, fb);
      csa256(sixteens, eights, eights, ea, eb);
      for (int l = 4; l < levels; ++l) {
        const __m256i t = _mm256_and_si256(c[l], sixteens);
        c[l] = _mm256_xor_si256(c[l], sixteens);
        sixteens = t;
      }
    }
    c[0] = ones;
    if (levels > 1) c[1] = twos;
    if (levels > 2) c[2] = fours;
    if (levels > 3) c[3] = eights;
    for (; r < n; ++r) {
      __m256i x = load256(col + r * stride, bad);
      for (int l = 0; l < levels; ++l) {
        const __m256i t = _mm256_and_si256(c[l], x);
        c[l] = _mm256_xor_si256(c[l], x);
        x = t;
      }
    }
    for (int l = 0; l < levels; ++l) _mm256_storeu_si256(reinterpret_cast<__m256i *>(planes + l * nbytes + j0), c[l]);
  }
  const bool ok = _mm256_testz_si256(bad, _mm256_set1_epi8(0x55));
  return count_words(p, n, stride, full, nbytes, levels, planes) && ok;
}

// AVX-512: 64 bytes (256 trits) per step, masked loads and stores for the last partial block.
TERNHD_AVX512 bool count_avx512(const uint8_t *p, int64_t n, int64_t stride, int64_t nbytes, int levels,
                                uint8_t *planes) {
  const __m512i zero = _mm512_setzero_si512();
  __m512i bad = zero;
  for (int64_t j0 = 0; j0 < nbytes; j0 += 64) {
    const int64_t w = std::min<int64_t>(64, nbytes - j0);
    const __mmask64 k = w == 64 ? ~__mmask64(0) : (__mmask64(1) << w) - 1;
    const uint8_t *col = p + j0;
    __m512i c[kMaxCountLevels];
    for (int l = 0; l < levels; ++l) c[l] = zero;
    __m512i ones = zero, twos = zero, fours = zero, eights = zero;
    int64_t r = 0;
    for (; r + 16 <= n; r += 16) {
      __m512i ta, tb, fa, fb, ea, eb, sixteens;
      csa512(ta, ones, ones, load512(col + r * stride, k, bad), load512(col + (r + 1) * stride, k, bad));
      csa512(tb, ones, ones, load512(col + (r + 2) * stride, k, bad), load512(col + (r + 3) * stride, k, bad));
      csa512(fa, twos, twos, ta, tb);
      csa512(ta, ones, ones, load512(col + (r + 4) * stride, k, bad), load512(col + (r + 5) * stride, k, bad));
      csa512(tb, ones, ones, load512(col + (r + 6) * stride, k, bad), load512(col + (r + 7) * stride, k, bad));
      csa512(fb, twos, twos, ta, tb);
      csa512(ea, fours, fours, fa, fb);
      csa512(ta, ones, ones, load512(col + (r + 8) * stride, k, bad), load512(col + (r + 9) * stride, k, bad));
      csa512(tb, ones, ones, load512(col + (r + 10) * stride, k, bad), load512(col + (r + 11) * stride, k, bad));
      csa512(fa, twos, twos, ta, tb);
      csa512(ta, ones, ones, load512(col + (r + 12) * stride, k, bad), load512(col + (r + 13) * stride, k, bad));
      csa512(tb, ones, ones, load512(col + (r + 14) * stride, k, bad), load512(col + (r + 15) * stride, k, bad));
      csa512(fb, twos, twos, ta, tb);
      csa512(eb, fours, fours, fa, fb);
      csa512(sixteens, eights, eights, ea, eb);
      for (int l = 4; l < levels; ++l) {
        const __m512i t = _mm512_and_si512(c[l], sixteens);
        c[l] = _mm512_xor_si512(c[l], sixteens);
        sixteens = t;
      }
    }
    c[0] = ones;
    if (levels > 1) c[1] = twos;
    if (levels > 2) c[2] = fours;
    if (levels > 3) c[3] = eights;
    for (; r < n; ++r) {
      __m512i x = load512(col + r * stride, k, bad);
      for (int l = 0; l < levels; ++l) {
        const __m512i t = _mm512_and_si512(c[l], x);
        c[l] = _mm512_xor_si512(c[l], x);
        x = t;
      }
    }
    for (int l = 0; l < levels; ++l) _mm512_mask_storeu_epi8(planes + l * nbytes + j0, k, c[l]);
  }
  return _mm512_test_epi64_mask(bad, _mm512_set1_epi8(0x55)) == 0;
}
#endif  // TERNHD_X86

namespace {
// Per even bit position: a > b + t, for the `levels`-bit numbers a and b given as planes (bits at
// even positions only) and 0 <= t < 2^levels; b + t takes levels + 1 bits.
uint64_t greater_plus(const uint64_t *a, const uint64_t *b, int32_t t, int levels) {
  uint64_t s[kMaxCountLevels + 1], carry = 0;
  for (int l = 0; l < levels; ++l) {
    const uint64_t tb = (t >> l) & 1 ? kM : 0;
    const uint64_t u = b[l] ^ tb;
    s[l] = u ^ carry;
    carry = (b[l] & tb) | (u & carry);
  }
  uint64_t gt = 0, eq = kM & ~carry;  // bit `levels` of a is 0: a > b + t needs it 0 in b + t too
  for (int l = levels - 1; l >= 0; --l) {
    gt |= eq & a[l] & ~s[l];
    eq &= ~(a[l] ^ s[l]);
  }
  return gt;
}

// Packed majority of the counted bytes [0, nbytes): +1 where P - M > t, -1 where M - P > t.
void majority_from_planes(const uint8_t *planes, int levels, int64_t n, int64_t nbytes, int32_t t, uint8_t *out) {
  if (t >= n) {  // |P - M| <= n: nothing passes (and t need not fit the planes)
    std::memset(out, 0, static_cast<size_t>(nbytes));
    return;
  }
  uint64_t P[kMaxCountLevels], M[kMaxCountLevels];
  for (int64_t j0 = 0; j0 < nbytes; j0 += 8) {
    const size_t w = static_cast<size_t>(std::min<int64_t>(8, nbytes - j0));
    for (int l = 0; l < levels; ++l) {
      uint64_t x = 0;
      std::memcpy(&x, planes + l * nbytes + j0, w);
      P[l] = x & kM;
      M[l] = (x >> 1) & kM;
    }
    const uint64_t r = greater_plus(P, M, t, levels) | (greater_plus(M, P, t, levels) << 1);
    std::memcpy(out + j0, &r, w);
  }
}

// int32 sums of the counted bytes [0, nbytes): sums[4 j + q] = P - M of trit q of byte j.
struct TritTable {  // value (+1 bit) - (-1 bit) of each trit of a byte: code 0b11 counts 1 - 1 = 0
  int8_t v[256][4];
  TritTable() {
    for (int b = 0; b < 256; ++b)
      for (int q = 0; q < 4; ++q) {
        const int c = (b >> (6 - 2 * q)) & 3;
        v[b][q] = static_cast<int8_t>((c & 1) - (c >> 1));
      }
  }
};
const TritTable kTrit;

void sums_from_planes(const uint8_t *planes, int levels, int64_t nbytes, int32_t *sums) {
  std::fill(sums, sums + 4 * nbytes, 0);
  for (int l = 0; l < levels; ++l) {
    const uint8_t *pl = planes + l * nbytes;
    const int32_t weight = int32_t{1} << l;
    for (int64_t j = 0; j < nbytes; ++j) {
      if (!pl[j]) continue;
      const int8_t *t = kTrit.v[pl[j]];
      for (int q = 0; q < 4; ++q) sums[4 * j + q] += t[q] * weight;
    }
  }
}
}  // namespace

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

namespace {
// Both bundle drivers: groups x column blocks of kBundleCols bytes (1024 trits) as tasks; each
// counts its block into bit planes on the stack (levels x kBundleCols bytes, at most 7.9 KiB), then
// `finish(g, j0, w, levels, planes)` turns them into the output. A thread gets at least
// kBundleBytesPerThread input bytes (about 0.3 ms of counting on one AVX2 core): below that, starting
// a thread costs more than it saves (1,000 x 10,000 trits took 3.9 ms on two threads of a loaded
// 2-core machine, 0.2 ms on one).
constexpr int64_t kBundleCols = 256;
constexpr int64_t kBundleBytesPerThread = int64_t{4} << 20;

template <typename Finish>
void bundle_blocks(const uint8_t *src, int64_t groups, int64_t n, int64_t nb, Simd simd, const Finish &finish) {
  if (n < 1) throw std::invalid_argument("vectors: need at least one vector to bundle");
  if (groups < 0 || nb < 0) throw std::invalid_argument("vectors: sizes must be non-negative");
  if (n > (int64_t{1} << kMaxCountLevels) - 1)
    throw std::invalid_argument("vectors: more than 2^31 - 1 vectors in one bundle (the sums are int32)");
  const CountFn count = pick(kCount, simd);
  const int levels = count_levels(n);
  const int64_t cblocks = std::max<int64_t>(1, ceil_div(nb, kBundleCols));
  std::atomic<bool> ok{true};
  const int64_t task_bytes = std::max<int64_t>(1, n * std::min(kBundleCols, std::max<int64_t>(nb, 1)));
  parallel_for(
      groups * cblocks,
      [&](int64_t task) {
        const int64_t g = task / cblocks, j0 = (task % cblocks) * kBundleCols, w = std::min(kBundleCols, nb - j0);
        if (w <= 0) return;
        uint8_t planes[kMaxCountLevels * kBundleCols];
        if (!count(src + g * n * nb + j0, n, nb, w, levels, planes)) ok.store(false);
        finish(g, j0, w, levels, planes);
      },
      ceil_div(kBundleBytesPerThread, task_bytes));
  if (!ok.load()) throw std::invalid_argument("vectors: contain the invalid 2-bit code 0b11");
}
}  // namespace

void bundle_rows(const uint8_t *src, int64_t groups, int64_t n, int64_t nb, double thr, uint8_t *dst, Simd simd) {
  if (!(thr >= 0.0) || !std::isfinite(thr)) throw std::invalid_argument("threshold: must be finite and non-negative");
  // Sums are integers: sum > thr <=> sum > floor(thr), sum < -thr <=> sum < -floor(thr).
  const int32_t ti = thr >= 2147483647.0 ? INT32_MAX : static_cast<int32_t>(std::floor(thr));
  bundle_blocks(src, groups, n, nb, simd, [&](int64_t g, int64_t j0, int64_t w, int levels, const uint8_t *planes) {
    majority_from_planes(planes, levels, n, w, ti, dst + g * nb + j0);
  });
}

void bundle_sums_rows(const uint8_t *src, int64_t groups, int64_t n, int64_t nb, int32_t *sums, Simd simd) {
  bundle_blocks(src, groups, n, nb, simd, [&](int64_t g, int64_t j0, int64_t w, int levels, const uint8_t *planes) {
    sums_from_planes(planes, levels, w, sums + g * 4 * nb + 4 * j0);
  });
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
