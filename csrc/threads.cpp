// The fork-join thread helper (see threads.hpp).
#include "threads.hpp"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace ternhd {

namespace {
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
