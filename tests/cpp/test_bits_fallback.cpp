// The portable branches of csrc/bits.hpp (SWAR popcount or std::popcount, and the division-based
// overflow check), which GCC and clang builds never take: .ci/clang.sh compiles this file with
// __GNUC__ and __clang__ undefined (C++17 and C++20) and checks them against exact references.
#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>

#include "bits.hpp"

int main() {
  std::mt19937_64 g(1);
  int bad = 0;
  for (int i = 0; i < 1000000; ++i) {
    uint64_t x = g() & g();
    int ref = 0;
    for (uint64_t y = x; y; y &= y - 1) ++ref;
    bad += ternhd::popcount64(x) != ref;
  }
  const int64_t M = std::numeric_limits<int64_t>::max(), m = std::numeric_limits<int64_t>::min();
  int64_t vals[] = {
      0, 1, -1,    2,    -2, 3, 1LL << 31, -(1LL << 31), 1LL << 32, 3037000499LL, 3037000500LL, -3037000500LL,
      M, m, M / 2, m / 2};
  for (int64_t a : vals)
    for (int64_t b : vals) {
      __int128 p = (__int128)a * b;
      bool fits = p >= m && p <= M;
      int64_t out = 0;
      bool ok = ternhd::mul_overflow_free(a, b, out);
      if (ok != fits || (ok && out != (int64_t)p)) {
        ++bad;
        std::printf("mul %lld %lld\n", (long long)a, (long long)b);
      }
    }
  std::printf("fallback bits: %d bad\n", bad);
  return bad != 0;
}
