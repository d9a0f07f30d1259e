// Shared plumbing of the ternhd native core: SIMD path selection, the thread pool, errors.
// No torch headers here or anywhere in csrc/: the module takes plain buffers.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace ternhd {

// ---------------------------------------------------------------------------------------------
// SIMD paths. Every kernel family has a serial (scalar) reference and per-ISA variants compiled
// with function-level target attributes; the active path is chosen at run time from cpuid and
// can be forced with TERNHD_SIMD=scalar|avx2|avx512 or set_simd().
enum class Simd : int { scalar = 0, avx2 = 1, avx512 = 2 };

const char *simd_name(Simd s);
bool simd_supported(Simd s);   // does this CPU (and OS) run that path?
Simd best_simd();              // the best path this CPU runs
Simd active_simd();            // the path kernels use now
void set_active_simd(Simd s);  // throws std::invalid_argument when unsupported
Simd parse_simd(const std::string &name);  // throws std::invalid_argument on unknown names

#define TERNHD_AVX2 __attribute__((target("avx2,bmi,bmi2,popcnt,fma")))
#define TERNHD_AVX512 \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vpopcntdq,avx512vbmi,avx2,bmi,bmi2,popcnt")))

// ---------------------------------------------------------------------------------------------
// Threads. A small fork-join helper on std::thread (no OpenMP runtime to clash with torch's).
int num_threads();           // threads kernels may use (>= 1)
void set_num_threads(int n); // n <= 0 restores the default (TERNHD_NUM_THREADS or all cores)

// Runs fn(task) for task in [0, n_tasks) on up to num_threads() threads, dynamic scheduling.
// `min_tasks_per_thread` keeps tiny jobs serial. Exceptions in workers are rethrown here.
void parallel_for(int64_t n_tasks, const std::function<void(int64_t)> &fn, int64_t min_tasks_per_thread = 1);

// Module registry: each kernel family file registers its bindings with a static
// `Registration reg_xxx{"name", &fn};` so adding a family never touches module.cpp.
}  // namespace ternhd
namespace pybind11 { class module_; }
namespace ternhd {
using RegisterFn = void (*)(pybind11::module_ &);
struct Registration {
  Registration(const char *name, RegisterFn fn);
};
std::vector<std::pair<std::string, RegisterFn>> &registrations();

// Ceil division for non-negative values.
inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace ternhd
