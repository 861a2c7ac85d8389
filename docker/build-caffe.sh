#!/usr/bin/env bash
# Build BVLC Caffe's Python bindings (pycaffe) from source: the one recipe used by
# the host set-up (scripts/setup.sh) and the Docker image (Dockerfile).
#
#   docker/build-caffe.sh --python PY --out DIR [--device cpu|cuda]
#                         [--cuda-arch "75 80 86 89 90"] [--cuda-toolkit DIR]
#                         [--sdist FILE] [--work DIR] [--jobs N]
#
# PY must already have numpy installed (its headers are compiled in). The result,
# DIR/caffe, is a self-contained Python package: the pycaffe modules, _caffe.so,
# libcaffe.so.* beside it (found through an $ORIGIN rpath) and build_info.json.
# DIR is written only when the build succeeded (built in DIR.partial, then renamed).
# System packages come first: docker/install-build-deps.sh.
#
# --device cuda takes CUDA from NVIDIA's pinned PyPI wheels, on a host as in the image
# (docker/cuda-toolkit.sh): the runtime libraries (docker/cuda-runtime.txt) go into
# PY's environment, the compiler (docker/cuda-toolkit.txt) into --cuda-toolkit DIR
# (default WORK/cuda-toolkit; reused when already made). _caffe.so finds the runtime
# libraries through an rpath to site-packages/nvidia/..., so DIR/caffe must be
# installed into that same environment's site-packages. --cuda-arch lists compute
# capabilities x10 (SASS for each, plus PTX for the last, which newer GPUs JIT-compile);
# a value this nvcc does not know stops the build before compiling.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=caffe-source.env
. "$here/caffe-source.env"

python=""; out=""; device=cpu; cuda_arch="75 80 86 89 90"; cuda_toolkit=""; sdist=""; work=""
jobs=$(nproc)
while [ $# -gt 0 ]; do
  case "$1" in
    --python) python=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --device) device=$2; shift 2 ;;
    --cuda-arch) cuda_arch=$2; shift 2 ;;
    --cuda-toolkit) cuda_toolkit=$2; shift 2 ;;
    --sdist) sdist=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    *) echo "build-caffe: unknown argument '$1' (see the usage at the top of $0)" >&2; exit 2 ;;
  esac
done
die() { echo "build-caffe: $*" >&2; exit 1; }
[ -n "$python" ] && [ -n "$out" ] || die "--python and --out are required (see the usage at the top of $0)"
case "$device" in cpu|cuda) ;; *) die "--device must be 'cpu' or 'cuda', not '$device'" ;; esac
command -v "$python" >/dev/null || die "Python interpreter '$python' not found"
for tool in make g++ protoc patchelf patch; do
  command -v "$tool" >/dev/null || die "'$tool' is missing: run docker/install-build-deps.sh (as root) first"
done

# --- Where the system pieces are -------------------------------------------------
arch=$(gcc -dumpmachine)
py_info=$("$python" - <<'PY'
import sysconfig, sys
try:
    import numpy
except ImportError:
    sys.exit("numpy is not installed in this Python: install requirements.txt first")
print(sysconfig.get_paths()["include"], numpy.get_include(),
      "%d%d" % sys.version_info[:2], sysconfig.get_config_var("LDVERSION"))
PY
) || die "could not query '$python' (is numpy installed in it?)"
read -r py_include np_include py_tag py_ldversion <<<"$py_info"
[ -f "$py_include/Python.h" ] || die "Python headers missing ($py_include/Python.h): install python3-dev"
boost_py="boost_python$py_tag"
ls /usr/lib/"$arch"/lib"$boost_py".so >/dev/null 2>&1 \
  || die "lib$boost_py.so not found: boost-python for Python ${py_tag:0:1}.${py_tag:1} is missing. Install libboost-python-dev, and build with the distribution's own python3 (/usr/bin/python3), which that boost-python was built for."
blas_include=""
for d in /usr/include/"$arch"/openblas-pthread /usr/include/openblas /usr/include; do
  [ -f "$d/cblas.h" ] && { blas_include=$d; break; }
done
[ -n "$blas_include" ] || die "cblas.h not found: install libopenblas-dev"

