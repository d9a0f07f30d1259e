// Random packed rows for the benchmark drivers in this folder: rows x nb bytes, each byte 4 trits
// drawn uniformly from {0, +1, -1} (codes 0b00, 0b01, 0b10).
#pragma once
#include <cstdint>
#include <random>
#include <vector>

inline std::vector<uint8_t> random_packed_rows(std::mt19937_64 &rng, int64_t rows, int64_t nb) {
  std::vector<uint8_t> v(static_cast<size_t>(rows * nb));
  for (auto &b : v) {
    uint8_t x = 0;
    for (int t = 0; t < 4; ++t) x |= static_cast<uint8_t>((rng() % 3) << (2 * t));
    b = x;
  }
  return v;
}
