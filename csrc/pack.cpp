// 2-bit packing and unpacking: scalar reference, AVX2 and AVX-512 variants, threaded row drivers.
#include "pack.hpp"

#if TERNHD_X86
#include <immintrin.h>
#endif
#if TERNHD_NEON
#include <arm_neon.h>
#endif
#include <algorithm>
#include <atomic>
#include <cstring>
#include <stdexcept>

#include "threads.hpp"

namespace ternhd {

// ----------------------------------------------------------------------------- serial reference
namespace {
// Unpack table: byte -> 4 int8 trits (first trit from the high bits), and a validity table.
struct UnpackTable {
  int8_t trits[256][4];
  bool valid[256];
  UnpackTable() {
    for (int b = 0; b < 256; ++b) {
      valid[b] = true;
      for (int q = 0; q < 4; ++q) {
        int c = (b >> (6 - 2 * q)) & 3;
        trits[b][q] = c == 1 ? 1 : (c == 2 ? -1 : 0);
        if (c == 3) valid[b] = false;
      }
    }
  }
};
const UnpackTable kUnpack;
}  // namespace

bool pack_span_scalar(const int8_t *t, int64_t n, uint8_t *out) {
  // Branch-free: code = (v & 3) - ((v >> 1) & 1) maps {0, 1, -1} to {0, 1, 2}; valid iff
  // (uint8_t)(v + 1) <= 2.
  unsigned bad = 0;
  auto code = [&](int8_t v) -> unsigned {
    bad |= static_cast<unsigned>(static_cast<uint8_t>(v + 1) > 2);
    return static_cast<unsigned>((v & 3) - ((v >> 1) & 1));
  };
  const int64_t full = n / 4;
  for (int64_t i = 0; i < full; ++i) {
    const int8_t *g = t + 4 * i;
    out[i] = static_cast<uint8_t>((code(g[0]) << 6) | (code(g[1]) << 4) | (code(g[2]) << 2) | code(g[3]));
  }
  const int64_t rem = n - 4 * full;
  if (rem) {
    unsigned b = 0;
    for (int64_t q = 0; q < rem; ++q) b |= code(t[4 * full + q]) << (6 - 2 * q);
    out[full] = static_cast<uint8_t>(b);
  }
  return bad == 0;
}

bool unpack_span_scalar(const uint8_t *p, int64_t n, int8_t *out) {
  bool ok = true;
  int64_t full = n / 4;
  for (int64_t i = 0; i < full; ++i) {
    ok &= kUnpack.valid[p[i]];
    std::memcpy(out + 4 * i, kUnpack.trits[p[i]], 4);
  }
  int64_t rem = n - 4 * full;
  for (int64_t q = 0; q < rem; ++q) {
    int c = (p[full] >> (6 - 2 * q)) & 3;
    if (c == 3) ok = false;
    out[4 * full + q] = kUnpack.trits[p[full]][q];
  }
  return ok;
}

#if TERNHD_X86
// ----------------------------------------------------------------------------- AVX2
// 32 int8 -> 8 bytes: code = min(t & 3, 2) maps {0, 1, -1} to {0, 1, 2}; maddubs (4, 1) joins two
// codes into c0<<2|c1, madd (16, 1) joins two of those into c0<<6|c1<<4|c2<<2|c3 per 32-bit lane.
TERNHD_AVX2 static inline __m256i pack32_avx2(const int8_t *t, __m256i &bad) {
  const __m256i one = _mm256_set1_epi8(1), two = _mm256_set1_epi8(2), three = _mm256_set1_epi8(3);
  __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(t));
  __m256i y = _mm256_add_epi8(x, one);  // valid iff y (unsigned) <= 2
  bad = _mm256_or_si256(bad, _mm256_xor_si256(_mm256_max_epu8(y, two), two));
  __m256i c = _mm256_min_epu8(_mm256_and_si256(x, three), two);
  __m256i w = _mm256_maddubs_epi16(c, _mm256_set1_epi16(0x0104));  // bytes (4, 1)
  return _mm256_madd_epi16(w, _mm256_set1_epi32(0x00010010));      // words (16, 1)
}

TERNHD_AVX2 bool pack_span_avx2(const int8_t *t, int64_t n, uint8_t *out) {
  __m256i bad = _mm256_setzero_si256();
  int64_t i = 0;
  const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (; i + 128 <= n; i += 128) {
    __m256i d0 = pack32_avx2(t + i, bad), d1 = pack32_avx2(t + i + 32, bad);
    __m256i d2 = pack32_avx2(t + i + 64, bad), d3 = pack32_avx2(t + i + 96, bad);
    __m256i w01 = _mm256_packus_epi32(d0, d1), w23 = _mm256_packus_epi32(d2, d3);
    __m256i b = _mm256_packus_epi16(w01, w23);
    b = _mm256_permutevar8x32_epi32(b, perm);
    _mm256_storeu_si256(reinterpret_cast<__m256i *>(out + i / 4), b);
  }
  bool ok = _mm256_testz_si256(bad, bad);
  return pack_span_scalar(t + i, n - i, out + i / 4) && ok;
}

