// 2-bit ternary packing (the normative layout of DESIGN.md): trit i of a row lives in byte i/4 at
// bit offset 6 - 2*(i%4); code 00 = 0, 01 = +1, 10 = -1, 11 invalid.
#pragma once
#include <cstdint>

#include "common.hpp"

namespace ternhd {

// Packs n trits (int8 in {-1, 0, 1}) into ceil(n/4) bytes, padding trits 0.
// Returns false when some input value is outside {-1, 0, 1} (output then unspecified).
bool pack_span(const int8_t *t, int64_t n, uint8_t *out, Simd simd);
bool pack_span_scalar(const int8_t *t, int64_t n, uint8_t *out);
bool pack_span_avx2(const int8_t *t, int64_t n, uint8_t *out);
bool pack_span_avx512(const int8_t *t, int64_t n, uint8_t *out);

// Unpacks n trits from ceil(n/4) bytes. Returns false when a trit inside the n has code 11.
bool unpack_span(const uint8_t *p, int64_t n, int8_t *out, Simd simd);
bool unpack_span_scalar(const uint8_t *p, int64_t n, int8_t *out);
bool unpack_span_avx2(const uint8_t *p, int64_t n, int8_t *out);
bool unpack_span_avx512(const uint8_t *p, int64_t n, int8_t *out);

}  // namespace ternhd