export CAFFE_DEVICE=$device CAFFE_LIB_ARCH=$arch CAFFE_BLAS_INCLUDE=$blas_include
export CAFFE_PYTHON_INCLUDE="$py_include $np_include"
export CAFFE_PYTHON_LIBS="$boost_py python$py_ldversion"
cuda_release=""; cuda_libs=""
if [ "$device" = cuda ]; then
  # The toolkit, assembled from the pinned wheels (the runtime wheels into $python's env).
  cuda_toolkit=${cuda_toolkit:-${work:-$(mktemp -d)}/cuda-toolkit}
  CAFFE_CUDA_DIR=$("$here/cuda-toolkit.sh" --python "$python" --dest "$cuda_toolkit" | tail -n 1) \
    || die "could not assemble the CUDA toolkit from the wheels (see above)"
  export CAFFE_CUDA_DIR
  cuda_release=$("$CAFFE_CUDA_DIR/bin/nvcc" --version | sed -n 's/.*release \([0-9.]*\),.*/\1/p')
  # Where the runtime libraries sit, relative to site-packages (pycaffe's rpath).
  site=$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  cuda_libs=$(cd "$site" && dirname "$(find nvidia -name 'libcudart.so.*' -path '*/lib/*' | head -n 1)")
  # Every architecture must be one this nvcc compiles for: fail now, not mid-build.
  [ -n "$(echo $cuda_arch)" ] || die "--cuda-arch is empty: give compute capabilities x10, e.g. \"75 80 86 89 90\""
  known=" $("$CAFFE_CUDA_DIR/bin/nvcc" --list-gpu-code | tr '\n' ' ') "
  flags=""; last=""
  for a in $cuda_arch; do
    [[ "$known" == *" sm_$a "* ]] \
      || die "CUDA_ARCH value '$a' is not an architecture nvcc $cuda_release compiles for (it knows: $(echo $known | sed 's/sm_//g')). Fix --cuda-arch / --build-arg CUDA_ARCH."
    flags+=" -gencode arch=compute_$a,code=sm_$a"; last=$a
  done
  # PTX for the newest architecture, so later GPUs can JIT-compile it.
  export CAFFE_CUDA_ARCH="$flags -gencode arch=compute_$last,code=compute_$last"
  echo "build-caffe: CUDA $cuda_release from the wheels ($CAFFE_CUDA_DIR), for sm_$(echo $cuda_arch | sed 's/ /, sm_/g') + PTX $last"
fi

# --- Source: the pinned sdist --------------------------------------------------------
work=${work:-$(mktemp -d)}
mkdir -p "$work"
if [ -z "$sdist" ]; then
  sdist="$work/$CAFFE_SDIST_NAME-$CAFFE_SDIST_VERSION.tar.gz"
  if [ ! -f "$sdist" ]; then
    echo "build-caffe: downloading $CAFFE_SDIST_NAME==$CAFFE_SDIST_VERSION from PyPI"
    "$python" -m pip download --quiet --no-deps --no-binary :all: \
      "$CAFFE_SDIST_NAME==$CAFFE_SDIST_VERSION" -d "$work" \
      || die "could not download $CAFFE_SDIST_NAME==$CAFFE_SDIST_VERSION from PyPI (network or index settings)"
  fi
fi
actual=$(sha256sum "$sdist" | cut -d' ' -f1)
[ "$actual" = "$CAFFE_SDIST_SHA256" ] \
  || die "$sdist has SHA-256 $actual, expected $CAFFE_SDIST_SHA256 (docker/caffe-source.env). Delete it and run again."

src="$work/src"
rm -rf "$src" && mkdir -p "$src"
tar -xzf "$sdist" -C "$src" --strip-components=1

# --- Patches for today's libraries and toolkits --------------------------------------
# caffe/io.py never imports skimage's resize, passes the as_grey keyword that
# scikit-image removed, and relies on the 2017 resize that did no anti-aliasing
# (the blog's numbers depend on it). The pb2 module is regenerated by our protoc.
io_py="$src/python/caffe/io.py"
sed -i \
  -e 's/^import skimage\.io$/import skimage.io\nfrom skimage.transform import resize/' \
  -e 's/as_grey=not color/as_gray=not color/' \
  -e "s/order=interp_order, mode='constant')/order=interp_order, mode='constant', anti_aliasing=False)/" \
  "$io_py"
grep -q '^from skimage.transform import resize$' "$io_py" \
  && grep -q 'as_gray=not color' "$io_py" \
  && grep -q 'anti_aliasing=False' "$io_py" \
  || die "patching caffe/io.py failed: the source is not the expected one"
rm -f "$src/python/caffe/proto/caffe_pb2.py"
# Caffe::DeviceQuery reads three cudaDeviceProp fields that CUDA 13 removed; ask
# cudaDeviceGetAttribute instead (same values on every CUDA since 5.0).
common_cpp="$src/src/caffe/common.cpp"
sed -i \
  -e 's/prop\.clockRate/[device] { int v = 0; cudaDeviceGetAttribute(\&v, cudaDevAttrClockRate, device); return v; }()/' \
  -e 's/prop\.deviceOverlap/[device] { int v = 0; cudaDeviceGetAttribute(\&v, cudaDevAttrAsyncEngineCount, device); return v > 0; }()/' \
  -e 's/prop\.kernelExecTimeoutEnabled/[device] { int v = 0; cudaDeviceGetAttribute(\&v, cudaDevAttrKernelExecTimeout, device); return v; }()/' \
  "$common_cpp"
! grep -qE 'prop\.(clockRate|deviceOverlap|kernelExecTimeoutEnabled)' "$common_cpp" \
  || die "patching src/caffe/common.cpp failed: the source is not the expected one"
