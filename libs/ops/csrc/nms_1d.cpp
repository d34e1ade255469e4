// 1-D NMS and Soft-NMS on the CPU: the optional extension ``libs.ops._C``.
//
// Behaviour: docs/reference.md §5.4 (the original's ``nms_1d_cpu``), reproduced exactly:
//   * all arithmetic in float32; areas are ``x2 - x1 + 1e-6`` computed with ATen ops;
//   * hard NMS visits candidates in the order of ATen's default (non-stable) descending sort
//     and suppresses when ``IoU >= iou_threshold``; it returns the kept indices in that order;
//   * Soft-NMS picks the first maximum of the live scores (a later score wins only when
//     strictly greater), swaps it to the front, decays every other live score once
//     (method 0 hard, 1 linear, 2 Gaussian ``exp(-iou^2 / sigma)``) and deletes a score that
//     falls strictly below ``min_score`` by moving the last live entry into its slot.
// The pure-PyTorch twin is libs/ops/nms_torch.py; tests/ops compares the two.
// Differences from the original (none changes a number): inputs are checked (the original
// read ``data_ptr<float>()`` of any dtype) and there is no ``-fopenmp`` (there is no OpenMP
// code). CPU only: the caller moves detections to the CPU first, as the original does.
#include <torch/extension.h>

#include <algorithm>
#include <cmath>
#include <string>

namespace {

void check_segs_scores(const char* fn, const at::Tensor& segs, const at::Tensor& scores) {
  TORCH_CHECK_VALUE(segs.device().is_cpu(), fn, ": segs must be a CPU tensor, got device ",
                    segs.device());
  TORCH_CHECK_VALUE(scores.device().is_cpu(), fn, ": scores must be a CPU tensor, got device ",
                    scores.device());
  TORCH_CHECK_VALUE(segs.scalar_type() == at::kFloat, fn,
                    ": segs must be float32, got ", segs.scalar_type());
  TORCH_CHECK_VALUE(scores.scalar_type() == at::kFloat, fn,
                    ": scores must be float32, got ", scores.scalar_type());
  TORCH_CHECK_VALUE(segs.dim() == 2 && segs.size(1) == 2, fn,
                    ": segs must have shape (N, 2), got ", segs.sizes());
  TORCH_CHECK_VALUE(scores.dim() == 1 && scores.size(0) == segs.size(0), fn,
                    ": scores must have shape (N,) with N = segs.size(0) = ", segs.size(0),
                    ", got ", scores.sizes());
  TORCH_CHECK_VALUE(segs.is_contiguous(), fn, ": segs must be contiguous");
  TORCH_CHECK_VALUE(scores.is_contiguous(), fn, ": scores must be contiguous");
}

// IoU of two 1-D segments, float32 as in the original; ``area`` already carries the +1e-6.
inline float iou_1d(float ax1, float ax2, float aarea, float bx1, float bx2, float barea) {
  const float xx1 = std::max(ax1, bx1);
  const float xx2 = std::min(ax2, bx2);
  const float inter = std::max(0.f, xx2 - xx1);
  return inter / (aarea + barea - inter);
}

}  // namespace

// Greedy hard NMS. segs (N, 2), scores (N,) -> int64 indices of the kept segments, in
// descending score order.
at::Tensor nms_1d(const at::Tensor& segs, const at::Tensor& scores, double iou_threshold) {
  check_segs_scores("nms", segs, scores);
  const int64_t n = segs.size(0);
  if (n == 0) {
    return at::empty({0}, segs.options().dtype(at::kLong));
  }
  const float thr = static_cast<float>(iou_threshold);
  const at::Tensor x1_t = segs.select(1, 0).contiguous();
  const at::Tensor x2_t = segs.select(1, 1).contiguous();
  const at::Tensor areas_t = x2_t - x1_t + 1e-6;
  // ATen's default sort: the same call as ``scores.sort(descending=True)`` in Python, so
  // ties break identically in both backends.
  const at::Tensor order_t = std::get<1>(scores.sort(0, /*descending=*/true)).contiguous();

  const float* x1 = x1_t.data_ptr<float>();
  const float* x2 = x2_t.data_ptr<float>();
  const float* areas = areas_t.data_ptr<float>();
  const int64_t* order = order_t.data_ptr<int64_t>();

  std::vector<char> suppressed(n, 0);
  at::Tensor keep_t = at::empty({n}, segs.options().dtype(at::kLong));
  int64_t* keep = keep_t.data_ptr<int64_t>();
  int64_t num_keep = 0;
  for (int64_t oi = 0; oi < n; ++oi) {
    const int64_t i = order[oi];
    if (suppressed[i]) continue;
    keep[num_keep++] = i;
    for (int64_t oj = oi + 1; oj < n; ++oj) {
      const int64_t j = order[oj];
      if (suppressed[j]) continue;
      if (iou_1d(x1[i], x2[i], areas[i], x1[j], x2[j], areas[j]) >= thr) suppressed[j] = 1;
    }
  }
  return keep_t.narrow(0, 0, num_keep).clone();
}

