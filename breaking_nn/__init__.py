"""breaking-nn: convince a pre-trained network that a cat is a penguin.

Two layers, as matplotlib has (``plt.plot`` over ``ax.plot``).

The blog's calls, on the *current model* (the last one loaded; GoogLeNet,
loaded on first use, if none): for notebooks and for following the blog::

    import breaking_nn as bnn
    from breaking_nn import predict, compute_gradient, trick, plot_steps
    model = bnn.load_googlenet()                        # downloads weights once; now current
    img_data = model.preprocess(bnn.load_image("liz.jpg"))  # (3, 224, 224) BGR 0-255
    probs = predict(img_data, n_preds=1)                # prints the top 1, draws the image
    grad = compute_gradient(img_data, 673)              # (3, 224, 224): toward "mouse"
    new_image, steps = trick(img_data, 145, n_steps=30) # toward "king penguin"
    plot_steps(steps, [673, 145], figsize=(10, 5))

The model object, where every call names its model: for scripts, libraries
and several models at once (same implementation, same numbers)::

    probs = model.predict(img_data, n_preds=1)
    grad = model.compute_gradient(img_data, "mouse")
    new_image, steps = bnn.attack.trick(model, img_data, "king penguin", n_steps=30)
    bnn.plotting.plot_steps(steps, ["mouse", "king penguin"], labels=model.labels)

``bnn.use_model(model)`` makes a model current; ``bnn.current_model()`` returns it.

``bnn.app()`` is the same attack as a widget app (upload, target, Run, download);
``make app`` serves it as a web page. Inside IPython and Jupyter, breaking_nn's
own errors show as their message alone (``%tb`` for the traceback;
``bnn.short_errors(False)`` turns this off).
"""
from . import attack, plotting
from .blog_api import compute_gradient, current_model, plot_steps, predict, trick, use_model
from .errors import (AttackError, BreakingNNError, CaffeNotAvailableError, EvaluateError, ImageLoadError, LabelError,
                     ModelError, SaveError, WeightsError)
from .images import BLOG_IMAGE_URL, default_image, load_blog_image, load_image
from .labels import COMPUTER_KEYBOARD, KING_PENGUIN, MOUSE, PERSIAN_CAT, Labels, get_label_name, imagenet_labels
from .model import Classifier, GeneratedWeightsWarning, format_predictions, load_googlenet, load_model
from .notebook_errors import short_errors
from .photo_attack import PhotoAttackResult, attack_photo
from .evaluate import evaluate  # noqa: E402 - after photo_attack, which it uses
from .plotting import blog_style, gradient_picture, show_gradient, show_image
from .weights import download_weights

__version__ = "0.1.0"


def app(**options):
    """The attack app (ipywidgets; see :func:`breaking_nn.widgets.app` for ``options``)."""
    from .widgets import app as make_app  # ipywidgets is imported only by those who use the app

    return make_app(**options)


short_errors(True)  # inside IPython only: our errors as their message alone (see notebook_errors)

__all__ = [
    "predict", "compute_gradient", "trick", "plot_steps", "get_label_name", "use_model", "current_model",
    "attack", "plotting", "load_image", "load_blog_image", "default_image", "load_googlenet", "load_model",
    "Classifier", "Labels", "imagenet_labels", "format_predictions", "show_image",
    "show_gradient", "gradient_picture", "blog_style", "download_weights", "BLOG_IMAGE_URL",
    "BreakingNNError", "CaffeNotAvailableError", "ImageLoadError", "LabelError", "ModelError",
    "WeightsError", "AttackError", "SaveError", "EvaluateError", "attack_photo", "app", "evaluate", "short_errors",
    "GeneratedWeightsWarning", "PhotoAttackResult", "KING_PENGUIN", "PERSIAN_CAT", "COMPUTER_KEYBOARD", "MOUSE",
]
