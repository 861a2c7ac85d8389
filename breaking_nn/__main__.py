"""The ``breaking-nn`` command: fool a network with your own photo, or ask what it sees.

    breaking-nn attack PHOTO --target "king penguin" --out penguin.png [options]
    breaking-nn predict PHOTO [-k 5] [--model models/x/model.toml]
    breaking-nn evaluate FOLDER (--target T | --untargeted) --out results.csv [options]

Also ``python -m breaking_nn``. Exit codes of ``attack``: 0 fooled, and the
saved file, reloaded, verified (robust, the default: the ``--until`` goal under
the model file's pipeline *and* at least 95 % of the verification suite's
pipelines fooled; ``--exact``: the goal under the model file's pipeline); 3 the
budget ran out (or the JPEG compression undid the attack): the file is still
written and the message says how far it got; 2 bad input (one line, nothing
written); 130 interrupted (nothing partial left).
``evaluate`` exits 0 when every photo has its row (fooled or not), 2 on bad input
(no CSV written), 130 on Ctrl-C (the finished rows stay; the same command resumes).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Optional

from .errors import AttackError, BreakingNNError, SaveError

EXIT_OK, EXIT_BAD_INPUT, EXIT_BUDGET, EXIT_INTERRUPTED = 0, 2, 3, 130

ATTACK_EXAMPLES = """examples:
  breaking-nn attack my-cat.jpg --target "king penguin" --out penguin.png
  breaking-nn attack my-cat.jpg --target 145 --out penguin.png --epsilon 2 --report report.png
  breaking-nn attack photo.jpg --untargeted --until 0.5 --out fooled.png --json
  breaking-nn attack photo.jpg --target 1 --out flagged.png --model models/open_nsfw/model.toml
  breaking-nn attack photo.jpg --target 1 --out flagged.png --model models/open_nsfw/model.toml --samples 8 --seed 1
  breaking-nn attack my-cat.jpg --target 145 --out lab.png --exact      # the model file's pipeline alone
  breaking-nn attack my-cat.jpg --target 145 --out try.png --weights generated   # meaningless, no download
"""
ATTACK_DESCRIPTION = """\
Perturb PHOTO, at its own size and upright, until the network sees the target; save it
and check that the saved file, reloaded, still fools the network.

Robust (the default): every step averages the gradient over the model file's own
pipeline and --samples - 1 more drawn from real-world ones (other resizers incl.
OpenCV's, JPEG, the squash to the input size, aspect crops, crops and zooms up to
15 % a side, shifts, rotations up to 5 degrees, uploads, smaller copies). "Fooled"
under a pipeline means the target is its top class (--untargeted: the original class
no longer is). The file is checked against a named suite of 20 to 33 real-world
pipelines in four groups (resampling, compression, geometry, and OpenCV's dnn engine
for models loaded from files; members that change nothing for the photo, such as a
1080 px upload of a smaller photo, are left out); exit code 0 needs the --until goal
under the model file's pipeline AND at least 95 % of the suite fooled (with 20 to 39
members: all but one). The attack goes on until both hold or --max-steps runs out.

--exact attacks the model file's pipeline alone (faster, a lab result): exit code 0
needs the --until goal under that pipeline; the suite is reported as information.

Exit codes: 0 fooled and verified; 3 not (the file is still written); 2 bad input.
"""
PREDICT_EXAMPLES = """examples:
  breaking-nn predict my-cat.jpg
  breaking-nn predict penguin.png -k 3
  breaking-nn predict photo.jpg --model models/open_nsfw/model.toml -k 2
  breaking-nn predict photo.jpg --model models/open_nsfw/model.toml --engine opencv
"""


EVALUATE_EXAMPLES = """examples:
  breaking-nn evaluate photos/ --target "king penguin" --out results.csv --plot curve.png
  breaking-nn evaluate photos/ --target 1 --model models/open_nsfw/model.toml --out nsfw.csv --epsilons 1,2,4
  breaking-nn evaluate photos/ --untargeted --exact --out results.csv --keep adversarials/
  breaking-nn evaluate photos/ --target 145 --out results.csv --scheduler tcp://scheduler:8786 --seed 0
