"""The speed patches give stock Caffe's numbers: data-only backward and the fast CPU pooling."""
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


def pooling_net(tmp_path, shape, kernel, stride, pad, method, mask_top):
    caffe = import_caffe()
    caffe.set_mode_cpu()
    tops = 'top: "pool" top: "mask"' if mask_top else 'top: "pool"'
    proto = tmp_path / f"pool-{method}-{kernel}-{stride}-{pad}-{mask_top}.prototxt"
    proto.write_text(
        "force_backward: true\n"
        f'layer {{ name: "data" type: "Input" top: "data" input_param {{ shape {{ {" ".join(f"dim: {d}" for d in shape)} }} }} }}\n'
        f'layer {{ name: "pool" type: "Pooling" bottom: "data" {tops} '
        f"pooling_param {{ pool: {method} kernel_size: {kernel} stride: {stride} pad: {pad} }} }}\n")
    return caffe.Net(str(proto), caffe.TEST)


@pytest.mark.parametrize("method", ["MAX", "AVE"])
@pytest.mark.parametrize("kernel,stride,pad", [(3, 2, 0), (3, 1, 1), (2, 2, 0), (3, 2, 1), (5, 3, 2), (7, 1, 0)])
def test_cpu_pooling_matches_the_stock_loop_bit_for_bit(tmp_path, method, kernel, stride, pad):
    rng = np.random.default_rng(kernel * 10 + stride + pad)
    shape = (2, 3, 13, 11) if kernel < 7 else (1, 4, 7, 7)
    x = rng.normal(size=shape).astype(np.float32)
    x[x < -0.5] = 0  # ties, as after a ReLU
    x.flat[:: 7] = -0.0
    net = pooling_net(tmp_path, shape, kernel, stride, pad, method, mask_top=method == "MAX")
    net.blobs["data"].data[...] = x
    net.forward()
    top_diff = rng.normal(size=net.blobs["pool"].data.shape).astype(np.float32)
    net.blobs["pool"].diff[...] = top_diff
    net.backward()
    for n in range(shape[0]):
        expected, index = stock_pooling(x[n], kernel, stride, pad, method)
        np.testing.assert_array_equal(net.blobs["pool"].data[n], expected)
        assert np.array_equal(np.signbit(net.blobs["pool"].data[n]), np.signbit(expected))
        if method == "MAX":
            np.testing.assert_array_equal(net.blobs["mask"].data[n], index.astype(np.float32))
            grad = np.zeros(shape[1:], np.float32).reshape(shape[1], -1)
            for ch in range(shape[1]):
                np.add.at(grad[ch], index[ch].ravel(), top_diff[n, ch].ravel())
            np.testing.assert_array_equal(net.blobs["data"].diff[n], grad.reshape(shape[1:]))


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


def test_caffes_pooling_gtest_passed_in_the_build():
    """docker/build-caffe.sh runs Caffe's test_pooling_layer gtest on CPU builds and fails the build otherwise."""
    info = build_info()
    if info.get("device") != "cpu":
        pytest.skip("the pooling gtest runs in CPU builds only")
    assert re.fullmatch(r"\d+ tests?\.", info.get("pooling_gtest", "")), info
