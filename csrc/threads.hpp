// A small fork-join helper on std::thread (no OpenMP runtime to clash with torch's).
#pragma once

#include <cstdint>
#include <functional>

namespace ternhd {

int num_threads();            // threads kernels may use (>= 1)
void set_num_threads(int n);  // n <= 0 restores the default (TERNHD_NUM_THREADS or all cores)

// Runs fn(task) for task in [0, n_tasks) on up to num_threads() threads, dynamic scheduling.
// `min_tasks_per_thread` keeps tiny jobs serial. The first exception of a worker is rethrown here.
void parallel_for(int64_t n_tasks, const std::function<void(int64_t)> &fn, int64_t min_tasks_per_thread = 1);

}  // namespace ternhd
