"""A Caffe classifier that gives gradients with respect to its input image.

Data layouts used throughout (the blog's, set up with ``caffe.io.Transformer``):

* **image**: (H, W, 3) float, HWC, RGB, 0-1 (see :mod:`breaking_nn.images`);
* **data**: (3, H', W') float32, CHW, BGR, 0-255, resized to the network's
  input (224x224 for GoogLeNet), no mean subtracted: what the network eats;
* **probabilities**: (K,) float32 summing to 1, K classes.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Optional, Union

import numpy as np

from . import paths
from .caffe_runtime import import_caffe, use_device
from .errors import CaffeNotAvailableError, ModelError
from .labels import Label, Labels, imagenet_labels
from .weights import resolve_weights

PathLike = Union[str, Path]


class Classifier:
    """A Caffe net ending in a Softmax, with batch size 1 and gradients to its input.

    Build one with :func:`load_googlenet` or :func:`load_model`.

    >>> model = load_googlenet()                       # doctest: +SKIP
    >>> data = model.preprocess(load_image("liz.jpg"))  # doctest: +SKIP
    >>> probs = model.predict(data, n_preds=1)          # doctest: +SKIP
    label: 283 (Persian cat)
    certainty: 13.94%
    """

    def __init__(self, net, labels: Labels, *, device: str = "cpu", gpu_id: int = 0,
                 weight_gradients: bool = False):
        caffe = import_caffe()
        self.net = net
        self.labels = labels
        self.device, self.gpu_id = device, gpu_id
        self.input_blob = net.inputs[0]
        self.output_blob = net.outputs[-1]
        if net.layers[-1].type != "Softmax":
            raise ModelError(
                f"the model's last layer is {net.layers[-1].type!r}, not 'Softmax': give a deploy "
                "prototxt whose output is the class probabilities"
            )
        shape = net.blobs[self.input_blob].data.shape
        if len(shape) != 4 or shape[1] != 3:
            raise ModelError(f"the model's input must be (N, 3, H, W) colour images, not {shape}")
        net.blobs[self.input_blob].reshape(1, *shape[1:])
        net.reshape()
        n_classes = net.blobs[self.output_blob].data.shape[1]
        if n_classes != len(labels):
            raise ModelError(f"the model predicts {n_classes} classes but the label list has {len(labels)} names")
        self.transformer = caffe.io.Transformer({self.input_blob: net.blobs[self.input_blob].data.shape})
        self.transformer.set_transpose(self.input_blob, (2, 0, 1))  # HWC -> CHW
        self.transformer.set_raw_scale(self.input_blob, 255)  # 0-1 -> 0-255
        self.transformer.set_channel_swap(self.input_blob, (2, 1, 0))  # RGB -> BGR
        self._stock_param_propagation = None
        self.set_weight_gradients(weight_gradients)

    # -- what backward computes ---------------------------------------------------
    def set_weight_gradients(self, enabled: bool) -> None:
        """Whether backward also computes weight and bias gradients (Caffe's stock behaviour).

        Attacks need only the gradient with respect to the input, so by default
        backward skips every layer's parameter gradients (a convolution's weight
        GEMM, for instance); the input gradient is bit-for-bit the same either
        way. ``True`` restores what Caffe's ``Net`` set up at load time.
        """
        layers = list(self.net.layers)
        if not all(hasattr(layer, "set_param_propagate_down") for layer in layers):
            raise CaffeNotAvailableError(
                "this pycaffe lacks Layer.set_param_propagate_down (a build from before breaking-nn's "
                "patches): run `make setup` to rebuild Caffe"
            )
        if self._stock_param_propagation is None:  # what Net::Init chose, remembered once
            self._stock_param_propagation = [
                [layer.param_propagate_down(i) for i in range(len(layer.blobs))] for layer in layers
            ]
        for layer, stock in zip(layers, self._stock_param_propagation):
            for i, value in enumerate(stock):
                layer.set_param_propagate_down(i, bool(value and enabled))
        self.weight_gradients = bool(enabled)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(3, H, W): the shape :meth:`preprocess` returns and the net accepts."""
        return tuple(self.net.blobs[self.input_blob].data.shape[1:])

    @property
    def n_classes(self) -> int:
        """K: the number of classes, labelled 0 .. K-1."""
        return len(self.labels)

    # -- layouts --------------------------------------------------------------
    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """(H, W, 3) RGB 0-1 image -> (3, H', W') BGR 0-255 float32 data.

        Resizes bilinearly the way ``caffe.io`` does (no anti-aliasing, as in 2017).
        """
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3:
            raise ModelError(
                f"preprocess takes an (H, W, 3) RGB image in 0-1 (HWC, from load_image), not shape {image.shape}"
            )
        return self.transformer.preprocess(self.input_blob, image)

    def deprocess(self, data: np.ndarray) -> np.ndarray:
        """(3, H, W) BGR 0-255 data -> (H, W, 3) RGB image, clipped to 0-1 for display."""
        self.check_data(data)
        return np.clip(self.transformer.deprocess(self.input_blob, data), 0.0, 1.0)

    def check_data(self, data: np.ndarray) -> None:
        """Raise :class:`ModelError` unless ``data`` is finite and of shape :attr:`input_shape`."""
        if not isinstance(data, np.ndarray) or data.shape != self.input_shape:
            got = data.shape if isinstance(data, np.ndarray) else type(data).__name__
            raise ModelError(
                f"image data must be a {self.input_shape} array (CHW, BGR, 0-255) as model.preprocess() "
                f"returns, not {got}; pass an (H, W, 3) image through model.preprocess first"
            )
        if not np.isfinite(data).all():
            raise ModelError("image data contains NaN or infinite values")

    # -- the network -------------------------------------------------------------
    def forward(self, data: np.ndarray) -> np.ndarray:
        """Class probabilities (K,) for (3, H, W) BGR 0-255 ``data``: one forward pass."""
        self.check_data(data)
        use_device(self.device, self.gpu_id)
        self.net.blobs[self.input_blob].data[0] = data
        return self.net.forward()[self.output_blob][0].copy()

    def _backward_from(self, label: int) -> np.ndarray:
        """Gradient of P(label) w.r.t. the input of the last forward pass: (3, H, W)."""
        top = np.zeros_like(self.net.blobs[self.output_blob].data)
        top[0, label] = 1.0
        return self.net.backward(**{self.output_blob: top})[self.input_blob][0].copy()

    def forward_backward(self, data: np.ndarray, label: Label) -> tuple[np.ndarray, np.ndarray]:
        """One forward and one backward pass: (probabilities (K,), gradient (3, H, W)).

        The gradient is d P(label) / d data, in the layout of ``data`` (CHW, BGR,
        per 0-255 unit). It is all zeros if the net lacks ``force_backward``.
        """
        index = self.labels.index(label)
        probs = self.forward(data)
        return probs, self._backward_from(index)

    def compute_gradient(self, data: np.ndarray, label: Label) -> np.ndarray:
        """Gradient of the probability of ``label`` w.r.t. ``data``: (3, H, W) float32, CHW BGR.

        ``label`` is a class number (673) or name ("mouse").
        """
        return self.forward_backward(data, label)[1]

    def predict(self, data: np.ndarray, n_preds: int = 6, display_output: bool = True) -> np.ndarray:
        """Class probabilities (K,) of ``data``; prints the top ``n_preds`` as the blog does.

        ``label: 283 (Persian cat), certainty: 13.94%`` a line, or two lines
        (label, then certainty) when ``n_preds == 1``.
        """
        if not isinstance(n_preds, int) or n_preds < 1:
            raise ValueError(f"n_preds must be a whole number >= 1, not {n_preds!r}")
        probs = self.forward(data)
        if display_output:
            print(format_predictions(probs, self.labels, n_preds))
        return probs

    def time_layers(self, data: np.ndarray, label: Label, repeats: int = 5) -> list[tuple[str, str, float, float]]:
        """Per-layer time of one forward and one backward pass (as in :meth:`forward_backward`).

        Runs the net one layer at a time, ``repeats`` times; returns one
        ``(layer name, layer type, forward seconds, backward seconds)`` per
        layer, in net order, each the median over the repeats.
        """
        index = self.labels.index(label)
        self.check_data(data)
        use_device(self.device, self.gpu_id)
        net = self.net
        n = len(net.layers)
        fwd, bwd = [[] for _ in range(n)], [[] for _ in range(n)]
        for _ in range(repeats):
            net.blobs[self.input_blob].data[0] = data
            for i in range(n):
                start = time.perf_counter()
                net._forward(i, i)
                fwd[i].append(time.perf_counter() - start)
            top = net.blobs[self.output_blob].diff
            top[...] = 0
            top[0, index] = 1.0
            for i in reversed(range(n)):
                start = time.perf_counter()
                net._backward(i, i)
                bwd[i].append(time.perf_counter() - start)
        return [(name, layer.type, float(np.median(f)), float(np.median(b)))
                for name, layer, f, b in zip(net._layer_names, net.layers, fwd, bwd)]