// 8 bytes -> 32 trits: replicate each byte 4 times (vpshufb within 128-bit lanes), test the "+1"
// and "-1" bit of each position with a mask and compare, value = minus_mask - plus_mask.
TERNHD_AVX2 bool unpack_span_avx2(const uint8_t *p, int64_t n, int8_t *out) {
  const __m256i rep = _mm256_setr_epi8(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3,  //
                                       4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7);
  const __m256i plus = _mm256_set1_epi32(0x01041040), minus = _mm256_set1_epi32(0x02082080);
  __m256i bad = _mm256_setzero_si256();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    uint64_t w;
    std::memcpy(&w, p + i / 4, 8);
    const __m256i r = _mm256_shuffle_epi8(_mm256_set1_epi64x(static_cast<long long>(w)), rep);
    const __m256i pm = _mm256_cmpeq_epi8(_mm256_and_si256(r, plus), plus);
    const __m256i mm = _mm256_cmpeq_epi8(_mm256_and_si256(r, minus), minus);
    bad = _mm256_or_si256(bad, _mm256_and_si256(pm, mm));
    _mm256_storeu_si256(reinterpret_cast<__m256i *>(out + i), _mm256_sub_epi8(mm, pm));
  }
  bool ok = _mm256_testz_si256(bad, bad);
  return unpack_span_scalar(p + i / 4, n - i, out + i) && ok;
}

// ----------------------------------------------------------------------------- AVX-512
TERNHD_AVX512 bool pack_span_avx512(const int8_t *t, int64_t n, uint8_t *out) {
  const __m512i one = _mm512_set1_epi8(1), two = _mm512_set1_epi8(2), three = _mm512_set1_epi8(3);
  const __m512i k41 = _mm512_set1_epi16(0x0104), k161 = _mm512_set1_epi32(0x00010010);
  __mmask64 bad = 0;
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    __m512i x = _mm512_loadu_si512(t + i);
    bad |= _mm512_cmpgt_epu8_mask(_mm512_add_epi8(x, one), two);
    __m512i c = _mm512_min_epu8(_mm512_and_si512(x, three), two);
    __m512i d = _mm512_madd_epi16(_mm512_maddubs_epi16(c, k41), k161);
    _mm_storeu_si128(reinterpret_cast<__m128i *>(out + i / 4), _mm512_cvtepi32_epi8(d));
  }
  return pack_span_scalar(t + i, n - i, out + i / 4) && bad == 0;
}

// 16 bytes -> 64 trits: widen each 16-bit pair of bytes to a qword, pick every 2-bit code with
// vpmultishiftqb (bit offsets 6,4,2,0 of the first byte, 14,12,10,8 of the second), then map
// codes to values with a byte shuffle.
TERNHD_AVX512 bool unpack_span_avx512(const uint8_t *p, int64_t n, int8_t *out) {
  const __m512i ctrl = _mm512_set1_epi64(0x08'0A'0C'0E'00'02'04'06LL);
  const __m512i lut = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, -1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0));
  const __m512i three = _mm512_set1_epi8(3);
  __mmask64 bad = 0;
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i *>(p + i / 4));
    __m512i q = _mm512_cvtepu16_epi64(x);
    __m512i c = _mm512_and_si512(_mm512_multishift_epi64_epi8(ctrl, q), three);
    bad |= _mm512_cmpeq_epi8_mask(c, three);
    _mm512_storeu_si512(out + i, _mm512_shuffle_epi8(lut, c));
  }
  return unpack_span_scalar(p + i / 4, n - i, out + i) && bad == 0;
}
#endif  // TERNHD_X86

#if TERNHD_NEON
// ----------------------------------------------------------------------------- NEON (aarch64)
// 32 int8 -> 8 bytes: code = min(t & 3, 2) maps {0, 1, -1} to {0, 1, 2}; a per-lane shift by
// (6, 4, 2, 0) and two widening pairwise adds join four codes into c0<<6|c1<<4|c2<<2|c3.
static inline uint8x8_t pack32_neon(const int8_t *t, uint8x16_t &bad) {
  static const int8_t kShift[16] = {6, 4, 2, 0, 6, 4, 2, 0, 6, 4, 2, 0, 6, 4, 2, 0};
  const int8x16_t sh = vld1q_s8(kShift);
  const uint8x16_t one = vdupq_n_u8(1), two = vdupq_n_u8(2), three = vdupq_n_u8(3);
  uint32x4_t s[2];
  for (int h = 0; h < 2; ++h) {
    const uint8x16_t x = vld1q_u8(reinterpret_cast<const uint8_t *>(t + 16 * h));
    bad = vorrq_u8(bad, vcgtq_u8(vaddq_u8(x, one), two));  // valid iff x + 1 (unsigned) <= 2
    const uint8x16_t c = vshlq_u8(vminq_u8(vandq_u8(x, three), two), sh);
    s[h] = vpaddlq_u16(vpaddlq_u8(c));
  }
  return vmovn_u16(vcombine_u16(vmovn_u32(s[0]), vmovn_u32(s[1])));
}

