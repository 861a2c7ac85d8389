"""The speed patches give stock Caffe's numbers: data-only backward, the fast CPU pooling, LRN, im2col and col2im."""
import re

import numpy as np
import pytest

import breaking_nn as bnn
from breaking_nn.caffe_runtime import build_info, import_caffe

pytestmark = pytest.mark.slow

FLT_MAX = np.float32(np.finfo(np.float32).max)


def test_data_only_backward_gives_the_stock_gradient_bit_for_bit(generated_googlenet_weights, cat_data):
    fast = bnn.load_googlenet(generated_googlenet_weights)
    stock = bnn.load_googlenet(generated_googlenet_weights, weight_gradients=True)
    assert not fast.weight_gradients and stock.weight_gradients
    for label in (bnn.KING_PENGUIN, bnn.MOUSE):
        p_fast, g_fast = fast.forward_backward(cat_data, label)
        p_stock, g_stock = stock.forward_backward(cat_data, label)
        np.testing.assert_array_equal(p_fast, p_stock)
        np.testing.assert_array_equal(g_fast, g_stock)
        assert np.count_nonzero(g_fast) > 0.5 * g_fast.size
    # The stock net computed weight gradients; the data-only one left them untouched (zero).
    assert np.any(stock.net.params["conv1/7x7_s2"][0].diff)
    assert not any(np.any(blob.diff) for blobs in fast.net.params.values() for blob in blobs)
    fast.set_weight_gradients(True)  # stock behaviour back on
    fast.forward_backward(cat_data, bnn.MOUSE)
    assert np.any(fast.net.params["conv1/7x7_s2"][0].diff)


def stock_pooling(x, kernel, stride, pad, method):
    """Caffe's stock CPU pooling loop, all windows at once: (top (C, PH, PW), max index or None).

    x is (C, H, W) float32. Windows visit (h, w) in row-major order; max keeps the
    first element strictly above the running maximum (from -FLT_MAX, index -1);
    the average adds in that order from 0, then divides by the padded window size.
    """
    c, height, width = x.shape
    out = []
    for size in (height, width):
        n = int(np.ceil((size + 2 * pad - kernel) / stride)) + 1
        if pad and (n - 1) * stride >= size + pad:
            n -= 1
        out.append(n)
    ph, pw = out
    hs = np.arange(ph)[:, None] * stride - pad  # window starts, (PH, 1) and (1, PW)
    ws = np.arange(pw)[None, :] * stride - pad
    best = np.full((c, ph, pw), -FLT_MAX if method == "MAX" else 0, np.float32)
    index = np.full((c, ph, pw), -1, np.int64)
    for kh in range(kernel):
        for kw in range(kernel):
            h, w = hs + kh, ws + kw
            valid = np.broadcast_to((h >= 0) & (h < height) & (w >= 0) & (w < width), (ph, pw))
            v = x[:, np.clip(h, 0, height - 1), np.clip(w, 0, width - 1)]
            if method == "MAX":
                take = valid & (v > best)
                best = np.where(take, v, best)
                index = np.where(take, np.broadcast_to(h * width + w, (c, ph, pw)), index)
            else:
                best = np.where(valid, best + v, best)
    if method == "AVE":
        hend, wend = np.minimum(hs + kernel, height + pad), np.minimum(ws + kernel, width + pad)
        best = best / ((hend - hs) * (wend - ws)).astype(np.float32)
    return best.astype(np.float32), (index if method == "MAX" else None)


def one_layer_net(tmp_path, shape, layer: str):
    """A CPU caffe.Net with force_backward: an Input blob "data" of ``shape``, then ``layer`` (prototxt text)."""
    caffe = import_caffe()
    caffe.set_mode_cpu()
    proto = tmp_path / "net.prototxt"
    proto.write_text(
        "force_backward: true\n"
        f'layer {{ name: "data" type: "Input" top: "data" input_param {{ shape {{ {" ".join(f"dim: {d}" for d in shape)} }} }} }}\n'
        f"layer {{ {layer} }}\n")
    return caffe.Net(str(proto), caffe.TEST)


