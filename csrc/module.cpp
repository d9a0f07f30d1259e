// The one pybind11 module, ternhd._core: each kernel family registers its own functions.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>

#include "common.hpp"

namespace py = pybind11;

namespace ternhd {
std::vector<std::pair<std::string, RegisterFn>> &registrations() {
  static std::vector<std::pair<std::string, RegisterFn>> regs;
  return regs;
}
Registration::Registration(const char *name, RegisterFn fn) { registrations().emplace_back(name, fn); }
}  // namespace ternhd

PYBIND11_MODULE(_core, m) {
  using namespace ternhd;
  m.doc() = "ternhd native CPU kernels (C++17, run-time SIMD dispatch). Takes buffers; never links torch.";
  m.attr("__version__") = TERNHD_VERSION;

  m.def("simd_paths", []() {
    std::vector<std::string> v;
    for (Simd s : {Simd::scalar, Simd::avx2, Simd::avx512})
      if (simd_supported(s)) v.emplace_back(simd_name(s));
    return v;
  }, "SIMD paths this CPU supports, slowest first.");
  m.def("get_simd", []() { return std::string(simd_name(active_simd())); }, "The SIMD path kernels use now.");
  m.def("best_simd", []() { return std::string(simd_name(best_simd())); }, "The best SIMD path of this CPU.");
  m.def("set_simd", [](const std::string &name) { set_active_simd(parse_simd(name)); }, py::arg("name"),
        "Force a SIMD path (scalar, avx2, avx512); ValueError if this CPU lacks it.");
  m.def("get_num_threads", &num_threads, "Threads the kernels use.");
  m.def("set_num_threads", &set_num_threads, py::arg("n"), "Threads the kernels use; n <= 0 restores the default.");

  // Kernel families register themselves (see Registration in common.hpp); sort for a stable order.
  auto regs = registrations();
  std::sort(regs.begin(), regs.end());
  std::vector<std::string> families;
  for (auto &r : regs) {
    r.second(m);
    families.push_back(r.first);
  }
  m.attr("families") = families;
}