def format_predictions(probs: np.ndarray, labels: Labels, n_preds: int = 6) -> str:
    """The blog's text for the ``n_preds`` most probable classes of ``probs`` (K,)."""
    lines = []
    for i in np.argsort(probs)[::-1][:n_preds]:
        certainty = round(float(probs[i]) * 100, 2)
        sep = "\n" if n_preds == 1 else ", "
        lines.append(f"label: {i:03d} ({labels.name(int(i))}){sep}certainty: {certainty}%")
    return "\n".join(lines)


def load_model(
    prototxt: PathLike,
    weights: Optional[PathLike],
    labels: Union[Labels, PathLike],
    *,
    device: str = "cpu",
    gpu_id: int = 0,
    force_backward: bool = True,
    weight_gradients: bool = False,
) -> Classifier:
    """Load any Caffe classifier: deploy prototxt, caffemodel (None: untrained) and labels.

    ``labels`` is a :class:`Labels` or a label file. ``force_backward`` turns on
    ``force_backward: true`` if the prototxt lacks it (without it the input
    gradient is all zeros). ``device`` is "cpu" or "gpu" (CUDA build only).
    ``weight_gradients`` (default False: backward computes the input gradient
    only) is :meth:`Classifier.set_weight_gradients`.
    """
    caffe = import_caffe()
    prototxt = Path(prototxt)
    if not prototxt.is_file():
        raise ModelError(f"model definition {prototxt} does not exist: pass the path of a deploy .prototxt")
    if weights is not None and not Path(weights).is_file():
        raise ModelError(f"weights file {weights} does not exist: pass the path of a .caffemodel")
    if not isinstance(labels, Labels):
        labels = Labels.from_file(labels)
    use_device(device, gpu_id)
    definition = _with_force_backward(prototxt) if force_backward else None
    try:
        kwargs = {"weights": str(weights)} if weights is not None else {}
        net = caffe.Net(str(definition or prototxt), caffe.TEST, **kwargs)
    finally:
        if definition is not None and definition != prototxt:
            definition.unlink(missing_ok=True)
    return Classifier(net, labels, device=device, gpu_id=gpu_id, weight_gradients=weight_gradients)


