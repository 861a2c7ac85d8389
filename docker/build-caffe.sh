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
# 1. pycaffe binds Layer::param_propagate_down / set_param_propagate_down, so
#    breaking_nn can run a data-only backward (no weight or bias gradients) on a
#    net loaded with force_backward, and switch stock behaviour back on per net.
caffe_cpp="$src/python/caffe/_caffe.cpp"
perl -0pi -e 's/(    \.def\("reshape", &Layer<Dtype>::Reshape\)\n)/$1    .def("param_propagate_down", &Layer<Dtype>::param_propagate_down)\n    .def("set_param_propagate_down", &Layer<Dtype>::set_param_propagate_down)\n/' "$caffe_cpp"
grep -q '"set_param_propagate_down", &Layer<Dtype>::set_param_propagate_down' "$caffe_cpp" \
  || die "patching python/caffe/_caffe.cpp failed: the source is not the expected one"
# 2. PoolingLayer::Forward_cpu (max and average): row-at-a-time, branch-free max,
#    same visiting order, so outputs and masks are bit-identical to the stock loop
#    (Caffe's own test_pooling_layer gtest runs on CPU builds, below). The CUDA
#    kernels (pooling_layer.cu) are untouched.
patch -d "$src" -p1 --forward --batch --quiet <<'PATCH' \
  || die "patching src/caffe/layers/pooling_layer.cpp failed: the source is not the expected one"
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

# Caffe's own pooling layer tests (gtest) on the patched build: one test binary, not
# the whole suite. CPU builds only (a CUDA build's test main needs a GPU to start).
pooling_gtest=skipped
if [ "$device" = cpu ]; then
  echo "build-caffe: building and running Caffe's pooling layer gtest"
  testbin=.temp_release/test/test_pooling_layer.testbin  # this Makefile's release TEST_BIN_DIR
  if ! make -C "$src" -j"$jobs" "$testbin" >>"$log" 2>&1 \
      || ! "$src/$testbin" --gtest_filter='-*GPU*' >"$work/pooling-gtest.log" 2>&1; then
    echo "build-caffe: Caffe's pooling layer gtest failed. Last lines:" >&2
    tail -n 30 "$work/pooling-gtest.log" "$log" >&2
    exit 1
  fi
  pooling_gtest=$(grep -E '^\[  PASSED  \]' "$work/pooling-gtest.log" | sed 's/^\[  PASSED  \] //')
  echo "build-caffe: pooling gtest: $pooling_gtest"
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
 "pooling_gtest": "$pooling_gtest"}
JSON
rm -rf "$out"
mv "$partial" "$out"
echo "build-caffe: done: $out/caffe"