def pooling_net(tmp_path, shape, kernel, stride, pad, method, mask_top):
    tops = 'top: "pool" top: "mask"' if mask_top else 'top: "pool"'
    return one_layer_net(tmp_path, shape, f'name: "pool" type: "Pooling" bottom: "data" {tops} '
                         f"pooling_param {{ pool: {method} kernel_size: {kernel} stride: {stride} pad: {pad} }}")


def forward_backward(net, x, rng) -> np.ndarray:
    """Runs a one-layer pooling net on x, then backward from a random top diff; returns that diff."""
    net.blobs["data"].data[...] = x
    net.forward()
    top_diff = rng.normal(size=net.blobs["pool"].data.shape).astype(np.float32)
    net.blobs["pool"].diff[...] = top_diff
    net.backward()
    return top_diff


def routed_gradient(index, top_diff, plane_shape) -> np.ndarray:
    """Stock max pooling's backward for one image: each top diff added, in order, at its max's index.

    index and top_diff are (C, PH, PW); the result is (C, H, W) for plane_shape (C, H, W)."""
    grad = np.zeros(plane_shape, np.float32).reshape(plane_shape[0], -1)
    for ch in range(plane_shape[0]):
        np.add.at(grad[ch], index[ch].ravel(), top_diff[ch].ravel())
    return grad.reshape(plane_shape)


@pytest.mark.parametrize("method", ["MAX", "AVE"])
@pytest.mark.parametrize("kernel,stride,pad", [(3, 2, 0), (3, 1, 1), (2, 2, 0), (3, 2, 1), (5, 3, 2), (7, 1, 0)])
def test_cpu_pooling_matches_the_stock_loop_bit_for_bit(tmp_path, method, kernel, stride, pad):
    rng = np.random.default_rng(kernel * 10 + stride + pad)
    shape = (2, 3, 13, 11) if kernel < 7 else (1, 4, 7, 7)
    x = rng.normal(size=shape).astype(np.float32)
    x[x < -0.5] = 0  # ties, as after a ReLU
    x.flat[:: 7] = -0.0
    net = pooling_net(tmp_path, shape, kernel, stride, pad, method, mask_top=method == "MAX")
    top_diff = forward_backward(net, x, rng)
    for n in range(shape[0]):
        expected, index = stock_pooling(x[n], kernel, stride, pad, method)
        np.testing.assert_array_equal(net.blobs["pool"].data[n], expected)
        assert np.array_equal(np.signbit(net.blobs["pool"].data[n]), np.signbit(expected))
        if method == "MAX":
            np.testing.assert_array_equal(net.blobs["mask"].data[n], index.astype(np.float32))
            np.testing.assert_array_equal(net.blobs["data"].diff[n], routed_gradient(index, top_diff[n], shape[1:]))


@pytest.mark.parametrize("kernel,stride,pad", [(3, 2, 0), (3, 1, 1), (2, 2, 0), (3, 2, 1)])
def test_cpu_max_pooling_special_values_match_the_stock_loop(tmp_path, kernel, stride, pad):
    """The vectorized max pooling (patch 0011) pads with NaN: NaN, -inf, -FLT_MAX and -0.0 in the input
    still give the stock values and indices (-1 where a window holds nothing above -FLT_MAX), and, through
    the backward with Caffe's own index buffer (no mask top), the stock gradient. Many planes."""
    rng = np.random.default_rng(kernel * 100 + stride * 10 + pad)
    shape = (2, 9, 14, 15)
    x = rng.integers(-2, 3, size=shape).astype(np.float32) * 0.5  # many ties
    special = rng.integers(0, 8, size=shape)
    x[special == 0] = np.nan
    x[special == 1] = -np.inf
    x[special == 2] = -FLT_MAX
    x[special == 3] = -0.0
    x[0, 0] = -np.inf  # no window can take anything: every value -FLT_MAX, every index -1
    net = pooling_net(tmp_path, shape, kernel, stride, pad, "MAX", mask_top=True)
    net.blobs["data"].data[...] = x
    net.forward()
    for n in range(shape[0]):
        expected, index = stock_pooling(x[n], kernel, stride, pad, "MAX")
        assert np.array_equal(net.blobs["pool"].data[n].view(np.uint32), expected.view(np.uint32))  # bits
        np.testing.assert_array_equal(net.blobs["mask"].data[n], index.astype(np.float32))
    assert np.all(net.blobs["pool"].data[0, 0] == -FLT_MAX) and np.all(net.blobs["mask"].data[0, 0] == -1)

    # The backward routes through the index buffer; stock Caffe would write at index -1 (outside the
    # plane: heap corruption), so here every window holds a finite element: one at each (h, w) whose h
    # and w are even or last.
    rows = sorted(set(range(0, shape[2], 2)) | {shape[2] - 1})
    cols = sorted(set(range(0, shape[3], 2)) | {shape[3] - 1})
    grid = np.ix_(range(shape[0]), range(shape[1]), rows, cols)
    x[grid] = rng.normal(size=x[grid].shape).astype(np.float32)
    net = pooling_net(tmp_path, shape, kernel, stride, pad, "MAX", mask_top=False)
    top_diff = forward_backward(net, x, rng)
    for n in range(shape[0]):
        expected, index = stock_pooling(x[n], kernel, stride, pad, "MAX")
        assert np.array_equal(net.blobs["pool"].data[n].view(np.uint32), expected.view(np.uint32))
        assert index.min() >= 0
        np.testing.assert_array_equal(net.blobs["data"].diff[n], routed_gradient(index, top_diff[n], shape[1:]))


