// Bit-for-bit check of the patched CPU pooling loops (docker/patches/0005, 0011)
// against Caffe's stock loop, outside Caffe. scripts/pooling_harness.py cuts the
// static functions out of the patched src/caffe/layers/pooling_layer.cpp into
// pooling_patched.inc (namespace patched) and compiles this file, either with the
// target_clones (the best clone for this CPU) or -DBREAKING_NN_NO_CLONES (plain
// SSE2); tests/test_caffe_recipe.py runs both.
//
//   pooling_harness          compare every case; exit 1 on a differing bit
//   pooling_harness --time   also print ms per GoogLeNet pooling layer
//
// Layout: one plane after another (N*C planes of H x W, row-major), as Caffe.
#include <algorithm>
#include <cfloat>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

using std::max;
using std::min;
using std::vector;

namespace patched {
#include "pooling_patched.inc"
}  // namespace patched

struct Shape { const char* name; int planes, h, w, k, s, p; };

// Caffe's output size: ceil mode, the last window starting inside the padded input.
static int pooled(int in, int k, int s, int p) {
  int o = static_cast<int>(std::ceil(static_cast<float>(in + 2 * p - k) / s)) + 1;
  if (p && (o - 1) * s >= in + p) --o;
  return o;
}

// Caffe's stock CPU loops (pooling_layer.cpp before any patch), one plane at a time.
template <typename Dtype>
static void stock_max(const Shape& S, const Dtype* in, Dtype* out, int* mask) {
  const int PH = pooled(S.h, S.k, S.s, S.p), PW = pooled(S.w, S.k, S.s, S.p);
  for (int c = 0; c < S.planes; ++c, in += S.h * S.w, out += PH * PW, mask += PH * PW) {
    for (int i = 0; i < PH * PW; ++i) { out[i] = Dtype(-FLT_MAX); mask[i] = -1; }
    for (int ph = 0; ph < PH; ++ph) {
      for (int pw = 0; pw < PW; ++pw) {
        const int hs = max(ph * S.s - S.p, 0), ws = max(pw * S.s - S.p, 0);
        const int he = min(ph * S.s - S.p + S.k, S.h), we = min(pw * S.s - S.p + S.k, S.w);
        for (int h = hs; h < he; ++h) {
          for (int w = ws; w < we; ++w) {
            if (in[h * S.w + w] > out[ph * PW + pw]) {
              out[ph * PW + pw] = in[h * S.w + w];
              mask[ph * PW + pw] = h * S.w + w;
            }
          }
        }
      }
    }
  }
}

template <typename Dtype>
static void stock_ave(const Shape& S, const Dtype* in, Dtype* out) {
  const int PH = pooled(S.h, S.k, S.s, S.p), PW = pooled(S.w, S.k, S.s, S.p);
  for (int c = 0; c < S.planes; ++c, in += S.h * S.w, out += PH * PW) {
    for (int i = 0; i < PH * PW; ++i) out[i] = 0;
    for (int ph = 0; ph < PH; ++ph) {
      for (int pw = 0; pw < PW; ++pw) {
        int hs = ph * S.s - S.p, ws = pw * S.s - S.p;
        int he = min(hs + S.k, S.h + S.p), we = min(ws + S.k, S.w + S.p);
        const int size = (he - hs) * (we - ws);
        hs = max(hs, 0); ws = max(ws, 0); he = min(he, S.h); we = min(we, S.w);
        for (int h = hs; h < he; ++h) {
          for (int w = ws; w < we; ++w) out[ph * PW + pw] += in[h * S.w + w];
        }
        out[ph * PW + pw] /= size;
      }
    }
  }
}

// The patched Forward_cpu's MAX and AVE cases (pooling_layer.cpp, no mask top).
template <typename Dtype>
static void patched_max(const Shape& S, const Dtype* in, Dtype* out, int* mask) {
  const int PH = pooled(S.h, S.k, S.s, S.p), PW = pooled(S.w, S.k, S.s, S.p);
  const patched::PoolGeometry g(S.h, S.w, PH, PW, S.k, S.k, S.s, S.s, S.p, S.p);
  if (patched::max_pool_fast(g, S.planes, in, out, mask)) return;
  std::fill(mask, mask + S.planes * PH * PW, -1);
  for (int p = 0; p < S.planes; ++p) {
    patched::max_pool_plane(g, in + p * S.h * S.w, out + p * PH * PW, mask + p * PH * PW);
  }
}

template <typename Dtype>
static void patched_ave(const Shape& S, const Dtype* in, Dtype* out) {
  const int PH = pooled(S.h, S.k, S.s, S.p), PW = pooled(S.w, S.k, S.s, S.p);
  const patched::PoolGeometry g(S.h, S.w, PH, PW, S.k, S.k, S.s, S.s, S.p, S.p);
  for (int p = 0; p < S.planes; ++p) {
    patched::ave_pool_plane(g, in + p * S.h * S.w, out + p * PH * PW);
  }
}

// Same bits; for the average a NaN equals any NaN (its payload depends on the
// operand order of an add, which is not part of the result's value).
template <typename Dtype>
static bool same(const vector<Dtype>& a, const vector<Dtype>& b, bool any_nan) {
  for (size_t i = 0; i < a.size(); ++i) {
    if (any_nan && std::isnan(a[i]) && std::isnan(b[i])) continue;
    if (memcmp(&a[i], &b[i], sizeof(Dtype))) return false;
  }
  return true;
}

