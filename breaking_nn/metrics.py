"""How much an attack changed a photo, and what the network says before and after.

Photos here are (H, W, 3) uint8 arrays, HWC, RGB, 0-255 (grey levels); every
distance is in grey levels of that photo.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from .labels import Labels


@dataclass(frozen=True)
class PerturbationMetrics:
    """Distances between an original and a perturbed photo, in grey levels (0-255).

    Attributes:
        linf: the largest change of any channel of any pixel (L-infinity).
        l2: the Euclidean norm of the whole change, over H x W x 3 values.
        changed_fraction: the fraction of pixels (H x W positions) with at
            least one channel changed, 0-1.
        psnr: peak signal-to-noise ratio in dB (peak 255); inf if nothing changed.
        ssim: structural similarity (scikit-image, colour, data range 255), at most 1.
    """

    linf: int
    l2: float
    changed_fraction: float
    psnr: float
    ssim: float

    def as_dict(self) -> dict:
        """The metrics as a plain dict, JSON-ready: an infinite PSNR (nothing changed) becomes None."""
        d = asdict(self)
        d["psnr"] = d["psnr"] if np.isfinite(d["psnr"]) else None
        return d

    def __str__(self) -> str:
        return (f"L-inf {self.linf} grey levels, L2 {self.l2:.1f}, {self.changed_fraction:.1%} of pixels changed, "
                f"PSNR {self.psnr:.1f} dB, SSIM {self.ssim:.4f}")


def perturbation_metrics(original: np.ndarray, perturbed: np.ndarray) -> PerturbationMetrics:
    """Compare two (H, W, 3) uint8 RGB photos of the same size; see :class:`PerturbationMetrics`.

    >>> a = np.zeros((32, 32, 3), np.uint8); b = a.copy(); b[0, 0, 0] = 4
    >>> m = perturbation_metrics(a, b)
    >>> m.linf, m.l2, m.changed_fraction
    (4, 4.0, 0.0009765625)
    """
    original, perturbed = np.asarray(original), np.asarray(perturbed)
    if original.shape != perturbed.shape or original.ndim != 3 or original.shape[2] != 3:
        raise ValueError(f"compare two (H, W, 3) photos of one size, not {original.shape} and {perturbed.shape}")
    if original.dtype != np.uint8 or perturbed.dtype != np.uint8:
        raise ValueError(f"photos must be uint8 0-255, not {original.dtype} and {perturbed.dtype}")
    delta = perturbed.astype(np.int32) - original.astype(np.int32)
    if not delta.any():
        psnr = float("inf")
    else:
        psnr = float(peak_signal_noise_ratio(original, perturbed, data_range=255))
    side = min(original.shape[:2])
    win = min(7, side if side % 2 else side - 1)  # scikit-image's default 7, or the largest odd that fits
    ssim = float(structural_similarity(original, perturbed, data_range=255, channel_axis=2, win_size=win))
    return PerturbationMetrics(
        linf=int(np.abs(delta).max()),
        l2=float(np.sqrt(np.sum(delta.astype(np.float64) ** 2))),
        changed_fraction=float(np.any(delta != 0, axis=2).mean()),
        psnr=psnr,
        ssim=ssim,
    )


def top_k(probs: np.ndarray, labels: Labels, k: int = 5) -> list[tuple[int, str, float]]:
    """The ``k`` most probable classes of ``probs`` (K,): ``[(class number, name, probability), ...]``.

    >>> top_k(np.array([0.1, 0.7, 0.2]), Labels(["a", "b", "c"]), k=2)
    [(1, 'b', 0.7), (2, 'c', 0.2)]
    """
    probs = np.asarray(probs).ravel()
    order = np.argsort(probs, kind="stable")[::-1][:k]
    return [(int(i), labels.name(int(i)), float(probs[i])) for i in order]