// Soft-NMS. segs (N, 2), scores (N,), dets (N, 3) float32 output buffer. Returns the original
// indices of the kept segments in selection order; dets[:K] = (x1, x2, decayed score).
at::Tensor softnms_1d(const at::Tensor& segs, const at::Tensor& scores, at::Tensor dets,
                      double iou_threshold, double sigma, double min_score, int64_t method) {
  check_segs_scores("softnms", segs, scores);
  TORCH_CHECK_VALUE(dets.device().is_cpu(), "softnms: dets must be a CPU tensor, got device ",
                    dets.device());
  TORCH_CHECK_VALUE(dets.scalar_type() == at::kFloat, "softnms: dets must be float32, got ",
                    dets.scalar_type());
  TORCH_CHECK_VALUE(dets.dim() == 2 && dets.size(0) == segs.size(0) && dets.size(1) == 3,
                    "softnms: dets must have shape (N, 3) with N = segs.size(0) = ",
                    segs.size(0), ", got ", dets.sizes());
  TORCH_CHECK_VALUE(dets.is_contiguous(), "softnms: dets must be contiguous");
  TORCH_CHECK_VALUE(method >= 0 && method <= 2,
                    "softnms: method must be 0 (hard), 1 (linear) or 2 (gaussian), got ",
                    method);
  const int64_t num = segs.size(0);
  if (num == 0) {
    return at::empty({0}, segs.options().dtype(at::kLong));
  }
  const float thr = static_cast<float>(iou_threshold);
  const float sig = static_cast<float>(sigma);
  const float min_sc = static_cast<float>(min_score);

  // Work on copies: the inputs are never modified (only dets, the output buffer).
  at::Tensor x1_t = segs.select(1, 0).contiguous().clone();
  at::Tensor x2_t = segs.select(1, 1).contiguous().clone();
  at::Tensor sc_t = scores.clone();
  at::Tensor areas_t = x2_t - x1_t + 1e-6;
  at::Tensor inds_t = at::arange(num, segs.options().dtype(at::kLong));

  float* x1 = x1_t.data_ptr<float>();
  float* x2 = x2_t.data_ptr<float>();
  float* sc = sc_t.data_ptr<float>();
  float* areas = areas_t.data_ptr<float>();
  int64_t* inds = inds_t.data_ptr<int64_t>();
  float* de = dets.data_ptr<float>();

  int64_t n = num;  // number of live entries; positions [0, i) are final
  for (int64_t i = 0; i < n; ++i) {
    // first maximum of the live scores: a later one wins only when strictly greater
    int64_t max_pos = i;
    float max_score = sc[i];
    for (int64_t p = i + 1; p < n; ++p) {
      if (max_score < sc[p]) {
        max_score = sc[p];
        max_pos = p;
      }
    }
    de[i * 3 + 0] = x1[max_pos];
    de[i * 3 + 1] = x2[max_pos];
    de[i * 3 + 2] = sc[max_pos];
    std::swap(x1[i], x1[max_pos]);
    std::swap(x2[i], x2[max_pos]);
    std::swap(sc[i], sc[max_pos]);
    std::swap(areas[i], areas[max_pos]);
    std::swap(inds[i], inds[max_pos]);

    const float ix1 = x1[i], ix2 = x2[i], iarea = areas[i];
    int64_t p = i + 1;
    while (p < n) {
      const float ovr = iou_1d(ix1, ix2, iarea, x1[p], x2[p], areas[p]);
      float weight = 1.f;
      if (method == 0) {
        if (ovr >= thr) weight = 0.f;
      } else if (method == 1) {
        if (ovr >= thr) weight = 1.f - ovr;
      } else {
        weight = std::exp(-(ovr * ovr) / sig);  // float overload: float32 as the original
      }
      sc[p] *= weight;
      if (sc[p] < min_sc) {
        // delete: the last live entry takes this slot and is examined next
        x1[p] = x1[n - 1];
        x2[p] = x2[n - 1];
        sc[p] = sc[n - 1];
        areas[p] = areas[n - 1];
        inds[p] = inds[n - 1];
        --n;
      } else {
        ++p;
      }
    }
  }
  return inds_t.narrow(0, 0, n).clone();
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "1-D NMS / Soft-NMS on the CPU (docs/reference.md §5.4); see libs/ops/nms_torch.py";
  m.def("nms", &nms_1d, "Hard 1-D NMS -> int64 kept indices in descending score order",
        pybind11::arg("segs"), pybind11::arg("scores"), pybind11::arg("iou_threshold"));
  m.def("softnms", &softnms_1d,
        "1-D Soft-NMS -> int64 kept indices in selection order; fills dets (N, 3)",
        pybind11::arg("segs"), pybind11::arg("scores"), pybind11::arg("dets"),
        pybind11::arg("iou_threshold"), pybind11::arg("sigma"), pybind11::arg("min_score"),
        pybind11::arg("method"));
}