bool pack_span_neon(const int8_t *t, int64_t n, uint8_t *out) {
  uint8x16_t bad = vdupq_n_u8(0);
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) vst1_u8(out + i / 4, pack32_neon(t + i, bad));
  const bool ok = vmaxvq_u8(bad) == 0;
  return pack_span_scalar(t + i, n - i, out + i / 4) && ok;
}

// 16 bytes -> 64 trits: a table lookup replicates each byte 4 times, a per-lane shift by
// (-6, -4, -2, 0) and a mask leave each 2-bit code, a second lookup maps codes to {0, 1, -1, 0}.
bool unpack_span_neon(const uint8_t *p, int64_t n, int8_t *out) {
  static const int8_t kShift[16] = {-6, -4, -2, 0, -6, -4, -2, 0, -6, -4, -2, 0, -6, -4, -2, 0};
  static const uint8_t kRep[16] = {0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3};
  static const uint8_t kLut[16] = {0, 1, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  const int8x16_t sh = vld1q_s8(kShift);
  const uint8x16_t rep = vld1q_u8(kRep), lut = vld1q_u8(kLut), three = vdupq_n_u8(3), four = vdupq_n_u8(4);
  uint8x16_t bad = vdupq_n_u8(0);
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    const uint8x16_t x = vld1q_u8(p + i / 4);
    uint8x16_t idx = rep;
    for (int g = 0; g < 4; ++g, idx = vaddq_u8(idx, four)) {
      const uint8x16_t c = vandq_u8(vshlq_u8(vqtbl1q_u8(x, idx), sh), three);
      bad = vorrq_u8(bad, vceqq_u8(c, three));
      vst1q_s8(out + i + 16 * g, vreinterpretq_s8_u8(vqtbl1q_u8(lut, c)));
    }
  }
  const bool ok = vmaxvq_u8(bad) == 0;
  return unpack_span_scalar(p + i / 4, n - i, out + i) && ok;
}
#endif  // TERNHD_NEON

// ----------------------------------------------------------------------------- row drivers
namespace {
constexpr int64_t kChunkTrits = 1 << 18;  // work unit for threads when rows are byte aligned

// Calls span(first_trit, n_trits, first_byte) over a rows x dim matrix in thread-sized pieces and
// returns false when any call did. Byte-aligned rows (dim % 4 == 0) make the matrix one long row,
// split in chunks of whole bytes; otherwise each row is its own span.
template <class Span>
bool for_each_span(int64_t rows, int64_t dim, Span span) {
  std::atomic<bool> ok{true};
  if (dim % 4 == 0) {
    const int64_t total = rows * dim;
    parallel_for(ceil_div(total, kChunkTrits), [&](int64_t c) {
      const int64_t lo = c * kChunkTrits, n = std::min(kChunkTrits, total - lo);
      if (!span(lo, n, lo / 4)) ok.store(false);
    });
  } else {
    const int64_t nb = ceil_div(dim, 4);
    const int64_t per = std::max<int64_t>(1, kChunkTrits / std::max<int64_t>(dim, 1));
    parallel_for(ceil_div(rows, per), [&](int64_t c) {
      for (int64_t r = c * per; r < std::min(rows, (c + 1) * per); ++r)
        if (!span(r * dim, dim, r * nb)) ok.store(false);
    });
  }
  return ok.load();
}
}  // namespace

void pack_rows(const int8_t *src, int64_t rows, int64_t dim, uint8_t *dst, Simd simd) {
  if (rows < 0 || dim < 0) throw std::invalid_argument("t: size does not match rows * dim");
  if (!for_each_span(rows, dim,
                     [&](int64_t t0, int64_t n, int64_t b0) { return pack_span(src + t0, n, dst + b0, simd); }))
    throw std::invalid_argument("t: values must be -1, 0 or 1");
}

void unpack_rows(const uint8_t *src, int64_t rows, int64_t dim, int8_t *dst, Simd simd) {
  if (rows < 0 || dim < 0) throw std::invalid_argument("dim: must be non-negative");
  if (!for_each_span(rows, dim,
                     [&](int64_t t0, int64_t n, int64_t b0) { return unpack_span(src + b0, n, dst + t0, simd); }))
    throw std::invalid_argument("packed: contains the invalid 2-bit code 0b11");
}

}  // namespace ternhd
