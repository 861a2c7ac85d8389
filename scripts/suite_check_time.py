"""Attack scikit-image's photos with the CLI's defaults on open_nsfw and time one full suite check.

Prints, per photo: the --exact attack's steps, L-infinity and suite; the default one's steps, the L-infinity, the suite by group, the members not
fooled, and the seconds of one complete check of the saved pixels (and of an
early-stopping one on the original photo). Names the BLAS kernel. Not a test.

    .venv/bin/python scripts/suite_check_time.py [PHOTO ...]
"""
import sys
import time

from skimage import data as skdata

import breaking_nn as bnn
from breaking_nn.blas_info import caffe_blas
from breaking_nn.photo_attack import attack_photo
from breaking_nn.suite import check_suite


def main(names):
    model = bnn.load_model("models/open_nsfw/model.toml")
    print(f"BLAS: {caffe_blas()}")
    for name in names:
        photo = getattr(skdata, name)()
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
        missed = [row.name for row in exact.suite.rows if not row.fooled]
        print(f"{name} --exact: {exact.n_updates} steps, Linf {exact.metrics.linf:g}, "
              f"suite {exact.suite.n_fooled}/{exact.suite.n_total}, misses: {', '.join(missed)}")
        groups = ", ".join(f"{g} {f}/{n}" for g, (f, n) in full.by_group().items())
        print(f"{name} {photo.shape[1]}x{photo.shape[0]}: exit {'0' if result.fooled else '1'}, "
              f"{result.n_updates} steps, Linf {result.metrics.linf:g}, attack {attack_s:.1f} s; {full.summary()}; "
              f"{groups}; one full check {full_s:.2f} s, an early-stopped one (original photo, "
              f"{len(early.rows)} of {early.n_total} run) {early_s:.2f} s")


if __name__ == "__main__":
    main(sys.argv[1:] or ["astronaut", "coffee", "chelsea", "rocket"])
