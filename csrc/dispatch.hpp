// SIMD paths and the one run-time selector every kernel family uses.
//
// Every kernel family has a scalar reference and per-ISA variants compiled with function-level
// target attributes (no global -mavx* flag, so the library runs on any x86-64 CPU). A family lists
// its variants once in a `Variants<Fn>` table; `pick(table, simd)` returns the one for a path.
// The active path is chosen from cpuid and can be forced with TERNHD_SIMD-style names through
// parse_simd / set_active_simd.
#pragma once

#include <cstdint>
#include <string>

namespace ternhd {

enum class Simd : int { scalar = 0, avx2 = 1, avx512 = 2 };
constexpr Simd kAllSimd[] = {Simd::scalar, Simd::avx2, Simd::avx512};

const char *simd_name(Simd s);
bool simd_supported(Simd s);               // does this CPU (and OS) run that path?
Simd best_simd();                          // the best path this CPU runs
Simd active_simd();                        // the path the Python bindings use now
void set_active_simd(Simd s);              // throws std::invalid_argument when unsupported
Simd parse_simd(const std::string &name);  // throws std::invalid_argument on unknown names

#define TERNHD_AVX2 __attribute__((target("avx2,bmi,bmi2,popcnt,fma")))
#define TERNHD_AVX512 \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vpopcntdq,avx512vbmi,avx2,bmi,bmi2,popcnt")))
#define TERNHD_INLINE inline __attribute__((always_inline))

// One entry per SIMD path. Kernels are selected per call (cheap: one indexed load), so the path a
// caller passes is the path that runs; the tests rely on that to compare every variant.
template <typename Fn>
struct Variants {
  Fn scalar;
  Fn avx2;
  Fn avx512;
};

template <typename Fn>
constexpr Fn pick(const Variants<Fn> &v, Simd s) {
  return s == Simd::avx512 ? v.avx512 : s == Simd::avx2 ? v.avx2 : v.scalar;
}

// Ceil division for non-negative values.
constexpr int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace ternhd
