"""Regenerate the blog's seven figures (nn-1.png ... nn-7.png) and its printed numbers.

Command line (``make figures``)::

    python -m breaking_nn.figures [--out figures] [--image PATH_OR_URL] [--weights PATH|generated]

Writes ``nn-1.png`` (the cat), ``nn-2.png`` (gradient toward mouse),
``nn-3.png`` (one 0.9-sign step), ``nn-4.png`` (original predictions),
``nn-5.png`` (the penguin), ``nn-6.png`` (evolution plot), ``nn-7.png``
("Persian or not?") and ``predictions.txt`` with the blog's text output.
"""
from __future__ import annotations

import argparse
import io
import sys
import warnings
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from .attack import trick
from .atomic import atomic_path
from .errors import BreakingNNError, WeightsError
from .generated import WARNING
from .images import load_blog_image
from .labels import COMPUTER_KEYBOARD, KING_PENGUIN, MOUSE, PERSIAN_CAT
from .model import Classifier, GeneratedWeightsWarning, format_predictions, load_googlenet

def make_figures(model: Classifier, image: np.ndarray, out: Path, *, progress: bool = False,
                 note: str = "") -> list[Path]:
    """Draw the seven figures for ``image`` (H, W, 3) RGB 0-1 into ``out``; return their paths.
    ``note``, if given, heads predictions.txt (e.g. that the weights are generated)."""
    from matplotlib import pyplot as plt

    from .plotting import blog_style, plot_steps, show_gradient, show_image

    out.mkdir(parents=True, exist_ok=True)
    text = io.StringIO()
    if note:
        text.write(f"{note}\n\n")
    written: list[Path] = []

    def section(title: str, probs: np.ndarray, n: int) -> None:
        text.write(f"## {title}\n{format_predictions(probs, model.labels, n)}\n\n")

    def save(name: str, draw: Callable[[object], None], figsize=(4, 4)) -> None:
        with blog_style():
            fig, ax = plt.subplots(figsize=figsize)
            draw(ax)
            fig.tight_layout()
            with atomic_path(out / name) as part:
                fig.savefig(part, dpi=72, format="png")
            plt.close(fig)
        written.append(out / name)

    data = model.preprocess(image)
    original = model.forward(data)
    section("The cat", original, 1)
    save("nn-1.png", lambda ax: show_image(model, data, ax=ax))

    grad = model.compute_gradient(data, MOUSE)
    save("nn-2.png", lambda ax: show_gradient(model, grad, "Gradient for mouse prediction", ax=ax))

    one_step = np.round(data + 0.9 * np.sign(grad))
    section("One 0.9 * sign(gradient) step toward mouse", model.forward(one_step), 5)
    save("nn-3.png", lambda ax: show_image(model, one_step, ax=ax))

    section("Original predictions", original, 5)
    save("nn-4.png", lambda ax: show_image(model, data, "Original predictions", ax=ax))

    penguin, steps = trick(model, data, KING_PENGUIN, n_steps=30, progress=progress)
    section("After trick(king penguin, n_steps=30)", model.forward(penguin), 6)
    save("nn-5.png", lambda ax: show_image(model, penguin, "New predictions for altered image", ax=ax))

    def evolution(ax) -> None:
        plot_steps(steps, [MOUSE, COMPUTER_KEYBOARD, PERSIAN_CAT, KING_PENGUIN], labels=model.labels, ax=ax)
        ax.set_title("Prediction for labels at each step")

    save("nn-6.png", evolution, figsize=(10, 5))

    persian, _ = trick(model, data, PERSIAN_CAT, n_steps=10, progress=progress)
    section("After trick(Persian cat, n_steps=10)", model.forward(persian), 6)
    save("nn-7.png", lambda ax: show_image(model, persian, "Persian or not?", ax=ax))

    with atomic_path(out / "predictions.txt") as part:
        part.write_text(text.getvalue())
    return written


def main(argv: Optional[list[str]] = None) -> int:
    """Command-line entry point; see the module docstring."""
    parser = argparse.ArgumentParser(prog="python -m breaking_nn.figures", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("figures"), help="output folder (default: %(default)s)")
    parser.add_argument("--image", default=None, help="image path or URL (default: the blog's photo)")
    parser.add_argument("--weights", default=None,
                        help="GoogLeNet caffemodel (default: downloaded to models/bvlc_googlenet/); "
                             "'generated' runs on generated weights, whose predictions mean nothing")
    args = parser.parse_args(argv)
    try:
        with warnings.catch_warnings():  # said below in the command's own words
            warnings.simplefilter("ignore", GeneratedWeightsWarning)
            model = load_googlenet(args.weights)
        note = f"WARNING: {WARNING}" if args.weights == "generated" else ""
        if note:
            print(note)
        written = make_figures(model, load_blog_image(args.image), args.out, progress=True, note=note)
    except BreakingNNError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if isinstance(exc, WeightsError):
            print("To run the code without the trained weights: --weights generated "
                  "(make figures WEIGHTS=generated); its predictions mean nothing.", file=sys.stderr)
        return 2  # as the command line's bad input: one message, nothing written
    print((args.out / "predictions.txt").read_text(), end="")
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