def test_googlenet_pooling_layers_match_the_stock_loop(googlenet, cat_data):
    """Every pooling layer of GoogLeNet, on its real inputs: outputs and (through backward) max masks."""
    net = googlenet.net
    googlenet.forward_backward(cat_data, bnn.KING_PENGUIN)
    checked = 0
    for name, layer in zip(net._layer_names, net.layers):
        if layer.type != "Pooling":
            continue
        if name.endswith("/pool"):  # inception_*/pool: 3x3, stride 1, pad 1
            kernel, stride, pad = 3, 1, 1
        else:  # pool1/3x3_s2 ... pool5/7x7_s1
            size, step = re.search(r"(\d+)x\d+_s(\d+)$", name).groups()
            kernel, stride, pad = int(size), int(step), 0
        method = "AVE" if name.startswith("pool5") else "MAX"
        x = net.blobs[net.bottom_names[name][0]].data[0]
        expected, _ = stock_pooling(x, kernel, stride, pad, method)
        np.testing.assert_array_equal(net.blobs[net.top_names[name][0]].data[0], expected)
        checked += 1
    assert checked == 14


def lrn_net(tmp_path, shape):
    return one_layer_net(tmp_path, shape, 'name: "norm" type: "LRN" bottom: "data" top: "norm" '
                         "lrn_param { local_size: 5 alpha: 0.0001 beta: 0.75 }")


def lrn_reference(x, top_diff, size=5, alpha=1e-4, beta=0.75, k=1.0):
    """Caffe's cross-channel LRN and its input gradient in float64: (top, bottom_diff) for (N, C, H, W) x."""
    x, top_diff = x.astype(np.float64), top_diff.astype(np.float64)
    pre = (size - 1) // 2
    padded = np.pad(x * x, ((0, 0), (pre, size - 1 - pre), (0, 0), (0, 0)))
    scale = k + alpha / size * sum(padded[:, i:i + x.shape[1]] for i in range(size))
    top = x * scale ** -beta
    ratio = np.pad(top_diff * top / scale, ((0, 0), (size - 1 - pre, pre), (0, 0), (0, 0)))
    accum = sum(ratio[:, i:i + x.shape[1]] for i in range(size))
    return top, top_diff * scale ** -beta - 2 * alpha * beta / size * x * accum


