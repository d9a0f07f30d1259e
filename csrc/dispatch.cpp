// Run-time SIMD dispatch and the thread helper.
#include <algorithm>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>

#include "common.hpp"

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
std::atomic<int> g_threads{0};

int default_threads() {
  if (const char *env = std::getenv("TERNHD_NUM_THREADS")) {
    char *end = nullptr;
    long v = std::strtol(env, &end, 10);
    if (end != env && v > 0 && v <= 4096) return static_cast<int>(v);
  }
  unsigned hc = std::thread::hardware_concurrency();
  return hc == 0 ? 1 : static_cast<int>(hc);
}
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

int num_threads() {
  int n = g_threads.load(std::memory_order_relaxed);
  return n > 0 ? n : default_threads();
}

void set_num_threads(int n) { g_threads.store(n > 0 ? n : 0); }

void parallel_for(int64_t n_tasks, const std::function<void(int64_t)> &fn, int64_t min_tasks_per_thread) {
  if (n_tasks <= 0) return;
  if (min_tasks_per_thread < 1) min_tasks_per_thread = 1;
  int64_t nt = num_threads();
  nt = std::min<int64_t>(nt, n_tasks / min_tasks_per_thread);
  if (nt <= 1) {
    for (int64_t i = 0; i < n_tasks; ++i) fn(i);
    return;
  }
  std::atomic<int64_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto worker = [&]() {
    try {
      for (;;) {
        int64_t i = next.fetch_add(1, std::memory_order_relaxed);
        if (i >= n_tasks) break;
        fn(i);
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
      next.store(n_tasks);
    }
  };
  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(nt - 1));
  for (int64_t t = 1; t < nt; ++t) threads.emplace_back(worker);
  worker();
  for (auto &th : threads) th.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace ternhd
