"""breaking-nn: convince a pre-trained network that a cat is a penguin.

The blog's functions on BVLC Caffe's GoogLeNet, step by step::

    import breaking_nn as bnn
    model = bnn.load_googlenet()                        # downloads weights once
    data = model.preprocess(bnn.load_image("liz.jpg"))  # (3, 224, 224) BGR 0-255
    probs = model.predict(data)                         # prints the top 6
    grad = model.compute_gradient(data, "mouse")        # (3, 224, 224)
    new_data, steps = bnn.trick(model, data, "king penguin", n_steps=30)
    bnn.plot_steps(steps, ["mouse", "king penguin"])
"""
from .attack import trick
from .errors import (AttackError, BreakingNNError, CaffeNotAvailableError, ImageLoadError, LabelError, ModelError,
                     SaveError, WeightsError)
from .images import BLOG_IMAGE_URL, default_image, load_blog_image, load_image
from .labels import COMPUTER_KEYBOARD, KING_PENGUIN, MOUSE, PERSIAN_CAT, Labels, get_label_name, imagenet_labels
from .model import Classifier, format_predictions, load_googlenet, load_model
from .photo_attack import PhotoAttackResult, attack_photo
from .plotting import blog_style, gradient_picture, plot_steps, show_gradient, show_image
from .weights import download_weights

__version__ = "0.1.0"

__all__ = [
    "trick", "load_image", "load_blog_image", "default_image", "load_googlenet", "load_model", "Classifier", "Labels",
    "get_label_name", "imagenet_labels", "format_predictions", "plot_steps", "show_image",
    "show_gradient", "gradient_picture", "blog_style", "download_weights", "BLOG_IMAGE_URL",
    "BreakingNNError", "CaffeNotAvailableError", "ImageLoadError", "LabelError", "ModelError",
    "WeightsError", "AttackError", "SaveError", "attack_photo", "PhotoAttackResult", "KING_PENGUIN", "PERSIAN_CAT", "COMPUTER_KEYBOARD", "MOUSE",
]
