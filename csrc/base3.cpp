// Base-3 stream encoding and decoding (contract in base3.hpp). The kernels are table driven (a
// 1024-entry table maps five 2-bit codes to a byte, a 243-entry table the reverse), which is faster
// than any shuffle formulation we tried for this ratio of 20 trits = 5 packed bytes = 4 base-3
// bytes; the same code runs on every SIMD path.
#include "base3.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <stdexcept>

#include "bits.hpp"
#include "dispatch.hpp"
#include "threads.hpp"

namespace ternhd {
namespace {

constexpr uint8_t kBadByte = 0xFF;       // enc10 marker: one of the five codes is 0b11
constexpr uint16_t kBadDigits = 0xFFFF;  // dec marker: byte >= 243

struct Base3Tables {
  uint8_t enc10[1024];    // five 2-bit codes (first code in bits 9..8) -> base-3 byte
  uint16_t dec[256];      // base-3 byte -> five 2-bit codes (first code in bits 9..8)
  uint8_t digit[256][5];  // base-3 byte -> its five digits, most significant first
  Base3Tables() {
    for (int v = 0; v < 1024; ++v) {
      int byte = 0;
      bool ok = true;
      for (int k = 0; k < 5; ++k) {
        int c = (v >> (8 - 2 * k)) & 3;
        if (c == 3) ok = false;
        byte = byte * 3 + c;
      }
      enc10[v] = ok ? static_cast<uint8_t>(byte) : kBadByte;
    }
    for (int b = 0; b < 256; ++b) {
      if (b >= 243) {
        dec[b] = kBadDigits;
        std::memset(digit[b], 0, 5);
        continue;
      }
      int rest = b, codes = 0;
      for (int k = 4; k >= 0; --k) {
        digit[b][k] = static_cast<uint8_t>(rest % 3);
        rest /= 3;
      }
      for (int k = 0; k < 5; ++k) codes = (codes << 2) | digit[b][k];
      dec[b] = static_cast<uint16_t>(codes);
    }
  }
};
const Base3Tables kB3;

constexpr int64_t kTaskBytes = 1 << 16;  // output bytes per thread task

// Generic encoder for output bytes [j0, j1): reads trit t = 5*j + k of the row-concatenated stream.
bool encode_range(const uint8_t *p, int64_t dim, int64_t nb, int64_t total, int64_t j0, int64_t j1, uint8_t *out) {
  bool ok = true;
  int64_t t = 5 * j0;
  int64_t r = dim ? t / dim : 0, c = dim ? t % dim : 0;
  for (int64_t j = j0; j < j1; ++j) {
    int byte = 0;
    for (int k = 0; k < 5; ++k, ++t) {
      int d = 0;
      if (t < total) {
        d = (p[r * nb + (c >> 2)] >> (6 - 2 * (c & 3))) & 3;
        if (d == 3) ok = false, d = 0;
        if (++c == dim) c = 0, ++r;
      }
      byte = byte * 3 + d;
    }
    out[j] = static_cast<uint8_t>(byte);
  }
  return ok;
}

// Generic decoder for trits [t0, t1) of the stream into zero-initialised packed rows (OR writes;
// callers give disjoint whole packed bytes to each thread).
void decode_range(const uint8_t *in, int64_t dim, int64_t nb, int64_t t0, int64_t t1, uint8_t *p) {
  if (t0 >= t1) return;
  int64_t r = t0 / dim, c = t0 % dim, j = t0 / 5;
  int k = static_cast<int>(t0 % 5);
  for (int64_t t = t0; t < t1; ++t) {
    p[r * nb + (c >> 2)] |= static_cast<uint8_t>(kB3.digit[in[j]][k] << (6 - 2 * (c & 3)));
    if (++k == 5) k = 0, ++j;
    if (++c == dim) c = 0, ++r;
  }
}

bool checked_mul(int64_t a, int64_t b, int64_t &out) { return mul_overflow_free(a, b, out); }

}  // namespace

Base3Sizes base3_sizes(int64_t rows, int64_t dim) {
  if (rows < 0) throw std::invalid_argument("rows: must be non-negative");
  if (dim < 0) throw std::invalid_argument("dim: must be non-negative");
  Base3Sizes s;
  if (!checked_mul(rows, dim, s.trits) || !checked_mul(rows, ceil_div(dim, 4), s.packed_bytes))
    throw std::invalid_argument("dim: rows * dim overflows");
  s.stream_bytes = ceil_div(s.trits, 5);
  return s;
}

void base3_encode(const uint8_t *src, int64_t rows, int64_t dim, uint8_t *dst) {
  const Base3Sizes sz = base3_sizes(rows, dim);
  const int64_t nb = ceil_div(dim, 4), total = sz.trits, nout = sz.stream_bytes;
  std::atomic<bool> ok{true};
  {
    if (dim % 4 == 0) {
      // The packed matrix is one stream of codes: 5 packed bytes (20 trits) -> 4 base-3 bytes.
      const int64_t groups = total / 20;
      const int64_t per = kTaskBytes / 4;
      parallel_for(ceil_div(groups, per), [&](int64_t task) {
        const int64_t g1 = std::min(groups, (task + 1) * per);
        uint8_t bad = 0;
        for (int64_t g = task * per; g < g1; ++g) {
          const uint8_t *s = src + 5 * g;
          uint64_t v = (uint64_t(s[0]) << 32) | (uint64_t(s[1]) << 24) | (uint64_t(s[2]) << 16) |
                       (uint64_t(s[3]) << 8) | uint64_t(s[4]);
          uint8_t *d = dst + 4 * g;
          for (int k = 0; k < 4; ++k) {
            uint8_t b = kB3.enc10[(v >> (30 - 10 * k)) & 1023];
            bad |= static_cast<uint8_t>(b == kBadByte);
            d[k] = b;
          }
        }
        if (bad) ok.store(false);
      });
      if (!encode_range(src, dim, nb, total, 4 * groups, nout, dst)) ok.store(false);
    } else {
      parallel_for(ceil_div(nout, kTaskBytes), [&](int64_t task) {
        const int64_t j0 = task * kTaskBytes, j1 = std::min(nout, j0 + kTaskBytes);
        if (!encode_range(src, dim, nb, total, j0, j1, dst)) ok.store(false);
      });
    }
  }
  if (!ok.load()) throw std::invalid_argument("packed: contains the invalid 2-bit code 0b11");
}

void base3_decode(const uint8_t *src, int64_t rows, int64_t dim, uint8_t *dst) {
  const Base3Sizes sz = base3_sizes(rows, dim);
  const int64_t nb = ceil_div(dim, 4), total = sz.trits, pbytes = sz.packed_bytes, nin = sz.stream_bytes;
  // Validate first (bytes < 243, zero padding digits) so the decoders below never see bad input.
  bool valid = true;
  {
    uint8_t hi = 0;
    for (int64_t j = 0; j < nin; ++j) hi = std::max(hi, src[j]);
    if (nin && hi >= 243) valid = false;
    if (valid && total % 5) {
      const uint8_t *dg = kB3.digit[src[nin - 1]];
      for (int64_t k = total % 5; k < 5; ++k)
        if (dg[k]) valid = false;
    }
  }
  if (!valid) throw std::invalid_argument("data: not a canonical base-3 stream (byte >= 243 or non-zero padding)");
  {
    if (dim % 4 == 0) {
      const int64_t groups = total / 20;
      const int64_t per = kTaskBytes / 4;
      parallel_for(ceil_div(groups, per), [&](int64_t task) {
        const int64_t g1 = std::min(groups, (task + 1) * per);
        for (int64_t g = task * per; g < g1; ++g) {
          const uint8_t *s = src + 4 * g;
          uint64_t v = (uint64_t(kB3.dec[s[0]]) << 30) | (uint64_t(kB3.dec[s[1]]) << 20) |
                       (uint64_t(kB3.dec[s[2]]) << 10) | uint64_t(kB3.dec[s[3]]);
          uint8_t *d = dst + 5 * g;
          d[0] = uint8_t(v >> 32), d[1] = uint8_t(v >> 24), d[2] = uint8_t(v >> 16), d[3] = uint8_t(v >> 8);
          d[4] = uint8_t(v);
        }
      });
      const int64_t tail0 = 5 * groups;                  // first packed byte not written above
      std::fill(dst + tail0, dst + pbytes, uint8_t{0});  // (no memset: dst may be null when empty)
      decode_range(src, dim, nb, 20 * groups, total, dst);
    } else {
      std::fill(dst, dst + pbytes, uint8_t{0});
      // Split by rows so no two threads write the same packed byte.
      const int64_t per = std::max<int64_t>(1, (4 * kTaskBytes) / std::max<int64_t>(dim, 1));
      parallel_for(ceil_div(rows, per), [&](int64_t task) {
        const int64_t r0 = task * per, r1 = std::min(rows, r0 + per);
        decode_range(src, dim, nb, r0 * dim, r1 * dim, dst);
      });
    }
  }
}

}  // namespace ternhd
