// Portable bit helpers: popcount and overflow-checked multiplication without bare compiler
// builtins (GCC / clang builtins where available, C++20 <bit>, MSVC intrinsics, else portable C++).
#pragma once
#include <cstdint>
#include <limits>

#if defined(__cpp_lib_bitops) || (__cplusplus >= 202002L && __has_include(<bit>))
#include <bit>
#endif
#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
#endif

namespace ternhd {

// Number of set bits of a 64-bit word.
inline int popcount64(uint64_t x) {
#if defined(__GNUC__) || defined(__clang__)
  return __builtin_popcountll(x);
#elif defined(__cpp_lib_bitops)
  return std::popcount(x);
#elif defined(_MSC_VER) && defined(_M_X64)
  return static_cast<int>(__popcnt64(x));  // x86-64 CPUs this library supports all have POPCNT
#else
  x = x - ((x >> 1) & 0x5555555555555555ULL);  // SWAR
  x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
  x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0FULL;
  return static_cast<int>((x * 0x0101010101010101ULL) >> 56);
#endif
}

// out = a * b; false (out unspecified) when the product overflows int64.
inline bool mul_overflow_free(int64_t a, int64_t b, int64_t &out) {
#if defined(__GNUC__) || defined(__clang__)
  return !__builtin_mul_overflow(a, b, &out);
#else
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max(), kMin = std::numeric_limits<int64_t>::min();
  if (a > 0 ? (b > 0 ? a > kMax / b : b < kMin / a) : (b > 0 ? a < kMin / b : (a != 0 && b < kMax / a))) return false;
  out = a * b;
  return true;
#endif
}

}  // namespace ternhd
