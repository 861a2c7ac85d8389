"""Exceptions raised by breaking_nn: each message names the problem and the fix."""


class BreakingNNError(Exception):
    """Base class of every error breaking_nn raises on bad input or set-up."""


class CaffeNotAvailableError(BreakingNNError, ImportError):
    """pycaffe cannot be imported, or lacks a feature (GPU) that was asked for."""


class ImageLoadError(BreakingNNError, ValueError):
    """An image could not be read, fetched or decoded."""


class LabelError(BreakingNNError, ValueError):
    """A class label is out of range, unknown, or ambiguous."""


class WeightsError(BreakingNNError):
    """Model weights are missing, or a download failed or did not verify."""


class ModelError(BreakingNNError, ValueError):
    """A model definition is unusable, or an input does not fit the model."""


class AttackError(BreakingNNError, ValueError):
    """An attack's settings are out of range (epsilon, steps, margin, target)."""


class SaveError(BreakingNNError, ValueError):
    """An output file cannot be written as asked (folder, name, format)."""


class EvaluateError(BreakingNNError, ValueError):
    """An evaluation cannot run as asked (folder, epsilons, results file, cluster)."""