// special: inputs drawn from ties, -0.0, NaN, +-inf and -FLT_MAX; else uniform.
template <typename Dtype>
static bool check(const Shape& S, std::mt19937& rng, bool special) {
  const int PH = pooled(S.h, S.k, S.s, S.p), PW = pooled(S.w, S.k, S.s, S.p);
  const size_t n_in = size_t(S.planes) * S.h * S.w, n_out = size_t(S.planes) * PH * PW;
  vector<Dtype> in(n_in), expected(n_out), got(n_out, Dtype(7));
  vector<int> expected_mask(n_out), got_mask(n_out, 7);
  std::uniform_int_distribution<int> level(-3, 3), pick(0, 99);
  std::uniform_real_distribution<float> uniform(-1, 1);
  for (auto& v : in) {
    const int r = pick(rng);
    if (!special) v = uniform(rng);
    else if (r < 3) v = std::numeric_limits<Dtype>::quiet_NaN();
    else if (r < 6) v = -std::numeric_limits<Dtype>::infinity();
    else if (r < 9) v = Dtype(-0.0);
    else if (r < 12) v = Dtype(-FLT_MAX);
    else if (r < 14) v = std::numeric_limits<Dtype>::infinity();
    else v = level(rng) * Dtype(0.5);
  }
  stock_max(S, in.data(), expected.data(), expected_mask.data());
  patched_max(S, in.data(), got.data(), got_mask.data());
  const bool max_ok = same(expected, got, false) && expected_mask == got_mask;
  stock_ave(S, in.data(), expected.data());
  patched_ave(S, in.data(), got.data());
  const bool ave_ok = same(expected, got, true);
  if (!max_ok || !ave_ok) {
    printf("DIFFERS: %s, %d planes %dx%d, kernel %d stride %d pad %d, %s input: max %s, ave %s\n",
           sizeof(Dtype) == 4 ? "float" : "double", S.planes, S.h, S.w, S.k, S.s, S.p,
           special ? "special" : "uniform", max_ok ? "same" : "DIFFERS", ave_ok ? "same" : "DIFFERS");
  }
  return max_ok && ave_ok;
}

template <typename F>
static double best_ms(F f, int repeats) {
  double best = 1e9;
  for (int r = 0; r < repeats; ++r) {
    const auto start = std::chrono::steady_clock::now();
    f();
    best = min(best, std::chrono::duration<double, std::milli>(
        std::chrono::steady_clock::now() - start).count());
  }
  return best;
}

static void time_googlenet() {
  const Shape layers[] = {
      {"pool1/3x3_s2", 64, 112, 112, 3, 2, 0}, {"pool2/3x3_s2", 192, 56, 56, 3, 2, 0},
      {"inception_3a/pool", 192, 28, 28, 3, 1, 1}, {"inception_3b/pool", 256, 28, 28, 3, 1, 1},
      {"pool3/3x3_s2", 480, 28, 28, 3, 2, 0}, {"inception_4a/pool", 480, 14, 14, 3, 1, 1},
      {"inception_4b..4d/pool", 1536, 14, 14, 3, 1, 1}, {"inception_4e/pool", 528, 14, 14, 3, 1, 1},
      {"pool4/3x3_s2", 832, 14, 14, 3, 2, 0}, {"inception_5a,5b/pool", 1664, 7, 7, 3, 1, 1},
      {"pool5/7x7_s1 (average)", 1024, 7, 7, 7, 1, 0}};
  std::mt19937 rng(2);
  std::uniform_real_distribution<float> uniform(-1, 1);
  double total[2] = {0, 0};
  printf("ms per layer, best of 30 (hot caches): stock loop, patched\n");
  for (const Shape& S : layers) {
    const bool average = strstr(S.name, "average") != nullptr;
    const int PH = pooled(S.h, S.k, S.s, S.p), PW = pooled(S.w, S.k, S.s, S.p);
    vector<float> in(size_t(S.planes) * S.h * S.w), out(size_t(S.planes) * PH * PW);
    vector<int> mask(out.size());
    for (auto& v : in) v = uniform(rng);
    double t[2];
    if (average) {
      t[0] = best_ms([&] { stock_ave(S, in.data(), out.data()); }, 30);
      t[1] = best_ms([&] { patched_ave(S, in.data(), out.data()); }, 30);
    } else {
      t[0] = best_ms([&] { stock_max(S, in.data(), out.data(), mask.data()); }, 30);
      t[1] = best_ms([&] { patched_max(S, in.data(), out.data(), mask.data()); }, 30);
    }
    total[0] += t[0];
    total[1] += t[1];
    printf("  %-24s %7.3f %7.3f\n", S.name, t[0], t[1]);
  }
  printf("  %-24s %7.3f %7.3f   (patched / stock = %.2f)\n", "GoogLeNet, all", total[0], total[1],
         total[1] / total[0]);
}

int main(int argc, char** argv) {
  std::mt19937 rng(1);
  int differing = 0, cases = 0;
  for (int k = 1; k <= 5; ++k) {
    for (int s = 1; s <= 3; ++s) {
      for (int p = 0; p < k && p <= 2; ++p) {
        for (int h = k; h <= 13; h += 3) {
          for (int w = 1; w <= 19; w += 2) {
            if (w + 2 * p < k) continue;
            const Shape S{"", 2, h, w, k, s, p};
            for (int special = 0; special < 2; ++special) {
              differing += !check<float>(S, rng, special);
              differing += !check<double>(S, rng, special);
              cases += 2;
            }
          }
        }
      }
    }
  }
  printf("%d of %d cases differ from the stock loop\n", differing, cases);
  if (argc > 1 && !strcmp(argv[1], "--time")) time_googlenet();
  return differing ? 1 : 0;
}