"""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit 2)."""

    def error(self, message: str):
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``breaking-nn`` and its two sub-commands."""
    parser = _Parser(prog="breaking-nn", description="Fool a network with your own photo, or ask what it sees.",
                     formatter_class=argparse.RawDescriptionHelpFormatter,
                     epilog="examples:\n" + "".join(text.split("\n", 1)[1]  # one heading for all three lists
                                                     for text in (ATTACK_EXAMPLES, PREDICT_EXAMPLES, EVALUATE_EXAMPLES)))
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def model_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--model", metavar="MODEL_TOML", default=None,
                       help="a model file (model.toml) describing a Caffe classifier (default: BVLC GoogLeNet)")
        p.add_argument("--weights", metavar="PATH|generated", default=None,
                       help="a caffemodel replacing the model's; 'generated' uses seeded random weights "
                            "(runs without downloading; every prediction is meaningless)")
        p.add_argument("--device", choices=["cpu", "gpu"], default="cpu", help="default: %(default)s")

    def goal_options(p: argparse.ArgumentParser, untargeted: str) -> None:
        """--target or --untargeted (``untargeted``: when a photo counts as fooled without a target)."""
        p.add_argument("--target", "-t", default=None,
                       help='the class to make the network see: a number (145) or a name ("king penguin")')
        p.add_argument("--untargeted", action="store_true", help=untargeted)

    attack = sub.add_parser("attack", help="perturb PHOTO (within --epsilon grey levels) until the network sees --target",
                            description=ATTACK_DESCRIPTION,
                            formatter_class=argparse.RawDescriptionHelpFormatter, epilog=ATTACK_EXAMPLES)
    attack.add_argument("photo", metavar="PHOTO", help="the photo: a file (JPEG, PNG, ...) or an http(s) URL")
    goal_options(attack, "no target: lower the class the network sees until another leads it by --until")
    attack.add_argument("--out", "-o", required=True,
                        help="the adversarial photo to write: .png, .webp, .bmp, .tif (lossless) or .jpg")
    attack.add_argument("--epsilon", default="4", help="largest change of any pixel, in grey levels, 1-255 "
                                                       "(default: %(default)s)")
    attack.add_argument("--max-steps", default="50", help="most sign steps of one grey level (default: %(default)s)")
    attack.add_argument("--until", default="0.9",
                        help="stop when p(target) >= UNTIL (the target on top), or, untargeted, when another "
                             "class leads the original by UNTIL; in (0, 1) (default: %(default)s)")
    attack.add_argument("--exact", action="store_true",
                        help="attack the model file's own pipeline alone (no robust sampling; the suite is "
                             "information, not part of the exit code)")
    attack.add_argument("--samples", default=None, metavar="K",
                        help="robust mode: pipelines per step, the model's own plus K-1 drawn (default: 6)")
    attack.add_argument("--seed", default=None, metavar="N",
                        help="robust mode: seed of the drawn pipelines, so a run repeats (default: 0)")
    attack.add_argument("--jpeg-quality", default="95", help="JPEG quality for a .jpg --out, 1-95 (default: %(default)s)")
    attack.add_argument("--report", default=None, metavar="REPORT_PNG",
                        help="also draw the report figure (original, perturbation, result, top 5) into this PNG")
    attack.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    attack.add_argument("--force", action="store_true", help="overwrite --out and --report if they exist")
    model_options(attack)

    predict = sub.add_parser("predict", help="print the network's top classes for PHOTO",
                             formatter_class=argparse.RawDescriptionHelpFormatter, epilog=PREDICT_EXAMPLES)
    predict.add_argument("photo", metavar="PHOTO", help="a file or an http(s) URL")
    predict.add_argument("-k", default="5", help="how many classes to print (default: %(default)s)")
    predict.add_argument("--engine", choices=["caffe", "opencv"], default="caffe",
                         help="run the model's prototxt and weights on Caffe, or on OpenCV's dnn engine "
                              "(cv2.dnn.readNetFromCaffe: CPU only, as many threads as Caffe's OpenBLAS; the "
                              "first line of the output names it), with the same preprocessing; the files are "
                              "checked on Caffe first either way (default: %(default)s)")
    model_options(predict)

    evaluate = sub.add_parser("evaluate", help="attack every photo of FOLDER at each --epsilons: success rates, "
                                                "minimal epsilon per photo, one CSV row per photo",
                              description="Attack every photo of FOLDER at each budget; write one CSV row per photo "
                                          "as it finishes (resumable), print the success rate per epsilon and the "
                                          "quartiles of the minimal epsilon.",
                              formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EVALUATE_EXAMPLES)
    evaluate.add_argument("folder", metavar="FOLDER", help="a folder of photos (its files; not its sub-folders)")
    goal_options(evaluate, "no target: fooled once the original class is no longer the top class")
    evaluate.add_argument("--out", "-o", required=True, help="the results CSV (one row per photo)")
    evaluate.add_argument("--epsilons", default="1,2,4,8",
                          help="budgets in whole grey levels 1-255, comma-separated (default: %(default)s)")
    evaluate.add_argument("--max-steps", default="50", help="most sign steps per attack (default: %(default)s)")
    evaluate.add_argument("--exact", action="store_true",
                          help="attack and judge the model file's pipeline alone (default: robust, over the "
                               "real-world pipeline suite)")
    evaluate.add_argument("--samples", default=None, help="pipelines sampled per robust step (default: the attack's)")
    evaluate.add_argument("--seed", default=None, help="seed of the robust attacks' sampling (same seed, same CSV)")
    evaluate.add_argument("--plot", default=None, metavar="CURVE_PNG",
                          help="draw the success-rate-against-epsilon curve into this PNG (replaced if it exists)")
    evaluate.add_argument("--batch", default="1", help="photos attacked at once through one batch (default: %(default)s)")
    evaluate.add_argument("--scheduler", default=None, metavar="ADDRESS",
                          help="a Dask scheduler (tcp://host:8786): shard the photos over its workers")
    evaluate.add_argument("--keep", default=None, metavar="DIR",
                          help="keep the adversarial photos (NAME.eps{E}.png) in this folder")
    evaluate.add_argument("--force", action="store_true",
                          help="start over when --out holds results of other arguments")
    model_options(evaluate)
    return parser


def _number(text: str, option: str, kind=float):
    """``text`` as a ``kind`` (float or int), else :class:`AttackError` naming ``option``."""
    try:
        return kind(text)
    except (TypeError, ValueError):
        noun = "a whole number" if kind is int else "a number"
        raise AttackError(f"{option} must be {noun}, not {text!r}") from None


def _load_model(args, say):
    """The model the options name: --model's file or GoogLeNet, with --weights (or generated ones)."""
    import warnings

    from .generated import WARNING
    from .model import GeneratedWeightsWarning, load_googlenet, load_model

    if args.model and not str(args.model).endswith(".toml"):
        raise AttackError(f"--model takes a model file (model.toml), not {args.model!r}")
    with warnings.catch_warnings():  # the command says it in its own words
        warnings.simplefilter("ignore", GeneratedWeightsWarning)
        if args.model:
            model = load_model(args.model, args.weights, device=args.device)
        else:
            model = load_googlenet(args.weights, device=args.device)
    if args.weights == "generated":
        say(f"WARNING: {WARNING}")
    return model


