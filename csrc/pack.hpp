// 2-bit ternary packing (the normative layout of docs/FORMAT.md): trit i of a row lives in byte
// i/4 at bit offset 6 - 2*(i%4); code 00 = 0, 01 = +1, 10 = -1, 11 invalid. Padding trits are 0.
#pragma once
#include <cstdint>

#include "dispatch.hpp"

namespace ternhd {

// ----- span kernels (one contiguous run of trits; every variant gives identical bytes)
// Packs n trits (int8 in {-1, 0, 1}) into ceil(n/4) bytes, padding trits 0.
// Returns false when some input value is outside {-1, 0, 1} (output then unspecified).
using PackSpanFn = bool (*)(const int8_t *t, int64_t n, uint8_t *out);
bool pack_span_scalar(const int8_t *t, int64_t n, uint8_t *out);
bool pack_span_avx2(const int8_t *t, int64_t n, uint8_t *out);
bool pack_span_avx512(const int8_t *t, int64_t n, uint8_t *out);
bool pack_span_neon(const int8_t *t, int64_t n, uint8_t *out);
constexpr Variants<PackSpanFn> kPackSpan{pack_span_scalar, TERNHD_X86_ONLY(pack_span_avx2),
                                         TERNHD_X86_ONLY(pack_span_avx512), TERNHD_NEON_ONLY(pack_span_neon)};
inline bool pack_span(const int8_t *t, int64_t n, uint8_t *out, Simd simd) { return pick(kPackSpan, simd)(t, n, out); }

// Unpacks n trits from ceil(n/4) bytes. Returns false when a trit inside the n has code 11.
using UnpackSpanFn = bool (*)(const uint8_t *p, int64_t n, int8_t *out);
bool unpack_span_scalar(const uint8_t *p, int64_t n, int8_t *out);
bool unpack_span_avx2(const uint8_t *p, int64_t n, int8_t *out);
bool unpack_span_avx512(const uint8_t *p, int64_t n, int8_t *out);
bool unpack_span_neon(const uint8_t *p, int64_t n, int8_t *out);
constexpr Variants<UnpackSpanFn> kUnpackSpan{unpack_span_scalar, TERNHD_X86_ONLY(unpack_span_avx2),
                                             TERNHD_X86_ONLY(unpack_span_avx512), TERNHD_NEON_ONLY(unpack_span_neon)};
inline bool unpack_span(const uint8_t *p, int64_t n, int8_t *out, Simd simd) {
  return pick(kUnpackSpan, simd)(p, n, out);
}

// ----- row operations (threaded)
// t: rows * dim int8 trits, C order -> out: rows * ceil(dim/4) bytes.
// Throws std::invalid_argument ("t: ...") on negative sizes or values outside {-1, 0, 1}.
void pack_rows(const int8_t *t, int64_t rows, int64_t dim, uint8_t *out, Simd simd);
// p: rows * ceil(dim/4) bytes -> out: rows * dim int8 trits.
// Throws std::invalid_argument ("packed: ...") on negative sizes or the code 0b11 inside a row.
void unpack_rows(const uint8_t *p, int64_t rows, int64_t dim, int8_t *out, Simd simd);

}  // namespace ternhd
