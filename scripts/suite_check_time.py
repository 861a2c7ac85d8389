"""Attack photos with the CLI's defaults on open_nsfw (target 1) and time one full suite check.

Prints, per photo: the --exact attack's steps, L-infinity and suite; the
default robust one's steps, L-infinity, suite by group and the members not
fooled; the seconds of one complete check of the attacked pixels and of an
early-stopping one of the original photo; and 12 deployments outside the
suite. Names the BLAS kernel. Not a test.

    .venv/bin/python scripts/suite_check_time.py [PHOTO ...]    # scikit-image names or image files
    .venv/bin/python scripts/suite_check_time.py --12mp      # one check of a 12 MP photo
"""
import sys
import time
from dataclasses import replace

import cv2
from skimage import data as skdata

import breaking_nn as bnn
from breaking_nn.blas_info import caffe_blas
from breaking_nn.geometry import AspectCrop, Crop, Encode, Rotate, Scale, Trim
from breaking_nn.images import read_photo
from breaking_nn.photo_attack import attack_photo
from breaking_nn.pipelines import Pipeline, with_resizer
from breaking_nn.suite import check_suite, suite_for


def outside_the_suite(pre):
    """Deployments the suite does not name (other angles, zooms, aspects, shifts, qualities), each a Pipeline."""
    blob = with_resizer(pre, "opencv linear", squash=True)
    return [Pipeline("rotate +3.5 opencv bilinear", pre, (Rotate(3.5, "opencv", "bilinear"),)),
            Pipeline("rotate -2 pillow bicubic", pre, (Rotate(-2, "pillow", "bicubic"),)),
            Pipeline("rotate +1 opencv bicubic, JPEG 80", pre, (Rotate(1, "opencv", "bicubic"), Encode(80))),
            Pipeline("zoom 20 %", pre, (Crop(0.1, 0.1, 0.1, 0.1),)),
            Pipeline("crop 8 % bottom-right, pillow bicubic", with_resizer(pre, "pillow bicubic"),
                     (Crop(0, 0, 0.08, 0.08),)),
            Pipeline("centre 4:3", pre, (AspectCrop(4, 3),)),
            Pipeline("centre 3:4", pre, (AspectCrop(3, 4),)),
            Pipeline("shift 8 px bottom-right", pre, (Trim(0, 0, 8, 8),)),
            Pipeline("file as WebP 60", pre, (Encode(60, "WEBP"),)),
            Pipeline("file at 0.6, opencv area", with_resizer(pre, "opencv area"), (Scale(0.6),)),
            Pipeline("JPEG 85, opencv dnn blob crop", replace(blob, blob_crop=True), (Encode(85),), engine="opencv"),
            Pipeline("zoom 6 %, opencv dnn squash", blob, (Crop(0.03, 0.03, 0.03, 0.03),), engine="opencv")]


def main(names):
    model = bnn.load_model("models/open_nsfw/model.toml")
    print(f"BLAS: {caffe_blas()}")
    for name in names:
        photo = read_photo(name).pixels if "." in name else getattr(skdata, name)()  # a file, or scikit-image's
        started = time.perf_counter()
        result = attack_photo(model, photo, 1)
        attack_s = time.perf_counter() - started
        started = time.perf_counter()
        full = check_suite(model, result.adversarial, target=1, original_class=result.original_class)
        full_s = time.perf_counter() - started
        started = time.perf_counter()
        early = check_suite(model, photo, target=1, original_class=result.original_class, stop_early=True)
        early_s = time.perf_counter() - started
        exact = attack_photo(model, photo, 1, robust=False)
        missed = [row.name for row in exact.suite.missed]
        print(f"{name} --exact: {exact.n_updates} steps, Linf {exact.metrics.linf:g}, "
              f"suite {exact.suite.n_fooled}/{exact.suite.n_total}, misses: {', '.join(missed)}")
        groups = ", ".join(f"{g} {f}/{n}" for g, (f, n) in full.by_group().items())
        print(f"{name} {photo.shape[1]}x{photo.shape[0]}: exit {'0' if result.fooled else '1'}, "
              f"{result.n_updates} steps, Linf {result.metrics.linf:g}, attack {attack_s:.1f} s; {full.summary()}; "
              f"{groups}; one full check {full_s:.2f} s, an early-stopped one (original photo, "
              f"{len(early.rows)} of {early.n_total} run) {early_s:.2f} s")
        outside = check_suite(model, result.adversarial, target=1, original_class=result.original_class,
                              pipelines=outside_the_suite(model.preprocessing))
        print(f"{name} outside the suite: {outside.summary()}; "
              + ", ".join(f"{row.name} {row.goal_probability:.2f}" for row in outside.rows))


def time_12_mp(model) -> None:
    """One full and one early-stopped suite check of chelsea upscaled to 4032x3024 (12 MP), and the photo side's share."""
    photo = cv2.resize(skdata.chelsea(), (4032, 3024), interpolation=cv2.INTER_CUBIC)
    suite = suite_for(model, photo.shape[:2])
    started = time.perf_counter()
    full = check_suite(model, photo, target=1, original_class=0)
    full_s = time.perf_counter() - started
    started = time.perf_counter()
    early = check_suite(model, photo, target=1, original_class=0, stop_early=True)
    early_s = time.perf_counter() - started
    alone = {}
    for pipeline in suite:
        started = time.perf_counter()
        pipeline.forward(photo)
        alone[pipeline.name] = time.perf_counter() - started
    slowest = sorted(alone.items(), key=lambda kv: -kv[1])[:4]
    print(f"12 MP: {full.n_total} members, one full check {full_s:.2f} s, early-stopped {early_s:.2f} s "
          f"({len(early.rows)} run); photo side alone, slowest: " + ", ".join(f"{k} {v:.2f} s" for k, v in slowest))


if __name__ == "__main__":
    if sys.argv[1:] == ["--12mp"]:
        time_12_mp(bnn.load_model("models/open_nsfw/model.toml"))
    else:
        main(sys.argv[1:] or ["astronaut", "coffee", "chelsea", "rocket"])
