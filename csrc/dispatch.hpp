// SIMD paths and the one run-time selector every kernel family uses.
//
// Every kernel family has a scalar reference and per-ISA variants compiled with function-level
// target attributes (no global -mavx* flag, so the library runs on any x86-64 CPU); on aarch64,
// NEON variants (NEON is baseline there). Code for one architecture is compiled only there
// (TERNHD_X86 / TERNHD_NEON); a table slot with no variant on this build is null and `pick` falls
// back to scalar. A family lists its variants once in a `Variants<Fn>` table; `pick(table, simd)`
// returns the one for a path.
// The active path is chosen from cpuid and can be forced with TERNHD_SIMD-style names through
// parse_simd / set_active_simd.
#pragma once

#include <cstdint>
#include <string>

namespace ternhd {

// The target architecture: x86 SIMD code (immintrin.h, target attributes, cpuid) is compiled only
// under TERNHD_X86, NEON code only under TERNHD_NEON (aarch64, where NEON is baseline).
#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__) || defined(_M_IX86)
#define TERNHD_X86 1
#else
#define TERNHD_X86 0
#endif
#if defined(__aarch64__) || defined(_M_ARM64)
#define TERNHD_NEON 1
#else
#define TERNHD_NEON 0
#endif
// A table entry that exists only on x86 / only with NEON (null elsewhere: pick falls back to scalar).
#if TERNHD_X86
#define TERNHD_X86_ONLY(fn) fn
#else
#define TERNHD_X86_ONLY(fn) nullptr
#endif
#if TERNHD_NEON
#define TERNHD_NEON_ONLY(fn) fn
#else
#define TERNHD_NEON_ONLY(fn) nullptr
#endif

enum class Simd : int { scalar = 0, avx2 = 1, avx512 = 2, neon = 3 };
constexpr Simd kAllSimd[] = {Simd::scalar, Simd::avx2, Simd::avx512, Simd::neon};

const char *simd_name(Simd s);
bool simd_supported(Simd s);               // does this CPU (and OS) run that path?
Simd best_simd();                          // the best path this CPU runs
Simd active_simd();                        // the path the Python bindings use now
void set_active_simd(Simd s);              // throws std::invalid_argument when unsupported
Simd parse_simd(const std::string &name);  // throws std::invalid_argument on unknown names

#if TERNHD_X86 && (defined(__GNUC__) || defined(__clang__))
#define TERNHD_AVX2 __attribute__((target("avx2,bmi,bmi2,popcnt,fma")))
#define TERNHD_AVX512 \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vpopcntdq,avx512vbmi,avx2,bmi,bmi2,popcnt")))
#else  // MSVC compiles every intrinsic without a target attribute; other targets have no x86 code
#define TERNHD_AVX2
#define TERNHD_AVX512
#endif
#if defined(_MSC_VER) && !defined(__clang__)
#define TERNHD_INLINE __forceinline
#else
#define TERNHD_INLINE inline __attribute__((always_inline))
#endif

// One entry per SIMD path. Kernels are selected per call (cheap: one indexed load), so the path a
// caller passes is the path that runs; the tests rely on that to compare every variant.
// A null slot (no variant of that family for that path, or not on this architecture) runs scalar.
template <typename Fn>
struct Variants {
  Fn scalar;
  Fn avx2;
  Fn avx512;
  Fn neon = nullptr;
};

template <typename Fn>
constexpr Fn pick(const Variants<Fn> &v, Simd s) {
  const Fn f = s == Simd::avx512 ? v.avx512 : s == Simd::avx2 ? v.avx2 : s == Simd::neon ? v.neon : v.scalar;
  return f ? f : v.scalar;
}

// Ceil division for non-negative values.
constexpr int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace ternhd
