// CPU feature detection and the active SIMD path.
#include <atomic>
#include <stdexcept>

#include "dispatch.hpp"

namespace ternhd {

const char *simd_name(Simd s) {
  switch (s) {
    case Simd::scalar: return "scalar";
    case Simd::avx2: return "avx2";
    case Simd::avx512: return "avx512";
  }
  return "unknown";
}

bool simd_supported(Simd s) {
#if defined(__x86_64__) || defined(__i386__)
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
  }
  return false;
#else
  return s == Simd::scalar;
#endif
}

Simd best_simd() {
  if (simd_supported(Simd::avx512)) return Simd::avx512;
  if (simd_supported(Simd::avx2)) return Simd::avx2;
  return Simd::scalar;
}

Simd parse_simd(const std::string &name) {
  if (name == "scalar") return Simd::scalar;
  if (name == "avx2") return Simd::avx2;
  if (name == "avx512") return Simd::avx512;
  throw std::invalid_argument("simd: unknown SIMD path '" + name + "' (expected scalar, avx2 or avx512)");
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