def load_googlenet(
    weights: Optional[PathLike] = None,
    *,
    download: bool = True,
    device: str = "cpu",
    gpu_id: int = 0,
    weight_gradients: bool = False,
) -> Classifier:
    """BVLC GoogLeNet (ILSVRC-2012, 1000 classes, 3x224x224 input), ready for attacks.

    ``weights`` defaults to ``BREAKING_NN_WEIGHTS`` or ``models/bvlc_googlenet/``,
    downloaded (53.5 MB, verified) when missing and ``download`` is true.
    ``weight_gradients``: see :meth:`Classifier.set_weight_gradients`.
    """
    prototxt = paths.googlenet_prototxt()
    if not prototxt.is_file():
        raise ModelError(
            f"GoogLeNet's definition {prototxt} is missing: run from the breaking-nn checkout "
            "(pip install -e .) or set BREAKING_NN_MODELS_DIR to its models/ folder"
        )
    return load_model(prototxt, resolve_weights(weights, download=download), imagenet_labels(),
                      device=device, gpu_id=gpu_id, weight_gradients=weight_gradients)


def _with_force_backward(prototxt: Path) -> Path:
    """``prototxt`` itself if it sets force_backward, else a temporary copy that does."""
    import_caffe()
    from caffe.proto import caffe_pb2
    from google.protobuf import text_format

    param = caffe_pb2.NetParameter()
    try:
        text_format.Merge(prototxt.read_text(), param)
    except text_format.ParseError as exc:
        raise ModelError(f"{prototxt} is not a valid Caffe prototxt: {exc}") from None
    if param.force_backward:
        return prototxt
    param.force_backward = True
    fd, name = tempfile.mkstemp(suffix=".prototxt", prefix="force_backward_")
    with os.fdopen(fd, "w") as f:
        f.write(text_format.MessageToString(param))
    return Path(name)