if [ "$device" = cuda ]; then
  # Layers this sdist adds to BVLC Caffe declare GPU methods it never defines (a
  # CPU-only build stubs them; a CUDA build would leave libcaffe with undefined
  # symbols). ProposalLayer: an empty Backward_gpu, like its Backward_cpu. The six
  # without a .cu file: drop the declarations, so Layer's defaults run the CPU code.
  layers=$src/include/caffe/layers
  sed -i '/virtual void Backward_gpu(/{n;s/bottom);$/bottom) {}/}' "$layers/proposal_layer.hpp"
  for name in hardsigmoid hardswish maxunpool pixelshuffle relu6 upsample; do
    perl -0pi -e 's/\n\s*virtual void (?:Forward|Backward)_gpu\([^;{]*\);//g' "$layers/${name}_layer.hpp"
    ! grep -qE 'virtual void (Forward|Backward)_gpu' "$layers/${name}_layer.hpp" \
      || die "patching ${name}_layer.hpp failed: the source is not the expected one"
  done
fi
# === breaking-nn speed patches (CPU and CUDA builds alike) =========================
# Kept in one block, apart from the toolkit patches above, so that merges stay clean.
# Every patch gives the same numbers as stock Caffe; breaking_nn's tests check it.
#
# apply_patch WHAT <<'PATCH' ... PATCH: a unified diff (paths a/..., b/...) on stdin.
apply_patch() {
  patch -d "$src" -p1 --forward --batch --quiet \
    || die "patching $1 failed: the source is not the expected one"
}
#
# 1. pycaffe binds Layer::param_propagate_down / set_param_propagate_down, so
#    breaking_nn can run a data-only backward (no weight or bias gradients) on a
#    net loaded with force_backward, and switch stock behaviour back on per net.
caffe_cpp="$src/python/caffe/_caffe.cpp"
perl -0pi -e 's/(    \.def\("reshape", &Layer<Dtype>::Reshape\)\n)/$1    .def("param_propagate_down", &Layer<Dtype>::param_propagate_down)\n    .def("set_param_propagate_down", &Layer<Dtype>::set_param_propagate_down)\n/' "$caffe_cpp"
grep -q '"set_param_propagate_down", &Layer<Dtype>::set_param_propagate_down' "$caffe_cpp" \
  || die "patching python/caffe/_caffe.cpp failed: the source is not the expected one"
# 2. PoolingLayer::Forward_cpu (max and average): row-at-a-time, branch-free max,
#    same visiting order, so outputs and masks are bit-identical to the stock loop
#    (Caffe's own gtests run on CPU builds, below). The CUDA
#    kernels (pooling_layer.cu) are untouched.
apply_patch "src/caffe/layers/pooling_layer.cpp" <<'PATCH'
--- a/src/caffe/layers/pooling_layer.cpp
+++ b/src/caffe/layers/pooling_layer.cpp
@@ -132,8 +132,84 @@
   }
 }
 
-// TODO(Yangqing): Is there a faster way to do pooling in the channel-first
-// case?
+// breaking-nn: row-at-a-time CPU pooling. For one output row it sweeps the
+// window rows h and offsets kw in ascending order, each over all outputs pw at
+// once, so every window still sees its elements in the stock (h, w) order: max
+// keeps the same first maximum (strict >, from -FLT_MAX, index -1) and the
+// average adds in the same order, giving bit-identical outputs and masks. The
+// max update is branch-free (a compare mask, not a jump).
+struct PoolGeometry {
+  int height, width, pooled_h, pooled_w, kernel_h, kernel_w;
+  int stride_h, stride_w, pad_h, pad_w;
+  vector<int> lo, hi;  // per kw: outputs pw in [lo, hi) read a column inside
+  PoolGeometry(int h, int w, int ph, int pw, int kh, int kw, int sh, int sw,
+      int pdh, int pdw) : height(h), width(w), pooled_h(ph), pooled_w(pw),
+      kernel_h(kh), kernel_w(kw), stride_h(sh), stride_w(sw), pad_h(pdh),
+      pad_w(pdw), lo(kw), hi(kw) {
+    for (int k = 0; k < kw; ++k) {
+      const int off = k - pad_w;  // column read by output pw: pw * sw + off
+      lo[k] = off >= 0 ? 0 : (-off + sw - 1) / sw;
+      hi[k] = off >= w ? 0 : min(pw, (w - 1 - off) / sw + 1);
+      if (hi[k] < lo[k]) hi[k] = lo[k];
+    }
+  }
+};
+
+template <typename Dtype>
+static void max_pool_plane(const PoolGeometry& g, const Dtype* __restrict__ in,
+    Dtype* __restrict__ out, int* __restrict__ idx) {
+  for (int ph = 0; ph < g.pooled_h; ++ph) {
+    Dtype* __restrict__ best = out + ph * g.pooled_w;
+    int* __restrict__ arg = idx + ph * g.pooled_w;
+    for (int pw = 0; pw < g.pooled_w; ++pw) {
+      best[pw] = Dtype(-FLT_MAX);
+      arg[pw] = -1;
+    }
+    const int hstart = max(ph * g.stride_h - g.pad_h, 0);
+    const int hend = min(ph * g.stride_h - g.pad_h + g.kernel_h, g.height);
+    for (int h = hstart; h < hend; ++h) {
+      const Dtype* __restrict__ row = in + h * g.width;
+      for (int kw = 0; kw < g.kernel_w; ++kw) {
+        const int off = kw - g.pad_w;
+        for (int pw = g.lo[kw]; pw < g.hi[kw]; ++pw) {
+          const int w = pw * g.stride_w + off;
+          const Dtype v = row[w];
+          const int take = -static_cast<int>(v > best[pw]);  // 0 or ~0
+          arg[pw] = ((h * g.width + w) & take) | (arg[pw] & ~take);
+          best[pw] = std::max(best[pw], v);  // v > best ? v : best
+        }
+      }
+    }
+  }
+}
+
+template <typename Dtype>
+static void ave_pool_plane(const PoolGeometry& g, const Dtype* __restrict__ in,
+    Dtype* __restrict__ out) {
+  for (int ph = 0; ph < g.pooled_h; ++ph) {
+    Dtype* __restrict__ sum = out + ph * g.pooled_w;
+    for (int pw = 0; pw < g.pooled_w; ++pw) {
+      sum[pw] = 0;
+    }
+    const int h0 = ph * g.stride_h - g.pad_h;
+    for (int h = max(h0, 0); h < min(h0 + g.kernel_h, g.height); ++h) {
+      const Dtype* __restrict__ row = in + h * g.width;
+      for (int kw = 0; kw < g.kernel_w; ++kw) {
+        const int off = kw - g.pad_w;
+        for (int pw = g.lo[kw]; pw < g.hi[kw]; ++pw) {
+          sum[pw] += row[pw * g.stride_w + off];
+        }
+      }
+    }
+    // Divide by the stock pool size (the window clipped to the padded input).
+    const int pool_h = min(h0 + g.kernel_h, g.height + g.pad_h) - h0;
+    for (int pw = 0; pw < g.pooled_w; ++pw) {
+      const int w0 = pw * g.stride_w - g.pad_w;
+      sum[pw] /= pool_h * (min(w0 + g.kernel_w, g.width + g.pad_w) - w0);
+    }
+  }
+}
+
 template <typename Dtype>
 void PoolingLayer<Dtype>::Forward_cpu(const vector<Blob<Dtype>*>& bottom,
       const vector<Blob<Dtype>*>& top) {
@@ -156,75 +232,36 @@
       mask = max_idx_.mutable_cpu_data();
       caffe_set(top_count, -1, mask);
     }
