"""A Caffe classifier that gives gradients with respect to its input image.

Data layouts used throughout (see :mod:`breaking_nn.preprocessing`):

* **image**: (H, W, 3) float, HWC, RGB, 0-1 (see :mod:`breaking_nn.images`);
* **data**: (3, h, w) float32, CHW, what the network eats: for the blog's
  GoogLeNet, BGR, 0-255, resized to 224x224, no mean subtracted; other models
  as their model file says (crop, mean, channel order);
* **probabilities**: (K,) float32 summing to 1, K classes.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
import time
import warnings
import weakref
from pathlib import Path
from typing import Optional, Union

import numpy as np

from . import paths
from .caffe_runtime import import_caffe, use_device
from .current import set_current
from .errors import CaffeNotAvailableError, ModelError
from .generated import WARNING as GENERATED_WARNING
from .generated import generate_weights
from .labels import Label, Labels
from .model_check import check_model_files
from .model_file import BLOG_PREPROCESS, ModelSpec, read_model_file
from .preprocessing import Preprocessing
from .weights import download_weights, resolve_weights

PathLike = Union[str, Path]
#: The ``weights`` value that loads seeded random weights instead of a caffemodel.
GENERATED = "generated"


class GeneratedWeightsWarning(UserWarning):
    """A model was loaded with generated weights: its predictions mean nothing."""


class Classifier:
    """A Caffe net ending in a Softmax, with batch size 1 and gradients to its input.

    Build one with :func:`load_googlenet` or :func:`load_model`.

    >>> model = load_googlenet()                       # doctest: +SKIP
    >>> data = model.preprocess(load_image("liz.jpg"))  # doctest: +SKIP
    >>> probs = model.predict(data, n_preds=1)          # doctest: +SKIP
    label: 283 (Persian cat)
    certainty: 13.94%
    """

    def __init__(self, net, labels: Labels, preprocessing: Optional[dict] = None, *, device: str = "cpu",
                 gpu_id: int = 0, name: str = "model", weight_gradients: bool = False):
        self.net = net
        self.name = name
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
        #: image <-> data, with its adjoint (see breaking_nn.preprocessing)
        self.preprocessing = Preprocessing(input_size=shape[2:], **(preprocessing or BLOG_PREPROCESS))
        self._stock_param_propagation = None
        self.set_weight_gradients(weight_gradients)
        #: (prototxt, caffemodel or None) that model_check passed, set by load_model; None for a bare net
        self.model_files: Optional[tuple[Path, Optional[Path]]] = None
        self._generated_folder = None

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
        """(H, W, 3) RGB 0-1 image -> (3, h, w) float32 data, as the model file says.

        GoogLeNet: resized to 224x224 bilinearly the way ``caffe.io`` does (no
        anti-aliasing, as in 2017), BGR, 0-255, no mean subtracted.
        """
        return self.preprocessing.forward(image)

    def deprocess(self, data: np.ndarray) -> np.ndarray:
        """(3, h, w) data -> (h, w, 3) RGB image clipped to 0-1: what the network sees.

        That is the resized (and cropped) view of the photo, at the network's
        input size, not the photo at its own size.
        """
        self.check_data(data)
        return np.clip(self.preprocessing.deprocess(data), 0.0, 1.0)

    def check_data(self, data: np.ndarray) -> None:
        """Raise :class:`ModelError` unless ``data`` is finite and of shape :attr:`input_shape`."""
        if not isinstance(data, np.ndarray) or data.shape != self.input_shape:
            got = data.shape if isinstance(data, np.ndarray) else type(data).__name__
            raise ModelError(
                f"image data must be a {self.input_shape} array (CHW) as model.preprocess() "
                f"returns, not {got}; pass an (H, W, 3) image through model.preprocess first"
            )
        if not np.isfinite(data).all():
            raise ModelError("image data contains NaN or infinite values")

    # -- the network -------------------------------------------------------------
    def forward(self, data: np.ndarray) -> np.ndarray:
        """Class probabilities (K,) for (3, H, W) BGR 0-255 ``data``: one forward pass."""
        self.check_data(data)
        use_device(self.device, self.gpu_id)
        self._set_batch(1)
        self.net.blobs[self.input_blob].data[0] = data
        return self.net.forward()[self.output_blob][0].copy()

    def _set_batch(self, n: int) -> None:
        """Reshape the net to a batch of ``n`` (a no-op when it already holds ``n``)."""
        blob = self.net.blobs[self.input_blob]
        if blob.data.shape[0] != n:
            blob.reshape(n, *self.input_shape)
            self.net.reshape()

    def batch_size(self, n: int) -> int:
        """Images per pass when ``n`` images are due: all ``n`` on a GPU, one on the CPU.

        Caffe's CPU layers run each image of a batch in turn (one GEMM per
        image), so a batch saves no time there, while its activations cost
        memory: about 200 MB per image for ResNet-50 (``scripts/benchmark_photo.py``
        measures the ratio).
        """
        return max(1, n) if self.device == "gpu" else 1

    def forward_batch(self, data: np.ndarray) -> np.ndarray:
        """Class probabilities (N, K) of a batch ``data`` (N, 3, h, w): one forward pass of N images.

        Each row equals :meth:`forward` of that image alone (Caffe computes the
        images of a batch independently). The net stays shaped for N until a
        call with another N.
        """
        data = self._check_batch(data)
        use_device(self.device, self.gpu_id)
        self._set_batch(len(data))
        self.net.blobs[self.input_blob].data[...] = data
        return self.net.forward()[self.output_blob].copy()

    def forward_backward_batch(self, data: np.ndarray, labels) -> tuple[np.ndarray, np.ndarray]:
        """One batched forward and backward pass: (probabilities (N, K), gradients (N, 3, h, w)).

        ``data`` is (N, 3, h, w) as :meth:`preprocess` makes them, stacked;
        ``labels`` holds N classes (numbers or names). ``gradients[i]`` is
        d P(labels[i]) / d data[i], per data unit, in the layout of ``data``.
        On the CPU, Caffe runs each image's GEMMs in turn, so a batch of N
        costs about N single passes; on a GPU it is cheaper.
        """
        data = self._check_batch(data)
        indices = [self.labels.index(label) for label in labels]
        if len(indices) != len(data):
            raise ModelError(f"forward_backward_batch needs one label per image: {len(data)} images, "
                             f"{len(indices)} labels")
        probs = self.forward_batch(data)
        top = np.zeros_like(self.net.blobs[self.output_blob].data)
        top[np.arange(len(indices)), indices] = 1.0
        grads = self.net.backward(**{self.output_blob: top})[self.input_blob].copy()
        return probs, grads

    def _check_batch(self, data: np.ndarray) -> np.ndarray:
        """``data`` as a finite (N, 3, h, w) float32 array, N >= 1, else :class:`ModelError`."""
        if not isinstance(data, np.ndarray) or data.ndim != 4 or data.shape[1:] != self.input_shape or not len(data):
            got = data.shape if isinstance(data, np.ndarray) else type(data).__name__
            raise ModelError(f"a batch must be an (N, {', '.join(map(str, self.input_shape))}) array of "
                             f"model.preprocess() outputs stacked (N >= 1), not {got}")
        if not np.isfinite(data).all():
            raise ModelError("image data contains NaN or infinite values")
        return np.asarray(data, np.float32)

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
        self._set_batch(1)
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
    model: Union[PathLike, ModelSpec],
    weights: Optional[PathLike] = None,
    labels: Union[Labels, PathLike, None] = None,
    *,
    device: str = "cpu",
    gpu_id: int = 0,
    force_backward: bool = True,
    weight_gradients: bool = False,
) -> Classifier:
    """Load a Caffe classifier described by a model file, ready for attacks.

    ``model`` is a ``model.toml`` (see :mod:`breaking_nn.model_file`; its
    weights are downloaded and verified when missing and it says how). A
    ``weights`` path given here replaces the file's. The short form
    ``load_model(prototxt, caffemodel, labels)`` loads a deploy prototxt with
    the blog's preprocessing; ``labels`` is a :class:`Labels` or a label file,
    ``caffemodel`` None leaves the net untrained.

    ``weights="generated"`` loads seeded random weights instead
    (:mod:`breaking_nn.generated`; nothing is downloaded, every prediction is
    meaningless, a :class:`GeneratedWeightsWarning` says so).

    ``force_backward`` turns on ``force_backward: true`` if the prototxt lacks
    it (without it the input gradient is all zeros). ``device`` is "cpu" or
    "gpu" (CUDA build only). ``weight_gradients`` (default False: backward
    computes the input gradient only) is :meth:`Classifier.set_weight_gradients`.

    The loaded model becomes the current one (see :func:`breaking_nn.use_model`).

    >>> model = load_model("models/open_nsfw/model.toml")   # doctest: +SKIP
    """
    generated = _is_generated(weights)
    spec = _model_spec(model, None if generated else weights, labels)
    folder = None  # generated weights: a temporary folder that lives as long as the model (OpenCV reads it too)
    with contextlib.ExitStack() as stack:
        if generated:
            folder = tempfile.TemporaryDirectory(prefix="breaking-nn-generated-")
            stack.callback(folder.cleanup)  # on failure; popped once the model holds it
            spec = spec.with_weights(generate_weights(spec.prototxt, Path(folder.name) / "generated.caffemodel"))
            warnings.warn(f"{spec.name}: {GENERATED_WARNING}", GeneratedWeightsWarning, stacklevel=2)
        weights_path = _weights_of(spec)
        # Before Caffe opens them: a bad file is a ModelError, not an aborted process.
        check_model_files(spec.prototxt, weights_path)
        caffe = import_caffe()
        use_device(device, gpu_id)
        definition = _with_force_backward(spec.prototxt) if force_backward else None
        try:
            kwargs = {"weights": str(weights_path)} if weights_path is not None else {}
            net = caffe.Net(str(definition or spec.prototxt), caffe.TEST, **kwargs)
        finally:
            if definition is not None and definition != spec.prototxt:
                definition.unlink(missing_ok=True)
        try:
            model = Classifier(net, spec.labels, spec.preprocess, device=device, gpu_id=gpu_id, name=spec.name,
                               weight_gradients=weight_gradients)
        except ModelError as exc:
            raise ModelError(f"{spec.where()}: {exc}") from None
        model.model_files = (spec.prototxt, weights_path)
        if folder is not None:  # removed when the model is collected, explicitly (no ResourceWarning)
            model._generated_folder = folder
            weakref.finalize(model, folder.cleanup)
        stack.pop_all()
    set_current(model)  # the model the blog-style calls (bnn.predict, ...) now use
    return model


def load_googlenet(
    weights: Optional[PathLike] = None,
    *,
    download: bool = True,
    device: str = "cpu",
    gpu_id: int = 0,
    weight_gradients: bool = False,
) -> Classifier:
    """BVLC GoogLeNet (ILSVRC-2012, 1000 classes, 3x224x224 input), ready for attacks.

    Loads ``models/bvlc_googlenet/model.toml``. ``weights`` defaults to
    ``BREAKING_NN_WEIGHTS`` or ``models/bvlc_googlenet/``, downloaded (53.5 MB,
    verified) when missing and ``download`` is true; ``"generated"`` loads
    seeded random weights instead (no download; meaningless predictions). It
    becomes the current model, as with :func:`load_model`.
    ``weight_gradients``: see :meth:`Classifier.set_weight_gradients`.
    """
    model_file = paths.googlenet_model_file()
    if not model_file.is_file():
        raise ModelError(
            f"GoogLeNet's model file {model_file} is missing: run from the breaking-nn checkout "
            "(pip install -e .) or set BREAKING_NN_MODELS_DIR to its models/ folder"
        )
    if _is_generated(weights):
        with warnings.catch_warnings():  # raised again below, pointing at the caller's line
            warnings.simplefilter("ignore", GeneratedWeightsWarning)
            model = load_model(read_model_file(model_file).with_weights(None), GENERATED, device=device,
                               gpu_id=gpu_id, weight_gradients=weight_gradients)
        warnings.warn(f"{model.name}: {GENERATED_WARNING}", GeneratedWeightsWarning, stacklevel=2)
        return model
    spec = read_model_file(model_file).with_weights(resolve_weights(weights, download=download))
    return load_model(spec, device=device, gpu_id=gpu_id, weight_gradients=weight_gradients)


def _is_generated(weights: object) -> bool:
    """Whether ``weights`` asks for generated weights (the string "generated")."""
    return isinstance(weights, str) and weights == GENERATED


def _model_spec(model: Union[PathLike, ModelSpec], weights: Optional[PathLike],
                labels: Union[Labels, PathLike, None]) -> ModelSpec:
    """The :class:`ModelSpec` for :func:`load_model`'s arguments (either form)."""
    if isinstance(model, ModelSpec) or str(model).endswith(".toml"):
        if labels is not None:
            raise ModelError("labels come from the model file: leave out the labels argument with a model.toml")
        spec = model if isinstance(model, ModelSpec) else read_model_file(model)
        return spec if weights is None else spec.with_weights(weights)
    prototxt = Path(model)
    if not prototxt.is_file():
        raise ModelError(f"model definition {prototxt} does not exist: pass a model.toml or a deploy .prototxt")
    if labels is None:
        raise ModelError(f"load_model({str(prototxt)!r}, ...) needs labels: a Labels or a label file "
                         "(or describe the model in a model.toml)")
    if not isinstance(labels, Labels):
        labels = Labels.from_file(labels)
    return ModelSpec(name=prototxt.stem, prototxt=prototxt, weights=None, labels=labels).with_weights(weights)


def _weights_of(spec: ModelSpec) -> Optional[Path]:
    """The caffemodel to load: the model's file, downloaded first when it says how."""
    if spec.weights is None or spec.weights.is_file():
        return spec.weights
    if spec.download is not None:
        d = spec.download
        return download_weights(spec.weights, spec=d, hint=(
            f"Try again, or download {d.url} by hand ({d.size:,} bytes, SHA-1 {d.sha1}) and save it as "
            f"{spec.weights} (named by {spec.where()})."))
    raise ModelError(f"weights file {spec.weights} does not exist: pass the path of a .caffemodel")


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
