// Top-k of 64 queries (or argv[2]) over 100,000 x 4,096-trit rows (bit planes), argv[1] threads (1), AVX2, best of 5
// per metric (0 dot, 1 cosine, 2 hamming). Used to compare the top-k epilogue before / after on one machine,
// alternating the two binaries:
//   g++ -O3 -std=c++17 -Icsrc benchmarks/cpp/topk_driver.cpp csrc/similarity.cpp csrc/threads.cpp csrc/dispatch.cpp -o
//   /tmp/tk_new -lpthread (the same against `git show main:csrc/similarity.cpp` for /tmp/tk_old), then /tmp/tk_old;
//   /tmp/tk_new; ...
#include <chrono>
#include <cstdio>
#include <random>
#include <vector>
#include "random_rows.hpp"
#include "similarity.hpp"
#include "threads.hpp"
using namespace ternhd;
int main(int argc, char **argv) {
  const int64_t N = 100000, M = argc > 2 ? atoi(argv[2]) : 64, nb = 1024;
  set_num_threads(argc > 1 ? atoi(argv[1]) : 1);
  std::mt19937_64 rng(1);
  auto a = random_packed_rows(rng, M, nb), b = random_packed_rows(rng, N, nb);
  Planes pq = to_planes(PackedRows{a.data(), M, nb}, "q"), pd = to_planes(PackedRows{b.data(), N, nb}, "d");
  std::vector<float> sc(M * 10);
  std::vector<int64_t> ix(M * 10);
  for (int rep = 0; rep < 1; ++rep)
    for (Metric mt : {Metric::kCosine, Metric::kDot, Metric::kHamming}) {
      double best = 1e9;
      for (int t = 0; t < 5; ++t) {
        auto t0 = std::chrono::steady_clock::now();
        topk(pq, pd, 10, mt, sc.data(), ix.data(), Simd::avx2);
        best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      }
      std::printf("metric %d: %.1f ms %.1f Mpairs/s\n", int(mt), best * 1e3, M * N / best / 1e6);
    }
}