def _target(text: Optional[str]):
    """A numeric string is a class number; anything else a class name."""
    if text is None:
        return None
    stripped = text.strip()
    return int(stripped) if stripped.lstrip("-").isdigit() else stripped


def run_attack(args, stack: contextlib.ExitStack) -> int:
    from .images import read_photo
    from .photo_attack import (attack_photo, check_jpeg_quality, check_output_path, check_photo_size,
                               check_settings)
    from .report import check_report_path, save_report

    say = (lambda line: print(line, file=sys.stderr)) if args.json else print
    if args.untargeted and args.target is not None:
        raise AttackError("give --target or --untargeted, not both")
    if not args.untargeted and args.target is None:
        raise AttackError("give --target CLASS (a number or a name), or --untargeted")
    epsilon = _number(args.epsilon, "--epsilon")
    max_steps = _number(args.max_steps, "--max-steps", int)
    until = _number(args.until, "--until")
    quality = check_jpeg_quality(_number(args.jpeg_quality, "--jpeg-quality", int))
    samples = None if args.samples is None else _number(args.samples, "--samples", int)
    seed = None if args.seed is None else _number(args.seed, "--seed", int)
    if args.exact and (samples is not None or seed is not None):
        raise AttackError("--samples and --seed belong to the robust mode: drop them, or drop --exact")
    check_settings(epsilon=epsilon, max_steps=max_steps, until=until, robust=not args.exact, samples=samples,
                   seed=seed)
    out = check_output_path(args.out, force=args.force)
    report = None
    if args.report is not None:
        report = check_report_path(args.report, force=args.force)
        if report.resolve() == out.resolve():
            raise SaveError("--report and --out name the same file: give them different names")
    photo = read_photo(args.photo)
    check_photo_size(photo.pixels)
    model = _load_model(args, say)
    target = _target(args.target)
    if target is not None:
        model.labels.index(target)  # an unknown name: LabelError with suggestions, before any work

    result = attack_photo(model, photo, target, epsilon=epsilon, max_steps=max_steps, until=until,
                          untargeted=args.untargeted, progress=sys.stderr.isatty() and not args.json,
                          robust=not args.exact, samples=samples, seed=seed)
    check = result.save(out, quality=quality, force=True)
    if report is not None:
        save_report(result, report)
    code = EXIT_OK if result.fooled and check.ok else EXIT_BUDGET
    if args.json:
        print(json.dumps({**result.as_dict(), "out": str(out), "report": None if report is None else str(report),
                          "exit_code": code}))
        return code
    say(f"mode: {result.mode_text()}")
    say(check.suite.table(model.labels))
    say(check.message)
    if report is not None:
        say(f"report: {report}")
    verdict = "FOOLED" if code == EXIT_OK else "NOT FOOLED"
    say(f"{verdict}: {result.summary()}; wrote {out} ({photo.pixels.shape[1]}x{photo.pixels.shape[0]})")
    return code


