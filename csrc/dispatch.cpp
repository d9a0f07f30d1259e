// CPU feature detection and the active SIMD path.
#include <atomic>
#include <stdexcept>

#include "dispatch.hpp"

#if TERNHD_X86 && defined(_MSC_VER) && !defined(__clang__)
#include <immintrin.h>
#include <intrin.h>
#endif

namespace ternhd {

#if TERNHD_X86 && defined(_MSC_VER) && !defined(__clang__)
namespace {
// MSVC has no __builtin_cpu_supports: read cpuid leaf 7 / leaf 1 and check that the OS saves the
// AVX (XCR0 bits 1-2) and AVX-512 (bits 5-7) register state.
struct CpuFeatures {
  bool avx2 = false, avx512 = false;
  CpuFeatures() {
    int r1[4], r7[4];
    __cpuid(r1, 0);
    if (r1[0] < 7) return;
    __cpuid(r1, 1);
    __cpuidex(r7, 7, 0);
    const bool osxsave = (r1[2] >> 27) & 1, popcnt = (r1[2] >> 23) & 1, fma = (r1[2] >> 12) & 1;
    if (!osxsave) return;
    const unsigned long long xcr0 = _xgetbv(0);
    const bool os_avx = (xcr0 & 0x6) == 0x6, os_avx512 = (xcr0 & 0xE6) == 0xE6;
    const auto b7 = [&](int reg, int bit) { return ((r7[reg] >> bit) & 1) != 0; };
    avx2 = os_avx && popcnt && fma && b7(1, 5) && b7(1, 3) && b7(1, 8);                // avx2, bmi, bmi2
    avx512 = avx2 && os_avx512 && b7(1, 16) && b7(1, 30) && b7(1, 31) && b7(1, 17) &&  // f, bw, vl, dq
             b7(2, 14) && b7(2, 1);                                                    // vpopcntdq, vbmi
  }
};
}  // namespace
#endif

const char *simd_name(Simd s) {
  switch (s) {
    case Simd::scalar: return "scalar";
    case Simd::avx2: return "avx2";
    case Simd::avx512: return "avx512";
    case Simd::neon: return "neon";
  }
  return "unknown";
}

bool simd_supported(Simd s) {
#if TERNHD_X86 && defined(_MSC_VER) && !defined(__clang__)
  static const CpuFeatures f;
  return s == Simd::scalar || (s == Simd::avx2 && f.avx2) || (s == Simd::avx512 && f.avx512);
#elif TERNHD_X86
  __builtin_cpu_init();
  switch (s) {
    case Simd::scalar: return true;
    case Simd::avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("popcnt");
    case Simd::avx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("avx512vpopcntdq") && __builtin_cpu_supports("avx512vbmi") &&
             simd_supported(Simd::avx2);
    case Simd::neon: return false;
  }
  return false;
#elif TERNHD_NEON
  return s == Simd::scalar || s == Simd::neon;  // NEON (ASIMD) is baseline on aarch64
#else
  return s == Simd::scalar;
#endif
}

Simd best_simd() {
  if (simd_supported(Simd::avx512)) return Simd::avx512;
  if (simd_supported(Simd::avx2)) return Simd::avx2;
  if (simd_supported(Simd::neon)) return Simd::neon;
  return Simd::scalar;
}

Simd parse_simd(const std::string &name) {
  if (name == "scalar") return Simd::scalar;
  if (name == "avx2") return Simd::avx2;
  if (name == "avx512") return Simd::avx512;
  if (name == "neon") return Simd::neon;
  throw std::invalid_argument("simd: unknown SIMD path '" + name + "' (expected scalar, avx2, avx512 or neon)");
}

namespace {
std::atomic<int> g_simd{-1};
}  // namespace

Simd active_simd() {
  int v = g_simd.load(std::memory_order_relaxed);
  if (v < 0) {
    v = static_cast<int>(best_simd());
    g_simd.store(v);
  }
  return static_cast<Simd>(v);
}

void set_active_simd(Simd s) {
  if (!simd_supported(s))
    throw std::invalid_argument(std::string("simd: this CPU does not support the '") + simd_name(s) + "' path");
  g_simd.store(static_cast<int>(s));
}

}  // namespace ternhd
