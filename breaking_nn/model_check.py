"""Check a Caffe model's files before Caffe opens them: no bad file can kill the process.

Caffe answers a bad file with a failed ``CHECK``: it aborts the whole process
(a Jupyter kernel dies with the user's work), or, for weights of another
network, it loads nothing and says nothing. :func:`check_model_files` finds
each of these first and raises :class:`~breaking_nn.errors.ModelError`, which
names the file, the layer, what does not match, and the fix.

This module is part of the model floor (with :mod:`breaking_nn.model` and
:mod:`breaking_nn.caffe_runtime`): it calls Caffe, in a child process only.

**Checked in a child process** (``python -c`` with :data:`sys.executable`),
because Python cannot predict every ``CHECK`` Caffe makes while it sets a net
up: Caffe builds the net from the prototxt, in the TEST phase, without weights
(unknown layer type, missing bottom blob, bad layer parameters, shapes that do
not fit, a data layer whose database is missing, ...). The child prints the
net's facts as JSON (each layer's name, type and parameter blob shapes; the
input and output blobs and their shapes). If the child dies by a signal or
exits non-zero, glog's last ``F...`` line (``Check failed: ...``) becomes the
error, with the layer at fault: the one Caffe's message names, the layers of an
unknown type, or else the layer found by setting up prefixes of the net, each
in a child, by bisection (on this error path only).

**Checked in this process**, before and after the child, in Python:

* the prototxt parses as a text-format ``NetParameter`` (with pycaffe's
  ``caffe_pb2``), before the child runs;
* from the child's facts: the net has an input blob of shape (N, 3, H, W) and
  its last layer is a ``Softmax`` giving (N, K) or (N, K, 1, 1) probabilities;
* the caffemodel is a regular file of at most 2 GiB whose first fields are
  ``NetParameter`` fields (checked before it is read whole), and parses as a
  binary ``NetParameter`` with ``caffe_pb2`` (protobuf's native upb parser: a
  28 MB file in about 0.1 s, where pure-Python protobuf took 13 s); it uses
  either ``layer`` or the legacy V1 ``layers`` field, not both, and not the V0
  format that Caffe's upgrade may abort on (Caffe's ``upgrade_proto.cpp``);
* every caffemodel layer whose name is a net layer has that layer's number of
  parameter blobs, each of the same shape (Caffe's ``Blob::ShapeEquals``: a
  legacy num/channels/height/width blob matches a shape of at most 4 axes
  padded with 1s on the left) and holding exactly that many values (what
  ``Net::CopyTrainedLayersFrom`` and ``Blob::FromProto`` CHECK);
* every net layer with parameters of its own (not shared from an earlier layer)
  finds its weights in the caffemodel. Caffe itself skips such a layer without a
  word and leaves it at its random filler.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Optional, Union

from .caffe_runtime import import_caffe
from .errors import ModelError

if TYPE_CHECKING:
    from caffe.proto import caffe_pb2

Shape = tuple[int, ...]
PathLike = Union[str, Path]

#: Seconds the child may take to set a net up (GoogLeNet: about 1 s).
CHILD_TIMEOUT = 300

_NO_SUCH_NET = "give the deploy .prototxt that came with the model"
_OTHER_WEIGHTS = "give the .caffemodel trained for this prototxt (the two files come together)"


@dataclass(frozen=True)
class NetSummary:
    """What :func:`check_model_files` learnt of a net that Caffe can load safely."""

    prototxt: Path
    weights: Optional[Path]
    #: name of the input blob (the net's first input) and its shape (N, C, H, W)
    input_blob: str
    input_shape: tuple[int, int, int, int]
    #: name of the output blob (the last Softmax's top) and its number of classes K
    output_blob: str
    n_classes: int
    #: parameter blob shapes of each layer that has parameters, in net order
    params: Mapping[str, tuple[Shape, ...]]


def check_model_files(prototxt: PathLike, weights: Optional[PathLike]) -> NetSummary:
    """Raise :class:`ModelError` unless Caffe can load ``prototxt`` with ``weights`` and predict.

    ``prototxt`` is a deploy net definition; ``weights`` a ``.caffemodel``, or
    None for an untrained net. Both must exist. Nothing is left written (only the
    search for a failing layer uses a temporary folder, removed after). The module
    docstring lists each check and where it runs (child process or here).
    """
    prototxt = Path(prototxt)
    weights = None if weights is None else Path(weights)
    for path, what in ((prototxt, "model definition (deploy .prototxt)"), (weights, "weights file (.caffemodel)")):
        if path is not None:
            _check_regular_file(path, what)
    definition = _parse_prototxt(prototxt)
    in_file = read_caffemodel(weights) if weights is not None else None   # cheap: before the child
    facts = net_facts(prototxt, definition)
    summary = _summary(prototxt, weights, facts)
    if weights is not None:
        _check_weights(weights, in_file, prototxt, facts)
    return summary


# -- the prototxt -------------------------------------------------------------------

def _parse_prototxt(prototxt: Path) -> caffe_pb2.NetParameter:
    """In this process: ``prototxt`` parsed as a text-format ``caffe_pb2.NetParameter``."""
    import_caffe()
    from caffe.proto import caffe_pb2
    from google.protobuf import text_format

    try:
        text = prototxt.read_text()
    except UnicodeDecodeError:
        raise ModelError(f"{prototxt} is a binary file, not a network definition (text .prototxt): "
                         "pass the deploy .prototxt first and the .caffemodel second") from None
    try:
        return text_format.Merge(text, caffe_pb2.NetParameter())
    except text_format.ParseError as exc:
        raise ModelError(f"{prototxt} is not a Caffe network definition (text-format NetParameter): "
                         f"{str(exc).rstrip('.')}. Fix that line, or {_NO_SUCH_NET}") from None


#: Run by the child: set the net up, print its facts as one JSON line after a marker.
_CHILD = r"""
import json, sys
import caffe
caffe.set_mode_cpu()
net = caffe.Net(sys.argv[1], caffe.TEST)
owners = {}
layers = []
for name, layer in zip(net._layer_names, net.layers):
    blobs = [list(b.data.shape) for b in layer.blobs]
    pointers = [b.data.__array_interface__["data"][0] for b in layer.blobs]
    shared = [owners.setdefault(p, name) != name for p in pointers]
    layers.append({"name": name, "type": layer.type, "blobs": blobs, "shared": shared})
