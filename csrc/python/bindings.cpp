// The pybind11 module ternhd._core: the only file under csrc/ that includes pybind11.
//
// One convention for every function: array arguments arrive as py::array and go through the
// helpers below (dtype, shape and C-contiguity checked the same way, TypeError for a dtype,
// ValueError for anything else, messages start with the argument's name); outputs are allocated
// here; the GIL is released around every kernel call. Kernels throw std::invalid_argument, which
// pybind11 turns into ValueError (std::out_of_range into IndexError, std::bad_alloc into
// MemoryError). The SIMD path is the module's active one (set_simd / TERNHD_SIMD).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#if PYBIND11_VERSION_MAJOR >= 3
#include <pybind11/native_enum.h>
#endif

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "algebra.hpp"
#include "base3.hpp"
#include "dispatch.hpp"
#include "encoder.hpp"
#include "pack.hpp"
#include "quantize.hpp"
#include "similarity.hpp"
#include "threads.hpp"

namespace py = pybind11;

namespace ternhd {
namespace {

// ----------------------------------------------------------------------------- helpers
[[noreturn]] void value_error(const char *name, const std::string &what) {
  throw std::invalid_argument(std::string(name) + ": " + what);
}
[[noreturn]] void type_error(const char *name, const std::string &what) {
  throw py::type_error(std::string(name) + ": " + what);
}

// An input array of element type T, C-contiguous. Like pybind11's array_t<T, c_style> argument
// conversion (safe casts and a contiguous copy when needed), with a named TypeError otherwise.
template <typename T>
py::array_t<T, py::array::c_style> input(const py::array &a, const char *name) {
  auto r = py::array_t<T, py::array::c_style>::ensure(a);
  if (!r) {
    PyErr_Clear();
    type_error(
        name, "dtype must be " + std::string(py::str(py::dtype::of<T>())) + ", got " + std::string(py::str(a.dtype())));
  }
  return r;
}

template <typename T>
py::array_t<T, py::array::c_style> input(const py::array &a, const char *name, py::ssize_t ndim) {
  auto r = input<T>(a, name);
  if (r.ndim() != ndim) value_error(name, "expected a " + std::to_string(ndim) + "-D array");
  return r;
}

// A float input used in place (no conversion): float32 or float64, C-contiguous.
template <typename T>
bool is(const py::array &a) {
  return a.dtype().is(py::dtype::of<T>());
}

void check_c_contiguous(const py::array &a, const char *name) {
  if (!(a.flags() & py::array::c_style)) value_error(name, "must be C-contiguous");
}

// A float32 matrix (rows, cols), used in place.
const float *float32_rows(const py::array &a, int64_t &rows, int64_t cols, const char *name) {
  if (!is<float>(a)) type_error(name, "dtype must be float32");
  if (a.ndim() != 2 || a.shape(1) != cols) value_error(name, "expected shape (rows, " + std::to_string(cols) + ")");
  check_c_contiguous(a, name);
  rows = a.shape(0);
  return static_cast<const float *>(a.data());
}

// A caller-provided output: uint8 (rows, ceil(dim/4)) packed or int8 (rows, dim) trits.
EncodeOut encode_out(py::array &out, int64_t rows, int64_t dim) {
  EncodeOut o;
  if (is<uint8_t>(out)) {
    o.packed = true;
    o.width = ceil_div(dim, 4);
  } else if (is<int8_t>(out)) {
    o.packed = false;
    o.width = dim;
  } else {
    type_error("out", "dtype must be uint8 (packed) or int8 (trits)");
  }
  if (out.ndim() != 2 || out.shape(0) != rows || out.shape(1) != o.width)
    value_error("out", "expected shape (" + std::to_string(rows) + ", " + std::to_string(o.width) + ")");
  check_c_contiguous(out, "out");
  if (!out.writeable()) value_error("out", "must be writeable");
  o.base = out.mutable_data();
  return o;
}

// A packed matrix (rows, bytes) read in place (after the usual conversion).
using Packed = py::array_t<uint8_t, py::array::c_style>;
PackedRows packed_rows(const Packed &p) { return PackedRows{p.data(), p.shape(0), p.shape(1)}; }

void check_same_width(int64_t got, int64_t want, const char *name, const char *other) {
  if (got != want)
    value_error(name,
                "packed row width " + std::to_string(got) + " does not match " + other + " " + std::to_string(want));
}

template <typename F>
auto without_gil(F &&f) -> decltype(f()) {
  py::gil_scoped_release release;
  return f();
}

// Rows x dim values in a flat or shaped array whose size must match.
void check_rows(const py::array &x, int64_t rows, int64_t dim, const char *name) {
  if (rows < 0 || dim < 0 || rows * dim != static_cast<int64_t>(x.size()))
    value_error(name, "size does not match rows * dim");
}

// ----------------------------------------------------------------------------- pack
py::array pack_rows_py(const py::array &t_in, int64_t rows, int64_t dim) {
  auto t = input<int8_t>(t_in, "t");
  check_rows(t, rows, dim, "t");
  py::array_t<uint8_t> out({rows, ceil_div(dim, 4)});
  const int8_t *src = t.data();
  uint8_t *dst = out.mutable_data();
  const Simd simd = active_simd();
  without_gil([&] { pack_rows(src, rows, dim, dst, simd); });
  return out;
}

py::array unpack_rows_py(const py::array &p_in, int64_t rows, int64_t dim) {
  auto p = input<uint8_t>(p_in, "packed");
  if (rows < 0 || dim < 0) value_error("dim", "must be non-negative");
  if (rows * ceil_div(dim, 4) != static_cast<int64_t>(p.size()))
    value_error("packed", "size does not match rows * ceil(dim / 4)");
  py::array_t<int8_t> out({rows, dim});
  const uint8_t *src = p.data();
  int8_t *dst = out.mutable_data();
  const Simd simd = active_simd();
  without_gil([&] { unpack_rows(src, rows, dim, dst, simd); });
  return out;
}

// ----------------------------------------------------------------------------- quantize
// x: float32 or float64 rows, used in place.
void check_float_rows(const py::array &x, int64_t rows, int64_t dim) {
  check_rows(x, rows, dim, "x");
  check_c_contiguous(x, "x");
  if (!is<float>(x) && !is<double>(x)) type_error("x", "dtype must be float32 or float64");
}

py::array row_std_py(const py::array &x, int64_t rows, int64_t dim) {
  check_float_rows(x, rows, dim);
  py::array_t<double> out(rows);
  double *dst = out.mutable_data();
  const Simd simd = active_simd();
  const void *src = x.data();
  const bool f32 = is<float>(x);  // read before the GIL goes
  without_gil([&] {
    if (f32)
      row_std(static_cast<const float *>(src), rows, dim, dst, simd);
    else
      row_std(static_cast<const double *>(src), rows, dim, dst, simd);
  });
  return out;
}

py::array quantize_out(int64_t rows, int64_t dim, bool packed) {
  return packed ? py::array(py::array_t<uint8_t>({rows, ceil_div(dim, 4)}))
                : py::array(py::array_t<int8_t>({rows, dim}));
}

// Thresholds: one per row (array form) or a ThresholdSpec (one-pass form).
template <typename Thr>
py::array quantize_rows_py(const py::array &x, int64_t rows, int64_t dim, const Thr &thr, bool packed) {
  py::array out = quantize_out(rows, dim, packed);
  void *dst = out.mutable_data();
  const Simd simd = active_simd();
  const void *src = x.data();
  const bool f32 = is<float>(x);  // read before the GIL goes
  without_gil([&] {
    if (f32)
      quantize_rows(static_cast<const float *>(src), rows, dim, thr, packed, dst, simd);
    else
      quantize_rows(static_cast<const double *>(src), rows, dim, thr, packed, dst, simd);
  });
  return out;
}

py::array quantize_rows_thr(const py::array &x, int64_t rows, int64_t dim, const py::array &thr_in, bool packed) {
  check_float_rows(x, rows, dim);
  auto thr = input<double>(thr_in, "thr");
  if (thr.size() != rows) value_error("thr", "expected one threshold per row");
  return quantize_rows_py(x, rows, dim, thr.data(), packed);
}

py::array quantize_rows_mode(const py::array &x, int64_t rows, int64_t dim, ThresholdMode mode, double tau, double thr,
                             int64_t kz, bool packed) {
  check_float_rows(x, rows, dim);
  const ThresholdSpec spec = make_threshold_spec(mode, tau, thr, kz, dim);
  return quantize_rows_py(x, rows, dim, spec, packed);
}

// ----------------------------------------------------------------------------- similarity
Packed packed_input(const py::array &a, const char *name) {
  auto p = input<uint8_t>(a, name);
  if (p.ndim() != 2) value_error(name, "expected a 2-D packed array");
  check_packed_width(p.shape(1), name);
  return p;
}

std::shared_ptr<Planes> planes_of(const py::array &a, const char *name) {
  Packed p = packed_input(a, name);
  const PackedRows rows = packed_rows(p);
  return std::make_shared<Planes>(without_gil([&] { return to_planes(rows, name); }));
}

py::array scores_out(Metric metric, int64_t rows, int64_t cols) {
  return metric == Metric::kCosine ? py::array(py::array_t<float>({rows, cols}))
                                   : py::array(py::array_t<int32_t>({rows, cols}));
}

// Runs a pairwise kernel into a new (rows, cols) score array.
template <typename Run>
py::array pairwise_into(Metric metric, int64_t rows, int64_t cols, Run run) {
  py::array out = scores_out(metric, rows, cols);
  void *dst = out.mutable_data();
  without_gil([&] { run(dst); });
  return out;
}

template <typename Run>
py::tuple topk_into(Metric metric, int64_t rows, int64_t k, int64_t db_rows, Run run) {
  check_topk(k, db_rows);
  py::array scores = scores_out(metric, rows, k);
  py::array_t<int64_t> idx({rows, k});
  void *s = scores.mutable_data();
  int64_t *ix = idx.mutable_data();
  without_gil([&] { run(s, ix); });
  return py::make_tuple(scores, idx);
}

py::array pairwise_py(const py::array &a, const py::array &b_in, const std::string &metric) {
  const Metric mt = parse_metric(metric);
  Packed b = packed_input(b_in, "b");
  auto pa = planes_of(a, "a");
  check_same_width(b.shape(1), pa->nbytes, "b", "a's");
  const PackedRows pb = packed_rows(b);
  const Simd simd = active_simd();
  return pairwise_into(mt, pa->rows, pb.rows, [&](void *out) { pairwise(*pa, pb, mt, out, simd, "b"); });
}

py::tuple topk_py(const py::array &q, const py::array &db_in, int64_t k, const std::string &metric) {
  const Metric mt = parse_metric(metric);
  Packed db = packed_input(db_in, "database");
  auto pq = planes_of(q, "queries");
  check_same_width(pq->nbytes, db.shape(1), "queries", "the database's");
  const PackedRows pd = packed_rows(db);
  const Simd simd = active_simd();
  return topk_into(mt, pq->rows, k, pd.rows,
                   [&](void *s, int64_t *ix) { topk(*pq, pd, k, mt, s, ix, simd, "database"); });
}

py::array index_pairwise(const Planes &self, const py::array &q, const std::string &metric) {
  const Metric mt = parse_metric(metric);
  auto pq = planes_of(q, "queries");
  check_same_width(pq->nbytes, self.nbytes, "queries", "the index's");
  const Simd simd = active_simd();
  return pairwise_into(mt, pq->rows, self.rows, [&](void *out) { pairwise(*pq, self, mt, out, simd); });
}

py::tuple index_topk(const Planes &self, const py::array &q, int64_t k, const std::string &metric) {
  const Metric mt = parse_metric(metric);
  auto pq = planes_of(q, "queries");
  check_same_width(pq->nbytes, self.nbytes, "queries", "the index's");
  const Simd simd = active_simd();
  return topk_into(mt, pq->rows, k, self.rows, [&](void *s, int64_t *ix) { topk(*pq, self, k, mt, s, ix, simd); });
}

// Asymmetric search: float32 queries (M, dim) against ternary rows -> float32 dot products (M, N).
py::array float_queries(const py::array &q_in, int64_t nbytes) {
  auto q = input<float>(q_in, "queries");
  if (q.ndim() != 2) value_error("queries", "expected 2-D float32 rows");
  if (q.shape(1) < 1 || q.shape(1) > 4 * nbytes)
    value_error("queries", "row width does not match the database (at most 4 values per packed byte)");
  return std::move(q);
}

py::array float_scores_py(const py::array &q_in, const py::array &db_in) {
  Packed db = packed_input(db_in, "database");
  py::array q = float_queries(q_in, db.shape(1));
  const PackedRows pd = packed_rows(db);
  const int64_t m = q.shape(0), dim = q.shape(1);
  py::array_t<float> out({m, pd.rows});
  float *dst = out.mutable_data();
  const float *src = static_cast<const float *>(q.data());
  const Simd simd = active_simd();
  without_gil([&] { float_scores(src, m, dim, pd, dst, simd, "database"); });
  return std::move(out);
}

py::array index_float_scores(const Planes &self, const py::array &q_in) {
  py::array q = float_queries(q_in, self.nbytes);
  const int64_t m = q.shape(0), dim = q.shape(1);
  py::array_t<float> out({m, self.rows});
  float *dst = out.mutable_data();
  const float *src = static_cast<const float *>(q.data());
  const Simd simd = active_simd();
  without_gil([&] { float_scores(src, m, dim, self, dst, simd); });
  return std::move(out);
}

// Asymmetric top-k: float32 queries (M, dim) -> float32 scores (M, k) and int64 rows (M, k).
template <typename Run>
py::tuple float_topk_into(int64_t rows, int64_t k, int64_t db_rows, Run run) {
  check_topk(k, db_rows);
  py::array_t<float> scores({rows, k});
  py::array_t<int64_t> idx({rows, k});
  float *s = scores.mutable_data();
  int64_t *ix = idx.mutable_data();
  without_gil([&] { run(s, ix); });
  return py::make_tuple(scores, idx);
}

py::tuple float_topk_py(const py::array &q_in, const py::array &db_in, int64_t k, const std::string &metric) {
  const Metric mt = parse_metric(metric);
  Packed db = packed_input(db_in, "database");
  py::array q = float_queries(q_in, db.shape(1));
  const PackedRows pd = packed_rows(db);
  const int64_t m = q.shape(0), dim = q.shape(1);
  const float *src = static_cast<const float *>(q.data());
  const Simd simd = active_simd();
  return float_topk_into(m, k, pd.rows,
                         [&](float *s, int64_t *ix) { float_topk(src, m, dim, pd, k, mt, s, ix, simd, "database"); });
}

py::tuple index_float_topk(const Planes &self, const py::array &q_in, int64_t k, const std::string &metric) {
  const Metric mt = parse_metric(metric);
  py::array q = float_queries(q_in, self.nbytes);
  const int64_t m = q.shape(0), dim = q.shape(1);
  const float *src = static_cast<const float *>(q.data());
  const Simd simd = active_simd();
  return float_topk_into(m, k, self.rows,
                         [&](float *s, int64_t *ix) { float_topk(src, m, dim, self, k, mt, s, ix, simd); });
}

void index_append(Planes &self, const py::array &rows_in) {
  Packed p = packed_input(rows_in, "vectors");
  append_rows(self, packed_rows(p), "vectors");  // the GIL stays held: no search runs meanwhile
}

void index_keep(Planes &self, const py::array &keep_in) {
  auto keep = input<uint8_t>(keep_in, "keep");
  if (keep.ndim() != 1 || keep.shape(0) != self.rows) value_error("keep", "expected one uint8 flag per row");
  keep_rows(self, keep.data());
}

// ----------------------------------------------------------------------------- algebra
py::array bind_rows_py(const py::array &a_in, const py::array &b_in) {
  auto a = input<uint8_t>(a_in, "a"), b = input<uint8_t>(b_in, "b");
  if (a.ndim() != 2 || b.ndim() != 2) value_error("a, b", "expected 2-D packed arrays");
  const int64_t nb = a.shape(1), ra = a.shape(0), rb = b.shape(0);
  if (b.shape(1) != nb) value_error("b", "row width differs from a's");
  if (ra != rb && ra != 1 && rb != 1) value_error("b", "row counts differ and neither a nor b is a single row");
  py::array_t<uint8_t> out({std::max(ra, rb), nb});
  const uint8_t *pa = a.data(), *pb = b.data();
  uint8_t *po = out.mutable_data();
  const Simd simd = active_simd();
  without_gil([&] { bind_rows(pa, ra, pb, rb, nb, po, simd); });
  return out;
}

py::array bundle_rows_py(const py::array &p_in, double thr) {
  auto p = input<uint8_t>(p_in, "vectors");
  if (p.ndim() != 3) value_error("vectors", "expected a 3-D packed array (groups, n, bytes)");
  const int64_t groups = p.shape(0), n = p.shape(1), nb = p.shape(2);
  py::array_t<uint8_t> out({groups, nb});
  const uint8_t *src = p.data();
  uint8_t *dst = out.mutable_data();
  const Simd simd = active_simd();
  without_gil([&] { bundle_rows(src, groups, n, nb, thr, dst, simd); });
  return out;
}

py::array bundle_sums_py(const py::array &p_in) {
  auto p = input<uint8_t>(p_in, "vectors");
  if (p.ndim() != 3) value_error("vectors", "expected a 3-D packed array (groups, n, bytes)");
  const int64_t groups = p.shape(0), n = p.shape(1), nb = p.shape(2);
  py::array_t<int32_t> out({groups, 4 * nb});
  const uint8_t *src = p.data();
  int32_t *dst = out.mutable_data();
  const Simd simd = active_simd();
  without_gil([&] { bundle_sums_rows(src, groups, n, nb, dst, simd); });
  return out;
}

py::array permute_rows_py(const py::array &a_in, int64_t k, int64_t dim) {
  auto a = input<uint8_t>(a_in, "a", 2);
  const int64_t rows = a.shape(0), nb = a.shape(1);
  py::array_t<uint8_t> out({rows, nb});
  const uint8_t *src = a.data();
  uint8_t *dst = out.mutable_data();
  const Simd simd = active_simd();
  without_gil([&] { permute_rows(src, rows, nb, k, dim, dst, simd); });
  return out;
}

// ----------------------------------------------------------------------------- encoder
void encode_epilogue_py(const py::array &h, int64_t dim, py::array out, ThresholdMode mode, double tau, double thr,
                        int64_t kz) {
  int64_t rows;
  const float *src = float32_rows(h, rows, dim, "h");
  const EncodeOut o = encode_out(out, rows, dim);
  const ThresholdSpec q{mode, tau, thr, kz};
  const Simd simd = active_simd();
  without_gil([&] { encode_epilogue(src, rows, dim, q, o, simd); });
}

void srht_encode_py(const py::array &x, const py::array &scaled_signs_in, const py::array &select_in, int64_t size,
                    py::array out, ThresholdMode mode, double tau, double thr, int64_t kz) {
  auto scaled_signs = input<float>(scaled_signs_in, "scaled_signs");
  auto select = input<int32_t>(select_in, "select");
  if (scaled_signs.ndim() != 2 || select.ndim() != 1)
    value_error("scaled_signs, select", "expected (blocks, in_dim) and (dim,) arrays");
  SrhtSpec s;
  s.scaled_signs = scaled_signs.data();
  s.select = select.data();
  s.blocks = scaled_signs.shape(0);
  s.in_dim = scaled_signs.shape(1);
  s.dim = select.shape(0);
  s.size = size;
  int64_t rows;
  const float *src = float32_rows(x, rows, s.in_dim, "x");
  const EncodeOut o = encode_out(out, rows, s.dim);
  const ThresholdSpec q{mode, tau, thr, kz};
  const Simd simd = active_simd();
  without_gil([&] { srht_encode(src, rows, s, q, o, simd); });
}

void sparse_encode_py(const py::array &x, const py::array &rows_in, const py::array &values_in, int64_t in_dim,
                      py::array out, ThresholdMode mode, double tau, double thr, int64_t kz) {
  auto rows_idx = input<int32_t>(rows_in, "rows");
  auto values = input<float>(values_in, "values");
  if (rows_idx.ndim() != 2 || values.ndim() != 2 || rows_idx.shape(0) != values.shape(0) ||
      rows_idx.shape(1) != values.shape(1))
    value_error("rows, values", "expected two (dim, k) arrays of the same shape");
  SparseSpec s;
  s.rows = rows_idx.data();
  s.values = values.data();
  s.dim = rows_idx.shape(0);
  s.k = rows_idx.shape(1);
  s.in_dim = in_dim;
  int64_t rows;
  const float *src = float32_rows(x, rows, in_dim, "x");
  const EncodeOut o = encode_out(out, rows, s.dim);
  const ThresholdSpec q{mode, tau, thr, kz};
  const Simd simd = active_simd();
  without_gil([&] { sparse_encode(src, rows, s, q, o, simd); });
}

py::array fwht_rows_py(const py::array &a_in) {
  auto a = input<float>(a_in, "a");
  if (a.ndim() != 2) value_error("a", "expected a 2-D float32 array");
  const int64_t rows = a.shape(0), n = a.shape(1);
  if (n < 1 || (n & (n - 1)) != 0) value_error("a", "row length must be a power of two");
  py::array_t<float> out({rows, n});
  std::copy(a.data(), a.data() + rows * n, out.mutable_data());
  float *d = out.mutable_data();
  const Simd simd = active_simd();
  without_gil([&] { fwht_rows(d, rows, n, simd); });
  return out;
}

// ----------------------------------------------------------------------------- base3
py::array base3_encode_py(const py::array &p_in, int64_t rows, int64_t dim) {
  auto p = input<uint8_t>(p_in, "packed");
  Base3Sizes sz;
  try {
    sz = base3_sizes(rows, dim);
  } catch (const std::invalid_argument &e) {
    if (rows < 0 || dim < 0) throw;
    value_error("packed", "size does not match rows * ceil(dim / 4)");  // rows * dim overflows
  }
  if (sz.packed_bytes != static_cast<int64_t>(p.size()))
    value_error("packed", "size does not match rows * ceil(dim / 4)");
  py::array_t<uint8_t> out(sz.stream_bytes);
  const uint8_t *src = p.data();
  uint8_t *dst = out.mutable_data();
  without_gil([&] { base3_encode(src, rows, dim, dst); });
  return out;
}

py::array base3_decode_py(const py::array &d_in, int64_t rows, int64_t dim) {
  auto d = input<uint8_t>(d_in, "data");
  const Base3Sizes sz = base3_sizes(rows, dim);
  if (sz.stream_bytes != static_cast<int64_t>(d.size()))
    value_error("data", "size does not match ceil(rows * dim / 5)");
  py::array_t<uint8_t> out({rows, ceil_div(dim, 4)});
  const uint8_t *src = d.data();
  uint8_t *dst = out.mutable_data();
  without_gil([&] { base3_decode(src, rows, dim, dst); });
  return out;
}

}  // namespace
}  // namespace ternhd