def test_lrn_matches_its_definition_and_reuses_scale_power_exactly(tmp_path):
    """Forward and backward agree with LRN's formula; the backward that reuses the forward's
    scale^-beta gives the same bits as the stock recomputation (forced by a reshape)."""
    rng = np.random.default_rng(5)
    shape = (2, 9, 6, 7)
    x = (rng.normal(size=shape) * 40).astype(np.float32)
    top_diff = rng.normal(size=shape).astype(np.float32)
    net = lrn_net(tmp_path, shape)
    net.blobs["data"].data[...] = x
    net.forward()
    net.blobs["norm"].diff[...] = top_diff
    net.backward()
    reused = net.blobs["data"].diff.copy()
    top, grad = lrn_reference(x, top_diff)
    np.testing.assert_allclose(net.blobs["norm"].data, top, rtol=2e-6, atol=1e-6)
    np.testing.assert_allclose(reused, grad, rtol=1e-5, atol=1e-6)
    net.reshape()  # same shapes: blobs keep their values, the cached power is dropped
    net.blobs["norm"].diff[...] = top_diff
    net.backward()  # scale^-beta recomputed, as stock Caffe always does
    np.testing.assert_array_equal(net.blobs["data"].diff, reused)


@pytest.mark.parametrize("slope", [0.0, 0.1, -0.0])
def test_relu_backward_matches_the_stock_formula_bit_for_bit(tmp_path, slope):
    """dx = dy * ((x > 0) + slope * (x <= 0)) in float32, for signed zeros, NaN and infinities too."""
    x = np.array([1.5, -2.0, 0.0, -0.0, np.nan, np.inf, -np.inf, 3e-39, -3e-39] * 3, np.float32)
    net = one_layer_net(tmp_path, x.shape, 'name: "relu" type: "ReLU" bottom: "data" top: "out" '
                        f"relu_param {{ negative_slope: {slope!r} }}")
    top_diff = np.array([1.0, -1.0, 0.5] * (x.size // 3), np.float32)
    net.blobs["data"].data[...] = x
    net.forward()
    net.blobs["out"].diff[...] = top_diff
    net.backward()
    factor = (x > 0).astype(np.float32) + np.float32(slope) * (x <= 0).astype(np.float32)
    expected = top_diff * factor
    got = net.blobs["data"].diff
    np.testing.assert_array_equal(got, expected)
    assert np.array_equal(np.signbit(got), np.signbit(expected))


def stock_im2col(x, kernel, stride, pad, dilation):
    """Caffe's im2col for one (C, H, W) image: (C * k * k, OH * OW), zeros outside the image."""
    c, height, width = x.shape
    out_h = (height + 2 * pad - (dilation * (kernel - 1) + 1)) // stride + 1
    out_w = (width + 2 * pad - (dilation * (kernel - 1) + 1)) // stride + 1
    col = np.zeros((c, kernel, kernel, out_h, out_w), np.float32)
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    for kh in range(kernel):
        for kw in range(kernel):
            r, q = kh * dilation, kw * dilation
            col[:, kh, kw] = padded[:, r:r + stride * out_h:stride, q:q + stride * out_w:stride][:, :out_h, :out_w]
    return col.reshape(c * kernel * kernel, out_h * out_w)


def stock_col2im(col, shape, kernel, stride, pad, dilation):
    """Caffe's col2im: adds every column entry into its pixel in the stock order (kernel row, kernel column)."""
    c, height, width = shape
    out_h = (height + 2 * pad - (dilation * (kernel - 1) + 1)) // stride + 1
    out_w = (width + 2 * pad - (dilation * (kernel - 1) + 1)) // stride + 1
    col = col.reshape(c, kernel, kernel, out_h, out_w)
    padded = np.zeros((c, height + 2 * pad + stride * out_h, width + 2 * pad + stride * out_w), np.float32)
    for kh in range(kernel):
        for kw in range(kernel):  # float32 adds, one kernel offset at a time: the stock order per pixel
            r, q = kh * dilation, kw * dilation
            padded[:, r:r + stride * out_h:stride, q:q + stride * out_w:stride] += col[:, kh, kw]
    return padded[:, pad:pad + height, pad:pad + width]


@pytest.mark.parametrize("kernel,stride,pad,dilation", [
    (3, 1, 1, 1), (7, 2, 3, 1), (5, 1, 2, 1), (1, 1, 0, 1), (3, 2, 0, 1), (3, 3, 2, 1), (3, 1, 2, 2), (4, 3, 5, 1)])
def test_im2col_and_col2im_match_the_stock_loops_bit_for_bit(tmp_path, kernel, stride, pad, dilation):
    """Caffe's Im2col layer runs im2col_cpu forward and col2im_cpu backward, as convolution does."""
    shape = (2, 3, 9, 8)
    net = one_layer_net(tmp_path, shape, 'name: "col" type: "Im2col" bottom: "data" top: "col" convolution_param { '
                        f"kernel_size: {kernel} stride: {stride} pad: {pad} dilation: {dilation} }}")
    rng = np.random.default_rng(kernel * 100 + stride * 10 + pad)
    x = rng.normal(size=shape).astype(np.float32)
    net.blobs["data"].data[...] = x
    net.forward()
    col_diff = rng.normal(size=net.blobs["col"].data.shape).astype(np.float32)
    net.blobs["col"].diff[...] = col_diff
    net.backward()
    for n in range(shape[0]):
        np.testing.assert_array_equal(net.blobs["col"].data[n].reshape(-1), stock_im2col(x[n], kernel, stride, pad, dilation).reshape(-1))
        np.testing.assert_array_equal(
            net.blobs["data"].diff[n], stock_col2im(col_diff[n], shape[1:], kernel, stride, pad, dilation))


def test_caffes_gtests_passed_in_the_build():
    """docker/build-caffe.sh runs Caffe's own gtests for every patched part on CPU builds, and fails the build otherwise."""
    info = build_info()
    if info.get("device") != "cpu":
        pytest.skip("the gtests run in CPU builds only")
    results = info.get("gtests", {})
    assert set(results) >= {"pooling_layer", "lrn_layer", "im2col_layer", "convolution_layer", "inner_product_layer"}, info
    for name, result in results.items():
        assert re.fullmatch(r"\d+ tests?\.", result), (name, result)


def openblas_sgemm():
    """(BlasInfo, cblas_sgemm) of the very BLAS libcaffe links, or a skip if it is not OpenBLAS."""
    import ctypes

    from breaking_nn.blas_info import caffe_blas

    info = caffe_blas()
    if info.api != "openblas":
        pytest.skip(f"Caffe links {info.library}, not OpenBLAS")
    lib = ctypes.CDLL(info.library)
    i, f, p = ctypes.c_int, ctypes.c_float, ctypes.c_void_p
    lib.cblas_sgemm.argtypes = [i, i, i, i, i, i, f, p, i, p, i, f, p, i]
    lib.cblas_sgemm.restype = None
    return info, lib.cblas_sgemm


def test_gemm_beta_zero_as_memset_then_add_gives_the_stock_bits_under_this_kernel():
    """Patch 0008 replaces sgemm(beta = 0) by memset + sgemm(beta = 1). On this machine's own kernel (never
    OPENBLAS_CORETYPE changed), both give the same bits at GoogLeNet's convolution and inner-product shapes
    and at random ones, every transpose: the claim holds per kernel, as the README says."""
    info, sgemm = openblas_sgemm()
    row_major, no_trans, trans = 101, 111, 112
    rng = np.random.default_rng(8)
    shapes = [(64, 3136, 147), (192, 784, 576), (128, 196, 832), (384, 49, 1728), (2, 10, 60), (1000, 1, 1024)]
    shapes += [tuple(int(x) for x in rng.integers(1, 300, 3)) for _ in range(20)]
    for m, n, k in shapes:
        for trans_a in (False, True):
            for trans_b in (False, True):
                a = rng.standard_normal((k, m) if trans_a else (m, k), dtype=np.float32)
                b = rng.standard_normal((n, k) if trans_b else (k, n), dtype=np.float32)
                outputs = []
                for beta, start in ((0.0, np.nan), (1.0, 0.0)):  # stock: C ignored; patched: C memset to 0
                    c = np.full((m, n), start, np.float32)
                    sgemm(row_major, trans if trans_a else no_trans, trans if trans_b else no_trans, m, n, k, 1.0,
                          a.ctypes.data, a.shape[1], b.ctypes.data, b.shape[1], beta, c.ctypes.data, n)
                    outputs.append(c.view(np.uint32))
                assert np.array_equal(*outputs), (info, m, n, k, trans_a, trans_b)