def run_predict(args, stack: contextlib.ExitStack) -> int:
    from .images import load_image
    from .model import format_predictions
    from .errors import ModelError
    from .opencv_engine import OpenCVNet, check_engine

    k = _number(args.k, "-k", int)
    if k < 1:
        raise AttackError(f"-k must be a whole number >= 1, not {k}")
    check_engine(args.engine, device=args.device)
    image = load_image(args.photo)
    try:
        model = _load_model(args, print)
    except ModelError as exc:
        if args.engine != "opencv":
            raise
        raise ModelError(f"{exc} (--engine opencv loads the model on Caffe first, for its checks, labels and "
                         "input size)") from None
    data = model.preprocess(image)
    if args.engine == "caffe":
        probs = model.forward(data)
    else:
        net = OpenCVNet.for_model(model)
        probs = net.probabilities(data[None])[0]
        print(f"engine: {net}")
    print(format_predictions(probs, model.labels, min(k, model.n_classes)))
    return EXIT_OK


def run_evaluate(args, stack: contextlib.ExitStack) -> int:
    from .errors import EvaluateError
    from .evaluate import evaluate, plot_success_curve, summarize
    from .result_table import check_csv_path

    if args.untargeted and args.target is not None:
        raise EvaluateError("give --target or --untargeted, not both")
    if not args.untargeted and args.target is None:
        raise EvaluateError("give --target CLASS (a number or a name), or --untargeted")
    max_steps = _number(args.max_steps, "--max-steps", int)
    batch = _number(args.batch, "--batch", int)
    samples = None if args.samples is None else _number(args.samples, "--samples", int)
    seed = None if args.seed is None else _number(args.seed, "--seed", int)
    out = check_csv_path(args.out)
    plot = None
    if args.plot is not None:
        plot = Path(args.plot).expanduser()
        if plot.suffix.lower() != ".png":
            raise EvaluateError(f"--plot must name a .png file, not {args.plot!r}")
        if not plot.parent.is_dir():
            raise EvaluateError(f"the folder of --plot {plot} does not exist: create {plot.parent} first")
    spec = _model_spec(args, stack)
    if args.scheduler is None and not args.device == "cpu":
        from .model import load_model

        model = load_model(spec, device=args.device)
    else:
        model = spec
    progress = sys.stderr.isatty()
    try:
        table = evaluate(model, args.folder, _target(args.target), untargeted=args.untargeted, epsilons=args.epsilons,
                         max_steps=max_steps, robust=not args.exact, samples=samples, seed=seed, out=out,
                         keep=args.keep, force=args.force, batch=batch, scheduler=args.scheduler, progress=progress)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(f"the finished rows are in {out}; run the same command to resume") from None
    print(summarize(table))
    if plot is not None:
        plot_success_curve(table, plot)
        print(f"curve: {plot}")
    print(f"results: {out} ({len(table)} rows)")
    return EXIT_OK


def _model_spec(args, stack: contextlib.ExitStack):
    """The ModelSpec the options name (--model or GoogLeNet's file, --weights or generated ones)."""
    import os

    from . import paths
    from .model_file import read_model_file

    if args.model and not str(args.model).endswith(".toml"):
        raise AttackError(f"--model takes a model file (model.toml), not {args.model!r}")
    spec = read_model_file(args.model or paths.googlenet_model_file())
    if args.weights == "generated":
        from .generated import WARNING, generate_weights

        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        print(f"WARNING: {WARNING}")
        return spec.with_weights(generate_weights(spec.prototxt, tmp / "generated.caffemodel"))
    if args.weights is not None:
        return spec.with_weights(args.weights)
    if not args.model and os.environ.get("BREAKING_NN_WEIGHTS"):
        return spec.with_weights(paths.googlenet_weights())  # as load_googlenet does
    return spec  # GoogLeNet's file downloads its weights when they are missing


def main(argv: Optional[list[str]] = None) -> int:
    """Entry point of ``breaking-nn`` and ``python -m breaking_nn``; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        with contextlib.ExitStack() as stack:
            run = {"attack": run_attack, "predict": run_predict, "evaluate": run_evaluate}[args.command]
            return run(args, stack)
    except BreakingNNError as exc:
        print(f"breaking-nn: error: {exc}".replace("\n", " "), file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt as exc:
        print(f"breaking-nn: interrupted; {exc or 'no partial file was left'}", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