PYBIND11_MODULE(_core, m) {
  using namespace ternhd;
  m.doc() = "ternhd native CPU kernels (C++17, run-time SIMD dispatch). Takes buffers; never links torch.";
  m.attr("__version__") = TERNHD_VERSION;
  m.attr("families") = std::vector<std::string>{"algebra", "base3", "encoder", "pack", "quantize", "similarity"};

  // ---- runtime
  m.def(
      "simd_paths",
      []() {
        std::vector<std::string> v;
        for (Simd s : kAllSimd)
          if (simd_supported(s)) v.emplace_back(simd_name(s));
        return v;
      },
      "SIMD paths this CPU supports, slowest first.");
  m.def("get_simd", []() { return std::string(simd_name(active_simd())); }, "The SIMD path kernels use now.");
  m.def("best_simd", []() { return std::string(simd_name(best_simd())); }, "The best SIMD path of this CPU.");
  m.def(
      "set_simd", [](const std::string &name) { set_active_simd(parse_simd(name)); }, py::arg("name"),
      "Force a SIMD path (scalar, avx2, avx512, neon); ValueError if this CPU lacks it.");
  m.def("get_num_threads", &num_threads, "Threads the kernels use.");
  m.def("set_num_threads", &set_num_threads, py::arg("n"), "Threads the kernels use; n <= 0 restores the default.");

  // A Python enum.Enum (pybind11 >= 3): no C++-side type record that outlives the interpreter.
#if PYBIND11_VERSION_MAJOR >= 3
  py::native_enum<ThresholdMode>(m, "ThresholdMode", "enum.Enum",
                                 "Per-row threshold of quantize_rows and the encoder epilogues.")
#else
  py::enum_<ThresholdMode>(m, "ThresholdMode", "Per-row threshold of quantize_rows and the encoder epilogues.")
#endif
      .value("std", ThresholdMode::kStd, "thr = tau * std(row) (population std)")
      .value("fixed", ThresholdMode::kFixed, "thr given (also the 'batch' mode, whose thr the caller computes)")
      .value("sparsity", ThresholdMode::kSparsity, "thr = the kz-th smallest |x| of the row (0 when kz == 0)")
#if PYBIND11_VERSION_MAJOR >= 3
      .finalize()
#endif
      ;

  // ---- pack
  m.def("pack_rows", &pack_rows_py, py::arg("t"), py::arg("rows"), py::arg("dim"),
        "Pack int8 trits (rows*dim, C order) into uint8 (rows, ceil(dim/4)).");
  m.def("unpack_rows", &unpack_rows_py, py::arg("packed"), py::arg("rows"), py::arg("dim"),
        "Unpack uint8 (rows, ceil(dim/4)) into int8 (rows, dim); code 0b11 raises ValueError.");

  // ---- quantize
  m.def("row_std", &row_std_py, py::arg("x"), py::arg("rows"), py::arg("dim"),
        "Population standard deviation (ddof=0) of each row, in float64; NaN/Inf raise ValueError.");
  m.def("quantize_rows", &quantize_rows_thr, py::arg("x"), py::arg("rows"), py::arg("dim"), py::arg("thr"),
        py::arg("packed") = false,
        "Ternary quantization with one threshold per row (float64 array); packed=True fuses the 2-bit packing.");
  m.def("quantize_rows", &quantize_rows_mode, py::arg("x"), py::arg("rows"), py::arg("dim"), py::arg("mode"),
        py::arg("tau"), py::arg("thr"), py::arg("kz"), py::arg("packed") = false,
        "Ternary quantization with each row's threshold from `mode` (tau * std, fixed thr, or the kz-th smallest "
        "|x|), computed and applied in one pass; NaN/Inf in x raise ValueError.");

  // ---- similarity
  m.def("pairwise", &pairwise_py, py::arg("a"), py::arg("b"), py::arg("metric"),
        "All-pairs similarity of packed rows: int32 dot/hamming or float32 cosine, shape (M, N).");
  m.def("topk", &topk_py, py::arg("queries"), py::arg("database"), py::arg("k"), py::arg("metric"),
        "Streamed top-k of packed rows: (scores (M, k), indices int64 (M, k)), best first, ties to lower index.");
  py::class_<Planes, std::shared_ptr<Planes>>(m, "PlanesIndex",
                                              "A packed database kept in the internal bit-plane layout.")
      .def(py::init([](const py::array &db) { return planes_of(db, "database"); }), py::arg("database"))
      .def_property_readonly("rows", [](const Planes &p) { return p.rows; })
      .def_property_readonly("nbytes", [](const Planes &p) { return p.nbytes; })
      .def_property_readonly("norms",
                             [](const Planes &p) {
                               return py::array_t<int32_t>(static_cast<py::ssize_t>(p.norms.size()), p.norms.data());
                             })
      .def("pairwise", &index_pairwise, py::arg("queries"), py::arg("metric"))
      .def("topk", &index_topk, py::arg("queries"), py::arg("k"), py::arg("metric"))
      .def("float_scores", &index_float_scores, py::arg("queries"),
           "float32 queries (M, dim) -> float32 (M, rows): sum of q where t = +1 minus where t = -1.")
      .def("float_topk", &index_float_topk, py::arg("queries"), py::arg("k"), py::arg("metric"),
           "float32 queries (M, dim) -> the k best rows: float32 scores (M, k), int64 rows (M, k); metric 'dot' "
           "or 'cosine' (q . t / (|q| sqrt(nnz t)), 0 for a zero row), best first, ties to the lower row.")
      .def("append", &index_append, py::arg("vectors"), "Appends packed rows (N, nbytes) (amortized growth).")
      .def("keep", &index_keep, py::arg("keep"), "Keeps the rows whose uint8 flag is non-zero, in order.");
  m.def("float_scores", &float_scores_py, py::arg("queries"), py::arg("database"),
        "float32 queries (M, dim) against packed rows (N, B) -> float32 (M, N) exact dot products.");
  m.def("float_topk", &float_topk_py, py::arg("queries"), py::arg("database"), py::arg("k"), py::arg("metric"),
        "float32 queries (M, dim) against packed rows (N, B) -> the k best rows, as PlanesIndex.float_topk.");

  // ---- algebra
  m.def("bind_rows", &bind_rows_py, py::arg("a"), py::arg("b"),
        "Element-wise product of packed rows: (R, B) x (R, B) -> (R, B); either side may be one row (1, B).");
  m.def("bundle_rows", &bundle_rows_py, py::arg("vectors"), py::arg("threshold") = 0.0,
        "Element-wise sum over axis 1 of packed (G, n, B) re-quantized to packed (G, B): +1 if sum > threshold, "
        "-1 if sum < -threshold, else 0.");
  m.def("bundle_sums", &bundle_sums_py, py::arg("vectors"),
        "Element-wise int32 sums over axis 1 of packed (G, n, B) -> (G, 4 * B), trit 4 j + q from trit q of byte j "
        "(bit-sliced counts; padding trits sum to 0).");
  m.def("permute_rows", &permute_rows_py, py::arg("a"), py::arg("k"), py::arg("dim"),
        "Cyclic shift of each packed row by k trits (0 <= k < dim), like numpy.roll on the unpacked trits.");

  // ---- encoder
  m.def("encode_epilogue", &encode_epilogue_py, py::arg("h"), py::arg("dim"), py::arg("out"), py::arg("mode"),
        py::arg("tau"), py::arg("thr"), py::arg("kz"),
        "Threshold + quantize + (pack) float32 rows h (rows, dim) into out: uint8 (rows, ceil(dim/4)) or int8 "
        "(rows, dim); the threshold of each row follows `mode` (ThresholdMode).");
  m.def("srht_encode", &srht_encode_py, py::arg("x"), py::arg("scaled_signs"), py::arg("select"), py::arg("size"),
        py::arg("out"), py::arg("mode"), py::arg("tau"), py::arg("thr"), py::arg("kz"),
        "Stacked SRHT projection (per block b: FWHT of the zero-padded x * scaled_signs[b]; blocks concatenated "
        "and read at select) fused with encode_epilogue.");
  m.def("sparse_encode", &sparse_encode_py, py::arg("x"), py::arg("rows"), py::arg("values"), py::arg("in_dim"),
        py::arg("out"), py::arg("mode"), py::arg("tau"), py::arg("thr"), py::arg("kz"),
        "Column-compressed sparse projection (rows, values: (dim, k)) fused with encode_epilogue.");
  m.def("fwht_rows", &fwht_rows_py, py::arg("a"),
        "Unnormalized Walsh-Hadamard transform (Sylvester order) of each float32 row (length a power of two).");

  // ---- base3
  m.def("base3_encode", &base3_encode_py, py::arg("packed"), py::arg("rows"), py::arg("dim"),
        "2-bit packed uint8 (rows, ceil(dim/4)) -> base-3 stream uint8 (ceil(rows*dim/5),), 5 trits per byte.");
  m.def("base3_decode", &base3_decode_py, py::arg("data"), py::arg("rows"), py::arg("dim"),
        "Base-3 stream uint8 (ceil(rows*dim/5),) -> 2-bit packed uint8 (rows, ceil(dim/4)); ValueError on "
        "bytes >= 243 or non-zero padding digits.");
}
