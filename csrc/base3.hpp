// Base-3 payload encoding of packed ternary rows: 5 trits per byte (3^5 = 243 <= 256), 1.6 bits per
// trit instead of 2, for bandwidth-bound links (ternhd.packet encoding "base3").
//
// Stream layout (normative, docs/FORMAT.md; mirrored by ternhd.reference.base3_encode /
// base3_decode): the rows are concatenated into one stream of T = rows * dim trits (padding trits
// of the 2-bit rows are not part of it); trit t goes to byte t / 5 as base-3 digit t % 5, the first
// digit most significant:
//   byte = d0*81 + d1*27 + d2*9 + d3*3 + d4,   digit d = 0 for 0, 1 for +1, 2 for -1
// (the digit is the 2-bit code). The stream has ceil(T / 5) bytes; digits past T in the last byte
// are 0. Decoding rejects bytes >= 243 and non-zero padding digits (one canonical stream per vector
// set), and encoding rejects the invalid 2-bit code 0b11.
//
// One table-driven implementation serves every SIMD path (no variants).
#pragma once
#include <cstdint>

namespace ternhd {

// Sizes of rows x dim trits: T = rows * dim, packed bytes rows * ceil(dim/4), stream bytes ceil(T/5).
// Throws std::invalid_argument ("rows: ...", "dim: ...") on negative sizes or int64 overflow.
struct Base3Sizes {
  int64_t trits = 0, packed_bytes = 0, stream_bytes = 0;
};
Base3Sizes base3_sizes(int64_t rows, int64_t dim);

// packed (rows, ceil(dim/4)) -> out (stream_bytes). Throws ("packed: ...") on code 0b11.
void base3_encode(const uint8_t *packed, int64_t rows, int64_t dim, uint8_t *out);
// data (stream_bytes) -> out (rows, ceil(dim/4)). Throws ("data: ...") on a non-canonical stream;
// out is untouched then.
void base3_decode(const uint8_t *data, int64_t rows, int64_t dim, uint8_t *out);

}  // namespace ternhd