blob = lambda n: {"name": n, "shape": list(net.blobs[n].data.shape)}
facts = {"layers": layers, "inputs": [blob(n) for n in net.inputs], "outputs": [blob(n) for n in net.outputs]}
print("\n@net-facts@ " + json.dumps(facts), flush=True)
"""
_MARKER = "@net-facts@ "
_FACTS_CACHE: dict[tuple[str, int, int], dict] = {}


def net_facts(prototxt: PathLike, definition: Optional[caffe_pb2.NetParameter] = None) -> dict:
    """In a child process: Caffe sets the net of ``prototxt`` up; return its facts.

    First, here, ``prototxt`` must parse as a text-format ``NetParameter``
    (``definition``: that parse, where the caller has it).

    ``{"layers": [{"name", "type", "blobs": [shape, ...], "shared": [bool, ...]}],
    "inputs": [{"name", "shape"}], "outputs": [{"name", "shape"}]}``, cached per
    file (path, size, modification time). A child that Caffe aborts, or that
    exits non-zero, becomes a :class:`ModelError` with Caffe's last message.
    """
    prototxt = Path(prototxt)
    stat = prototxt.stat()
    key = (str(prototxt.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _FACTS_CACHE:
        _FACTS_CACHE[key] = _run_child(prototxt, definition or _parse_prototxt(prototxt))
    return _FACTS_CACHE[key]


def _run_child(prototxt: Path, net: caffe_pb2.NetParameter) -> dict:
    child = _child(prototxt)
    facts = [line[len(_MARKER):] for line in child.stdout.splitlines() if line.startswith(_MARKER)]
    if child.returncode == 0 and facts:
        return json.loads(facts[-1])
    how, what = _caffe_complaint(child)
    unknown = re.search(r"Unknown layer type: (\S+)", what)
    if unknown:
        named = [layer.name for layer in net.layer if layer.type == unknown.group(1)]
        what = re.sub(r" \(known types: .*", "", what) + " (caffe.layer_type_list() lists the known ones)"
    else:
        named = [] if "layer '" in what else list(filter(None, [_failing_layer(net)]))
    where = f" at layer{'s' * (len(named) > 1)} {', '.join(repr(n) for n in named)}" if named else ""
    raise ModelError(f"{prototxt}: Caffe cannot set this net up{where} ({how}): {what}. "
                     f"Fix the prototxt there, or {_NO_SUCH_NET}")


def _child(prototxt: Path) -> subprocess.CompletedProcess:
    """Run :data:`_CHILD` on ``prototxt``: Caffe sets the net up in a process of its own."""
    caffe = import_caffe()
    env = dict(os.environ, GLOG_minloglevel="1", GLOG_logtostderr="1")
    caffe_dir = str(Path(caffe.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (caffe_dir, os.environ.get("PYTHONPATH")) if p)
    try:
        return subprocess.run([sys.executable, "-c", _CHILD, str(prototxt)], env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, errors="replace", timeout=CHILD_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise ModelError(f"{prototxt}: Caffe took more than {CHILD_TIMEOUT} s to set this net up; "
                         "check its input shape and layer sizes") from None


def _caffe_complaint(child: subprocess.CompletedProcess) -> tuple[str, str]:
    """(how the child ended, Caffe's last fatal message in its stderr)."""
    lines = child.stderr.splitlines()
    fatal = [m.group(1) for m in map(re.compile(r"^F\d+ [\d:.]+\s+\d+ \S+\] (.*)$").match, lines) if m]
    if fatal:
        what = fatal[-1]
    else:
        errors = [line for line in lines if line.strip() and not line.startswith(("I", "W", "    "))]
        what = errors[-1] if errors else "no message"
    what = what.strip()
    if len(what) > 400:
        what = what[:400] + " ..."
    if child.returncode < 0:
        return f"it aborted, {signal.Signals(-child.returncode).name}", what
    return f"it exited with status {child.returncode}", what


def _failing_layer(net: caffe_pb2.NetParameter) -> Optional[str]:
    """The layer of ``net`` (a parsed prototxt) at which Caffe aborts, where its message names none.

    Bisection on prefixes of the net's layers, each set up in a child
    (about log2(number of layers) children: on this error path only).
    """
    from google.protobuf import text_format

    good, bad = 0, len(net.layer)                  # the first `good` layers set up; the first `bad` do not
    with tempfile.TemporaryDirectory(prefix="breaking_nn-check-") as tmp:
        while bad - good > 1:
            middle = (good + bad) // 2
            prefix = type(net)()
            prefix.CopyFrom(net)
            del prefix.layer[middle:]
            path = Path(tmp) / f"first-{middle}-layers.prototxt"
            path.write_text(text_format.MessageToString(prefix))
            if _child(path).returncode == 0:
                good = middle
            else:
                bad = middle
    return net.layer[bad - 1].name if bad else None


def _summary(prototxt: Path, weights: Optional[Path], facts: dict) -> NetSummary:
    """In this process, from the child's facts: an image input and a Softmax output."""
    layers, inputs, outputs = facts["layers"], facts["inputs"], facts["outputs"]
    if not inputs:
        raise ModelError(f"{prototxt} has no input blob: give a deploy prototxt, with an Input layer "
                         "(or input/input_shape fields), not a train_val one")
    shape = tuple(inputs[0]["shape"])
    if len(shape) != 4 or shape[1] != 3:
        raise ModelError(f"{prototxt}: the input blob '{inputs[0]['name']}' has shape {shape}; the model's "
                         "input must be (N, 3, H, W) colour images")
    last = layers[-1] if layers else {"name": "(none)", "type": "(none)"}
    if last["type"] != "Softmax" or not outputs:
        raise ModelError(f"{prototxt}: the net's last layer '{last['name']}' is {last['type']!r}, not 'Softmax': "
                         "give a deploy prototxt whose output is the class probabilities (a last Softmax layer)")
    out = outputs[-1]
    if len(out["shape"]) < 2 or any(d != 1 for d in out["shape"][2:]):
        raise ModelError(f"{prototxt}: the output blob '{out['name']}' has shape {tuple(out['shape'])}, not "
                         "(N, K) class probabilities: give a classifier's deploy prototxt")
    params = {layer["name"]: tuple(tuple(b) for b in layer["blobs"]) for layer in layers if layer["blobs"]}
    return NetSummary(prototxt=prototxt, weights=weights, input_blob=inputs[0]["name"],
                      input_shape=shape, output_blob=out["name"], n_classes=out["shape"][1], params=params)


# -- the caffemodel -----------------------------------------------------------------

@dataclass(frozen=True)
class FileBlob:
    """One parameter blob of a caffemodel: its shape fields and how many values it holds."""

    shape: Optional[Shape]           #: ``shape { dim }``, or None where the blob uses legacy fields
    legacy: Optional[Shape]          #: (num, channels, height, width) where any is set, else None
    data: int                        #: number of float (or double) values
    diff: int                        #: number of float (or double) gradient values


@dataclass(frozen=True)
class FileLayer:
    """One layer of a caffemodel: its name and parameter blobs."""

    name: str
    blobs: tuple[FileBlob, ...]


#: Caffe reads a binary proto of at most INT_MAX bytes (kProtoReadBytesLimit in src/caffe/util/io.cpp).
CAFFE_READ_LIMIT = 2**31 - 1
#: How much of a caffemodel is looked at before it is read whole.
_HEAD = 1 << 16


def read_caffemodel(weights: PathLike) -> tuple[FileLayer, ...]:
    """In this process: the layers of a binary caffemodel, as Caffe would read and upgrade them.

    The file is parsed with pycaffe's ``caffe_pb2`` (protobuf's native upb parser:
    a 28 MB GoogLeNet caffemodel in about 0.1 s). First, without reading it whole: it must be
    a regular file of at most 2 GiB (Caffe's limit), and its first fields must be
    ``NetParameter`` fields. Raises :class:`ModelError` where Caffe would abort: a
    file that is not a binary ``NetParameter``, one with both ``layer`` and
    ``layers``, or the V0 format. Handles the current ``layer`` field and the
    legacy V1 ``layers``.
    """
    import_caffe()
    from caffe.proto import caffe_pb2
    from google.protobuf.message import DecodeError

    weights = Path(weights)
    if weights.suffix == ".h5":
        raise ModelError(f"{weights}: HDF5 weights are not supported; give a binary .caffemodel "
                         "(Caffe's net.save() writes one)")
    _check_regular_file(weights, "weights file (.caffemodel)")
    size = weights.stat().st_size
    not_caffemodel = (f"{weights} is not a Caffe .caffemodel (binary NetParameter): it is truncated or a different "
                      f"kind of file. Fix: {_OTHER_WEIGHTS}; download it again if it was cut short")
    if size > CAFFE_READ_LIMIT:
        raise ModelError(f"{weights} is {size:,} bytes, more than the {CAFFE_READ_LIMIT:,} bytes (2 GiB) Caffe reads "
                         f"of a caffemodel: it is not one Caffe can load. Fix: {_OTHER_WEIGHTS}")
    with open(weights, "rb") as f:
        if not _head_is_net_parameter(f.read(_HEAD), size, caffe_pb2.NetParameter.DESCRIPTOR):
            raise ModelError(not_caffemodel)
        f.seek(0)
        data = f.read()
    net = caffe_pb2.NetParameter()
    try:
        net.ParseFromString(data)
    except DecodeError:
        raise ModelError(not_caffemodel) from None
    del data
    if len(net.layer) and len(net.layers):
        raise ModelError(f"{weights} has both 'layer' and legacy 'layers' fields, which Caffe refuses. "
                         f"Fix: {_OTHER_WEIGHTS}")
    if any(layer.HasField("layer") for layer in net.layers):
        raise ModelError(f"{weights} uses Caffe's V0 layer format (2014 and before), which Caffe may "
                         "abort on while upgrading it: convert it first with Caffe's "
                         "upgrade_net_proto_binary tool")
    return tuple(FileLayer(name=layer.name, blobs=tuple(map(_file_blob, layer.blobs)))
                 for layer in (net.layer or net.layers))


def _file_blob(blob: caffe_pb2.BlobProto) -> FileBlob:
    """A parsed ``BlobProto``'s shape fields and value counts (doubles where it has any, as Caffe reads)."""
    has_legacy = any(blob.HasField(f) for f in ("num", "channels", "height", "width"))
    return FileBlob(shape=None if has_legacy else tuple(blob.shape.dim),
                    legacy=(blob.num, blob.channels, blob.height, blob.width) if has_legacy else None,
                    data=len(blob.double_data) or len(blob.data), diff=len(blob.double_diff) or len(blob.diff))


def _head_is_net_parameter(head: bytes, size: int, descriptor) -> bool:
    """Whether the first fields in ``head`` (the start of a ``size``-byte file) are NetParameter fields.

    Each must have a known field number and a wire type that field can have, and a
    length-delimited one must end within the file. Only fields that start in ``head``
    are looked at: a cheap refusal of files that are not caffemodels at all (zeros,
    text, images) before a possibly large file is read whole.
    """
    from google.protobuf.descriptor import FieldDescriptor as F

    varint_types = {F.TYPE_INT32, F.TYPE_INT64, F.TYPE_UINT32, F.TYPE_UINT64, F.TYPE_BOOL, F.TYPE_ENUM,
                    F.TYPE_SINT32, F.TYPE_SINT64}
    pos = 0
    try:
        for _ in range(16):
            if pos >= len(head):
                break
            tag, pos = _varint(head, pos)
            field, wire = descriptor.fields_by_number.get(tag >> 3), tag & 7
            if field is None or not (wire == 2 or (wire == 0 and field.type in varint_types)):
                return False
            value, pos = _varint(head, pos)
            if wire == 2:
                if pos + value > size:
                    return False
                pos += value
    except EOFError:                        # the head ends inside a tag or a varint: nothing more to say
        pass
    except ValueError:                      # a varint longer than 10 bytes
        return False
    return True


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    """(value, next position) of the varint at ``pos``: EOFError where ``buf`` ends first, ValueError if too long."""
    value = shift = 0
    while pos < len(buf):
        if shift > 63:
            raise ValueError("varint longer than 10 bytes")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos
    raise EOFError


def _check_regular_file(path: Path, what: str) -> None:
    """Raise :class:`ModelError` unless ``path`` is an existing regular file (not a device, folder or pipe)."""
    if not path.exists():
        raise ModelError(f"{what} {path} does not exist: pass the path of an existing file")
    if not path.is_file():
        raise ModelError(f"{what} {path} is not a regular file (a folder, a device or a pipe): pass the path "
                         "of the file itself")


def _check_weights(weights: Path, in_file: tuple[FileLayer, ...], prototxt: Path, facts: dict) -> None:
    """In this process: the caffemodel's layers fit the net's, and the net's find theirs."""
    net = {}
    for layer in facts["layers"]:
        net.setdefault(layer["name"], layer)            # Caffe copies into the first layer of a name
    fix = f"Fix: {_OTHER_WEIGHTS}"
    found = set()
    for source in in_file:
        target = net.get(source.name)
        if target is None:
            continue                                    # Caffe ignores layers the net lacks
        if target["blobs"]:
            found.add(source.name)
        where = f"{weights}: layer '{source.name}' ({target['type']} in {prototxt.name})"
        if len(source.blobs) != len(target["blobs"]):
            raise ModelError(f"{where} needs {len(target['blobs'])} parameter blobs, the caffemodel has "
                             f"{len(source.blobs)}. {fix}")
        for j, (blob, shape) in enumerate(zip(source.blobs, target["blobs"])):
            shape = tuple(shape)
            if not _shape_equals(shape, blob):
                got = f"num/channels/height/width {blob.legacy}" if blob.legacy else f"shape {blob.shape}"
                raise ModelError(f"{where}, parameter {j}: the prototxt needs shape {shape}, the caffemodel "
                                 f"has {got}. {fix}")
            count = _count(shape)
            if blob.data != count or blob.diff not in (0, count):
                raise ModelError(f"{where}, parameter {j}: shape {shape} needs {count:,} values, the caffemodel "
                                 f"holds {blob.data:,} (and {blob.diff:,} gradients): the file is damaged. {fix}")
    missing = [layer["name"] for layer in facts["layers"]
               if layer["blobs"] and not all(layer["shared"]) and layer["name"] not in found]
    if missing:
        names = ", ".join(f"'{name}'" for name in missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5
                                                                  else "")
        if found:
            raise ModelError(f"{weights} has no weights for {len(missing)} of the net's layers with parameters: "
                             f"{names}. Caffe would leave them at random values. Fix: give the complete .caffemodel "
                             "trained for this prototxt (download it again if it was cut short)")
        file_names = ", ".join(repr(layer.name) for layer in in_file if layer.blobs)
        file_names = file_names if len(file_names) < 200 else file_names[:200] + " ..."
        raise ModelError(f"{weights} has weights for none of the net's layers with parameters ({names}); its layers "
                         f"are named {file_names or '(none)'}: the weights of another network. Caffe would load it "
                         f"without a word and leave every layer at random values. {fix}")


def _shape_equals(shape: Shape, blob: FileBlob) -> bool:
    """Caffe's ``Blob::ShapeEquals``: legacy 4-D fields match ``shape`` padded with 1s on the left."""
    if blob.legacy is not None:
        return len(shape) <= 4 and (1,) * (4 - len(shape)) + shape == blob.legacy
    return shape == blob.shape


def _count(shape: Shape) -> int:
    count = 1
    for dim in shape:
        count *= dim
    return count
