// Float-query top-10 (Index.search's native call) over 100,000 x 4,096-trit rows (bit planes), M
// Gaussian queries, best of 5; args: threads, M, and any third argument for cosine (dot otherwise).
// Used to compare the asymmetric kernels before / after on one machine, alternating the binaries:
//   g++ -O3 -std=c++17 -Icsrc benchmarks/cpp/float_topk_driver.cpp csrc/similarity.cpp csrc/threads.cpp
//   csrc/dispatch.cpp csrc/pack.cpp -o /tmp/ft_new -lpthread (the same in a checkout of the old commit
//   for /tmp/ft_old), then /tmp/ft_old 1 64; /tmp/ft_new 1 64; ...
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>
#include "random_rows.hpp"
#include "similarity.hpp"
#include "threads.hpp"
using namespace ternhd;
int main(int argc, char **argv) {
  const int64_t N = 100000, nb = 1024, dim = 4096;
  const int64_t M = argc > 2 ? atoi(argv[2]) : 256;
  set_num_threads(argc > 1 ? atoi(argv[1]) : 1);
  std::mt19937_64 rng(1);
  std::vector<uint8_t> v = random_packed_rows(rng, N, nb);
  Planes db = to_planes(PackedRows{v.data(), N, nb}, "db");
  std::normal_distribution<float> g;
  std::vector<float> q(M * dim);
  for (auto &x : q) x = g(rng);
  std::vector<float> s(M * 10);
  std::vector<int64_t> ix(M * 10);
  double best = 1e9;
  for (int rep = 0; rep < 5; ++rep) {
    auto t0 = std::chrono::steady_clock::now();
    float_topk(q.data(), M, dim, db, 10, argc > 3 ? Metric::kCosine : Metric::kDot, s.data(), ix.data(), Simd::avx2);
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::printf("%s M=%ld best %.1f ms  (%ld %f)\n", argv[0], (long)M, best * 1e3, (long)ix[0], s[0]);
}