-    caffe_set(top_count, Dtype(-FLT_MAX), top_data);
-    // The main loop
-    for (int n = 0; n < bottom[0]->num(); ++n) {
-      for (int c = 0; c < channels_; ++c) {
-        for (int ph = 0; ph < pooled_height_; ++ph) {
-          for (int pw = 0; pw < pooled_width_; ++pw) {
-            int hstart = ph * stride_h_ - pad_h_;
-            int wstart = pw * stride_w_ - pad_w_;
-            int hend = min(hstart + kernel_h_, height_);
-            int wend = min(wstart + kernel_w_, width_);
-            hstart = max(hstart, 0);
-            wstart = max(wstart, 0);
-            const int pool_index = ph * pooled_width_ + pw;
-            for (int h = hstart; h < hend; ++h) {
-              for (int w = wstart; w < wend; ++w) {
-                const int index = h * width_ + w;
-                if (bottom_data[index] > top_data[pool_index]) {
-                  top_data[pool_index] = bottom_data[index];
-                  if (use_top_mask) {
-                    top_mask[pool_index] = static_cast<Dtype>(index);
-                  } else {
-                    mask[pool_index] = index;
-                  }
-                }
-              }
-            }
-          }
-        }
-        // compute offset
-        bottom_data += bottom[0]->offset(0, 1);
-        top_data += top[0]->offset(0, 1);
+    {
+      // breaking-nn: fast path (see max_pool_plane), same results.
+      const int planes = bottom[0]->num() * channels_;
+      const int in_dim = height_ * width_;
+      const int out_dim = pooled_height_ * pooled_width_;
+      const PoolGeometry g(height_, width_, pooled_height_, pooled_width_,
+          kernel_h_, kernel_w_, stride_h_, stride_w_, pad_h_, pad_w_);
+      vector<int> plane_idx(use_top_mask ? out_dim : 0);
+      for (int p = 0; p < planes; ++p) {
+        int* idx = use_top_mask ? &plane_idx[0] : mask + p * out_dim;
+        max_pool_plane(g, bottom_data + p * in_dim, top_data + p * out_dim,
+            idx);
         if (use_top_mask) {
-          top_mask += top[0]->offset(0, 1);
-        } else {
-          mask += top[0]->offset(0, 1);
+          for (int i = 0; i < out_dim; ++i) {
+            top_mask[p * out_dim + i] = static_cast<Dtype>(idx[i]);
+          }
         }
       }
     }
     break;
   case PoolingParameter_PoolMethod_AVE:
-    for (int i = 0; i < top_count; ++i) {
-      top_data[i] = 0;
-    }
-    // The main loop
-    for (int n = 0; n < bottom[0]->num(); ++n) {
-      for (int c = 0; c < channels_; ++c) {
-        for (int ph = 0; ph < pooled_height_; ++ph) {
-          for (int pw = 0; pw < pooled_width_; ++pw) {
-            int hstart = ph * stride_h_ - pad_h_;
-            int wstart = pw * stride_w_ - pad_w_;
-            int hend = min(hstart + kernel_h_, height_ + pad_h_);
-            int wend = min(wstart + kernel_w_, width_ + pad_w_);
-            int pool_size = (hend - hstart) * (wend - wstart);
-            hstart = max(hstart, 0);
-            wstart = max(wstart, 0);
-            hend = min(hend, height_);
-            wend = min(wend, width_);
-            for (int h = hstart; h < hend; ++h) {
-              for (int w = wstart; w < wend; ++w) {
-                top_data[ph * pooled_width_ + pw] +=
-                    bottom_data[h * width_ + w];
-              }
-            }
-            top_data[ph * pooled_width_ + pw] /= pool_size;
-          }
-        }
-        // compute offset
-        bottom_data += bottom[0]->offset(0, 1);
-        top_data += top[0]->offset(0, 1);
+    {
+      // breaking-nn: fast path (see ave_pool_plane), same results.
+      const int planes = bottom[0]->num() * channels_;
+      const int in_dim = height_ * width_;
+      const int out_dim = pooled_height_ * pooled_width_;
+      const PoolGeometry g(height_, width_, pooled_height_, pooled_width_,
+          kernel_h_, kernel_w_, stride_h_, stride_w_, pad_h_, pad_w_);
+      for (int p = 0; p < planes; ++p) {
+        ave_pool_plane(g, bottom_data + p * in_dim, top_data + p * out_dim);
       }
     }
     break;
PATCH
# 3. LRN (across channels) on the CPU: the forward keeps scale^-beta, and the
#    backward reuses it instead of calling powf again for every element (the
#    single largest cost of LRN), unless scale_ was written since (a reshape, a
#    GPU forward). Work buffers are kept between calls instead of allocated per
#    call, and elementwise passes are fused, with the same operations.
apply_patch "the LRN layer" <<'PATCH'
--- a/include/caffe/layers/lrn_layer.hpp
+++ b/include/caffe/layers/lrn_layer.hpp
@@ -69,6 +69,10 @@
   // Fields used for normalization ACROSS_CHANNELS
   // scale_ stores the intermediate summing results
   Blob<Dtype> scale_;
+  // breaking-nn: CPU work buffers kept between calls (stock allocated them per
+  // call), and scale_^-beta from the last CPU forward, reused by the backward.
+  Blob<Dtype> padded_square_, padded_ratio_, accum_ratio_, scale_pow_;
+  bool scale_pow_ready_;
 
   // Fields used for normalization WITHIN_CHANNEL
   shared_ptr<SplitLayer<Dtype> > split_layer_;
--- a/src/caffe/layers/lrn_layer.cpp
+++ b/src/caffe/layers/lrn_layer.cpp
@@ -78,6 +78,11 @@
   case LRNParameter_NormRegion_ACROSS_CHANNELS:
     top[0]->Reshape(num_, channels_, height_, width_);
     scale_.Reshape(num_, channels_, height_, width_);
+    scale_pow_.Reshape(num_, channels_, height_, width_);
+    padded_square_.Reshape(1, channels_ + size_ - 1, height_, width_);
+    padded_ratio_.Reshape(1, channels_ + size_ - 1, height_, width_);
+    accum_ratio_.Reshape(1, 1, height_, width_);
+    scale_pow_ready_ = false;
     break;
   case LRNParameter_NormRegion_WITHIN_CHANNEL:
     split_layer_->Reshape(bottom, split_top_vec_);
@@ -114,7 +119,7 @@
   for (int i = 0; i < scale_.count(); ++i) {
     scale_data[i] = k_;
   }
-  Blob<Dtype> padded_square(1, channels_ + size_ - 1, height_, width_);
+  Blob<Dtype>& padded_square = padded_square_;
   Dtype* padded_square_data = padded_square.mutable_cpu_data();
   caffe_set(padded_square.count(), Dtype(0), padded_square_data);
   Dtype alpha_over_size = alpha_ / size_;
@@ -146,9 +151,17 @@
     }
   }
 
-  // In the end, compute output
-  caffe_powx<Dtype>(scale_.count(), scale_data, -beta_, top_data);
-  caffe_mul<Dtype>(scale_.count(), top_data, bottom_data, top_data);
+  // In the end, compute output: top = scale^-beta * bottom (stock: caffe_powx,
+  // then caffe_mul; the same two operations per element in one pass), keeping
+  // scale^-beta for the backward.
+  Dtype* scale_pow_data = scale_pow_.mutable_cpu_data();
+  const Dtype neg_beta = -beta_;
+  for (int i = 0; i < scale_.count(); ++i) {
+    const Dtype p = std::pow(scale_data[i], neg_beta);
+    scale_pow_data[i] = p;
+    top_data[i] = p * bottom_data[i];
+  }
+  scale_pow_ready_ = true;
 }
 
 template <typename Dtype>
@@ -184,9 +197,13 @@
   const Dtype* top_data = top[0]->cpu_data();
   const Dtype* bottom_data = bottom[0]->cpu_data();
   const Dtype* scale_data = scale_.cpu_data();
+  // scale^-beta from the CPU forward, if scale_ has not been written since
+  // (a GPU forward moves its head off the CPU).
+  const bool reuse_pow = scale_pow_ready_
+      && scale_.data()->head() == SyncedMemory::HEAD_AT_CPU;
   Dtype* bottom_diff = bottom[0]->mutable_cpu_diff();
-  Blob<Dtype> padded_ratio(1, channels_ + size_ - 1, height_, width_);
-  Blob<Dtype> accum_ratio(1, 1, height_, width_);
+  Blob<Dtype>& padded_ratio = padded_ratio_;
+  Blob<Dtype>& accum_ratio = accum_ratio_;
   Dtype* padded_ratio_data = padded_ratio.mutable_cpu_data();
   Dtype* accum_ratio_data = accum_ratio.mutable_cpu_data();
   // We hack a little bit by using the diff() to store an additional result
@@ -194,21 +211,27 @@
   caffe_set(padded_ratio.count(), Dtype(0), padded_ratio_data);
   Dtype cache_ratio_value = 2. * alpha_ * beta_ / size_;
 
-  caffe_powx<Dtype>(scale_.count(), scale_data, -beta_, bottom_diff);
-  caffe_mul<Dtype>(scale_.count(), top_diff, bottom_diff, bottom_diff);
+  if (reuse_pow) {
+    const Dtype* scale_pow_data = scale_pow_.cpu_data();
+    for (int i = 0; i < scale_.count(); ++i) {
+      bottom_diff[i] = top_diff[i] * scale_pow_data[i];
+    }
+  } else {
+    caffe_powx<Dtype>(scale_.count(), scale_data, -beta_, bottom_diff);
+    caffe_mul<Dtype>(scale_.count(), top_diff, bottom_diff, bottom_diff);
+  }
 
   // go through individual data
   int inverse_pre_pad = size_ - (size_ + 1) / 2;
   for (int n = 0; n < num_; ++n) {
     int block_offset = scale_.offset(n);
     // first, compute diff_i * y_i / s_i
-    caffe_mul<Dtype>(channels_ * height_ * width_,
-        top_diff + block_offset, top_data + block_offset,
-        padded_ratio_data + padded_ratio.offset(0, inverse_pre_pad));
-    caffe_div<Dtype>(channels_ * height_ * width_,
-        padded_ratio_data + padded_ratio.offset(0, inverse_pre_pad),
-        scale_data + block_offset,
-        padded_ratio_data + padded_ratio.offset(0, inverse_pre_pad));
+    // (stock: caffe_mul, then caffe_div; the same operations in one pass)
+    Dtype* ratio = padded_ratio_data + padded_ratio.offset(0, inverse_pre_pad);
+    for (int i = 0; i < channels_ * height_ * width_; ++i) {
+      ratio[i] = (top_diff[block_offset + i] * top_data[block_offset + i])
+          / scale_data[block_offset + i];
+    }
     // Now, compute the accumulated ratios and the bottom diff
     caffe_set(accum_ratio.count(), Dtype(0), accum_ratio_data);
     for (int c = 0; c < size_ - 1; ++c) {
PATCH
# 4. im2col_cpu / col2im_cpu: each kernel offset's valid output columns form one
#    range, computed once instead of testing every element; rows are copied
#    (im2col) or added (col2im) in the stock order, so the sums are the same.
apply_patch "src/caffe/util/im2col.cpp" <<'PATCH'
--- a/src/caffe/util/im2col.cpp
+++ b/src/caffe/util/im2col.cpp
@@ -1,3 +1,4 @@
+#include <algorithm>
 #include <vector>
 
 #include "caffe/util/im2col.hpp"
@@ -51,6 +52,19 @@
     const int stride_w, double* data_col);
 
 
+// breaking-nn: the valid output columns of one kernel offset form one range
+// [lo, hi), computed once per (kernel_row, kernel_col) instead of testing every
+// element; zeros left and right of it. Same loop order as the stock loop, so
+// the column buffer is the same, and col2im_cpu adds in the same order.
+inline void valid_output_range(int first, int stride, int size, int outputs,
+    int* lo, int* hi) {
+  // outputs o with 0 <= first + o * stride < size
+  int l = first >= 0 ? 0 : (-first + stride - 1) / stride;
+  int h = first >= size ? 0 : (size - first + stride - 1) / stride;
+  *lo = std::min(l, outputs);
+  *hi = std::max(*lo, std::min(h, outputs));
+}
+
 template <typename Dtype>
 void im2col_cpu(const Dtype* data_im, const int channels,
     const int height, const int width, const int kernel_h, const int kernel_w,
@@ -66,23 +80,26 @@
   for (int channel = channels; channel--; data_im += channel_size) {
     for (int kernel_row = 0; kernel_row < kernel_h; kernel_row++) {
       for (int kernel_col = 0; kernel_col < kernel_w; kernel_col++) {
+        const int first_col = -pad_w + kernel_col * dilation_w;
+        int lo, hi;
+        valid_output_range(first_col, stride_w, width, output_w, &lo, &hi);
         int input_row = -pad_h + kernel_row * dilation_h;
         for (int output_rows = output_h; output_rows; output_rows--) {
           if (!is_a_ge_zero_and_a_lt_b(input_row, height)) {
-            for (int output_cols = output_w; output_cols; output_cols--) {
-              *(data_col++) = 0;
-            }
+            std::fill(data_col, data_col + output_w, Dtype(0));
           } else {
-            int input_col = -pad_w + kernel_col * dilation_w;
-            for (int output_col = output_w; output_col; output_col--) {
-              if (is_a_ge_zero_and_a_lt_b(input_col, width)) {
-                *(data_col++) = data_im[input_row * width + input_col];
-              } else {
-                *(data_col++) = 0;
+            const Dtype* row = data_im + input_row * width;
+            std::fill(data_col, data_col + lo, Dtype(0));
+            if (stride_w == 1) {
+              std::copy(row + first_col + lo, row + first_col + hi, data_col + lo);
+            } else {
+              for (int o = lo; o < hi; ++o) {
+                data_col[o] = row[first_col + o * stride_w];
               }
-              input_col += stride_w;
             }
+            std::fill(data_col + hi, data_col + output_w, Dtype(0));
           }
+          data_col += output_w;
           input_row += stride_h;
         }
       }
@@ -249,20 +266,18 @@
   for (int channel = channels; channel--; data_im += channel_size) {
     for (int kernel_row = 0; kernel_row < kernel_h; kernel_row++) {
       for (int kernel_col = 0; kernel_col < kernel_w; kernel_col++) {
+        const int first_col = -pad_w + kernel_col * dilation_w;
+        int lo, hi;
+        valid_output_range(first_col, stride_w, width, output_w, &lo, &hi);
         int input_row = -pad_h + kernel_row * dilation_h;
         for (int output_rows = output_h; output_rows; output_rows--) {
-          if (!is_a_ge_zero_and_a_lt_b(input_row, height)) {
-            data_col += output_w;
-          } else {
-            int input_col = -pad_w + kernel_col * dilation_w;
-            for (int output_col = output_w; output_col; output_col--) {
-              if (is_a_ge_zero_and_a_lt_b(input_col, width)) {
-                data_im[input_row * width + input_col] += *data_col;
-              }
-              data_col++;
-              input_col += stride_w;
+          if (is_a_ge_zero_and_a_lt_b(input_row, height)) {
+            Dtype* row = data_im + input_row * width;
+            for (int o = lo; o < hi; ++o) {
+              row[first_col + o * stride_w] += data_col[o];
             }
           }
+          data_col += output_w;
           input_row += stride_h;
         }
       }
PATCH
# 5. caffe_cpu_gemm<float> with beta == 0: memset C, then C += alpha * A * B.
#    OpenBLAS itself clears C with a scalar store loop before adding A * B, so the
#    arithmetic is the same; only the clearing is faster.
apply_patch "src/caffe/util/math_functions.cpp" <<'PATCH'
--- a/src/caffe/util/math_functions.cpp
+++ b/src/caffe/util/math_functions.cpp
@@ -1,3 +1,4 @@
+#include <cstring>
 #include <boost/math/special_functions/next.hpp>
 #include <boost/random.hpp>
 
@@ -16,6 +17,15 @@
     float* C) {
   int lda = (TransA == CblasNoTrans) ? K : M;
   int ldb = (TransB == CblasNoTrans) ? N : K;
+  if (beta == 0) {
+    // breaking-nn: OpenBLAS clears C for beta == 0 with a scalar store loop
+    // (sgemm_beta), then adds alpha * A * B into it; clearing with memset and
+    // asking for C += alpha * A * B is the same arithmetic, at memset's speed.
+    std::memset(C, 0, sizeof(float) * static_cast<size_t>(M) * N);
+    cblas_sgemm(CblasRowMajor, TransA, TransB, M, N, K, alpha, A, lda, B,
+        ldb, 1.f, C, N);
+    return;
+  }
   cblas_sgemm(CblasRowMajor, TransA, TransB, M, N, K, alpha, A, lda, B,
       ldb, beta, C, N);
 }
PATCH
# 6. ReLU's CPU backward: the stock factor (x > 0) + slope * (x <= 0) has three
#    possible values, computed once with the stock operations and selected per
#    element, so the loop vectorizes (below) with the same products.
apply_patch "src/caffe/layers/relu_layer.cpp" <<'PATCH'
--- a/src/caffe/layers/relu_layer.cpp
+++ b/src/caffe/layers/relu_layer.cpp
@@ -28,9 +28,15 @@
     Dtype* bottom_diff = bottom[0]->mutable_cpu_diff();
     const int count = bottom[0]->count();
     Dtype negative_slope = this->layer_param_.relu_param().negative_slope();
+    // breaking-nn: the stock factor (x > 0) + slope * (x <= 0) takes one of
+    // three values, computed here once with the stock operations; a select
+    // instead of two bool-to-float conversions per element lets it vectorize.
+    const Dtype above = Dtype(1) + negative_slope * Dtype(0);  // x > 0
+    const Dtype below = Dtype(0) + negative_slope * Dtype(1);  // x <= 0
+    const Dtype neither = Dtype(0) + negative_slope * Dtype(0);  // x is NaN
     for (int i = 0; i < count; ++i) {
-      bottom_diff[i] = top_diff[i] * ((bottom_data[i] > 0)
-          + negative_slope * (bottom_data[i] <= 0));
+      const Dtype x = bottom_data[i];
+      bottom_diff[i] = top_diff[i] * (x > 0 ? above : (x <= 0 ? below : neither));
     }
   }
 }
PATCH
# 7. -O3 instead of -O2: GCC vectorizes the elementwise loops (ReLU, pooling, LRN,
#    col2im). No fast-math: IEEE semantics and the order of every sum are kept,
#    so the numbers are the same (GoogLeNet's blobs compared bit for bit).
sed -i 's/^\tCOMMON_FLAGS += -DNDEBUG -O2$/\tCOMMON_FLAGS += -DNDEBUG -O3/' "$src/Makefile"
grep -q '^	COMMON_FLAGS += -DNDEBUG -O3$' "$src/Makefile" \
  || die "patching the Makefile's -O2 failed: the source is not the expected one"
# === end of breaking-nn speed patches ================================================
cp "$here/Makefile.config" "$src/Makefile.config"

# --- Build -------------------------------------------------------------------------
log="$work/build.log"
echo "build-caffe: building pycaffe ($device, $jobs jobs); log: $log"
if ! make -C "$src" -j"$jobs" pycaffe >"$log" 2>&1; then
  echo "build-caffe: the build failed. Last lines of $log:" >&2
  tail -n 40 "$log" >&2
  exit 1
fi

# Caffe's own gtests for every part the speed patches touch, on the patched build:
# one test binary each, not the whole suite. CPU builds only (a CUDA build's test
# main needs a GPU to start).
gtests=(pooling_layer lrn_layer im2col_layer convolution_layer inner_product_layer neuron_layer)
gtest_results=""
if [ "$device" = cpu ]; then
  echo "build-caffe: building and running Caffe's gtests: ${gtests[*]}"
  testbins=()
  for name in "${gtests[@]}"; do
    testbins+=(".temp_release/test/test_$name.testbin")  # this Makefile's release TEST_BIN_DIR
  done
  make -C "$src" -j"$jobs" "${testbins[@]}" >>"$log" 2>&1 \
    || { echo "build-caffe: building Caffe's gtests failed. Last lines of $log:" >&2; tail -n 30 "$log" >&2; exit 1; }
  for name in "${gtests[@]}"; do
    if ! "$src/.temp_release/test/test_$name.testbin" --gtest_filter='-*GPU*' >"$work/gtest-$name.log" 2>&1; then
      echo "build-caffe: Caffe's $name gtest failed. Last lines:" >&2
      tail -n 30 "$work/gtest-$name.log" >&2
      exit 1
    fi
    passed=$(grep -E '^\[  PASSED  \]' "$work/gtest-$name.log" | sed 's/^\[  PASSED  \] //')
    echo "build-caffe: $name gtest: $passed"
    gtest_results+="${gtest_results:+, }\"$name\": \"$passed\""
  done
fi

# _caffe.so needs libcaffe by its soname (this source's Makefile builds it in
# temp/lib as libcaffe.so.1.0.0-rc3); that file is checked here and shipped below.
libcaffe=$(patchelf --print-needed "$src/python/caffe/_caffe.so" | grep '^libcaffe\.so') \
  || die "_caffe.so does not link libcaffe: unexpected build output"
libcaffe_path=$(find -L "$src" -path '*/lib/*' -name "$libcaffe" -type f | head -n 1)
[ -n "$libcaffe_path" ] || die "the build produced no $libcaffe"
# A layer declared but never defined links fine and fails only at `import caffe`.
undefined=$(nm -D --undefined-only "$libcaffe_path" | c++filt | sed -e 's/^ *U //' -e 's/(.*//' \
  | grep '^caffe::' | sort -u || true)
[ -z "$undefined" ] || die "libcaffe has undefined Caffe symbols (declared, never defined): $(echo $undefined)"

# --- Assemble the self-contained package -------------------------------------------
partial="$out.partial"
rm -rf "$partial" && mkdir -p "$partial"
cp -rL "$src/python/caffe" "$partial/caffe"
rm -rf "$partial/caffe/test" "$partial/caffe/_caffe.cpp"
find "$partial/caffe" -name __pycache__ -prune -exec rm -rf {} +
# libcaffe goes beside _caffe.so, found there via $ORIGIN.
cp -L "$libcaffe_path" "$partial/caffe/$libcaffe"
# A CUDA build also finds the runtime wheels' libraries (cudart, cuBLAS, cuRAND)
# in the site-packages it is installed into; libcuda.so.1 comes from the driver.
rpath='$ORIGIN'
[ "$device" = cuda ] && rpath+=":\$ORIGIN/../$cuda_libs"
patchelf --set-rpath "$rpath" "$partial/caffe/_caffe.so"
patchelf --set-rpath "$rpath" "$partial/caffe/$libcaffe"
cat >"$partial/caffe/build_info.json" <<JSON
{"device": "$device", "source": "$CAFFE_SDIST_NAME==$CAFFE_SDIST_VERSION",
 "sdist_sha256": "$CAFFE_SDIST_SHA256", "python": "$py_ldversion",
 "cuda_arch": "$( [ "$device" = cuda ] && echo $cuda_arch )", "cuda": "$cuda_release",
 "gtests": {$gtest_results}}
JSON
rm -rf "$out"
mv "$partial" "$out"
echo "build-caffe: done: $out/caffe"
