"""How much an attack changed a photo, and what the network says before and after.

Photos here are (H, W, 3) uint8 arrays, HWC, RGB, 0-255 (grey levels); every
distance is in grey levels of that photo.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from skimage.metrics import structural_similarity

from .labels import Labels

#: Pixels per band of rows in :func:`perturbation_metrics` (bounds its memory on large photos).
BAND_PIXELS = 1 << 20


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
        return (f"L-inf {grey_levels(self.linf)}, L2 {self.l2:.1f}, {self.changed_fraction:.1%} of pixels changed, "
                f"PSNR {self.psnr:.1f} dB, SSIM {self.ssim:.4f}")


def perturbation_metrics(original: np.ndarray, perturbed: np.ndarray) -> PerturbationMetrics:
    """Compare two (H, W, 3) uint8 RGB photos of the same size; see :class:`PerturbationMetrics`.

    PSNR is scikit-image's formula (10 log10(255^2 / MSE)); SSIM is scikit-image's
    ``structural_similarity`` (7x7 window, data range 255, channels averaged),
    computed over bands of rows so a 48 MP photo needs no full-size float copy;
    the result is the same mean.

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
    height, width = original.shape[:2]
    side = min(height, width)
    win = min(7, side if side % 2 else side - 1)  # scikit-image's default 7, or the largest odd that fits
    if win < 3:
        raise ValueError(f"photos of {width}x{height} pixels are too small for SSIM (3x3 pixels at least)")
    pad = (win - 1) // 2
    band = max(4 * win, BAND_PIXELS // width)
    linf, squares, changed, ssim_sum, ssim_count = 0, 0, 0, 0.0, 0
    for top in range(0, height, band):  # bands of rows: never a full-size float copy
        bottom = min(height, top + band)
        delta = perturbed[top:bottom].astype(np.int16) - original[top:bottom].astype(np.int16)
        linf = max(linf, int(np.abs(delta).max()))
        squares += int(np.sum(delta.astype(np.int64) ** 2))
        changed += int(np.any(delta != 0, axis=2).sum())
        # SSIM's map needs ``pad`` rows of context: compute it on a band widened by pad rows, keep the band
        lo, hi = max(0, top - pad), min(height, bottom + pad)
        _, ssim_map = structural_similarity(original[lo:hi], perturbed[lo:hi], data_range=255, channel_axis=2,
                                            win_size=win, full=True)
        keep_top, keep_bottom = max(top, pad), min(bottom, height - pad)  # scikit-image drops pad at the borders
        if keep_bottom > keep_top:
            kept = ssim_map[keep_top - lo:keep_bottom - lo, pad:width - pad]
            ssim_sum += float(kept.sum(dtype=np.float64))
            ssim_count += kept.size
    mse = squares / original.size
    return PerturbationMetrics(
        linf=linf,
        l2=float(np.sqrt(squares)),
        changed_fraction=changed / (height * width),
        psnr=float("inf") if squares == 0 else float(10 * np.log10(255.0 ** 2 / mse)),
        ssim=ssim_sum / ssim_count,
    )


def top_k(probs: np.ndarray, labels: Labels, k: int = 5) -> list[tuple[int, str, float]]:
    """The ``k`` most probable classes of ``probs`` (K,): ``[(class number, name, probability), ...]``.

    >>> top_k(np.array([0.1, 0.7, 0.2]), Labels(["a", "b", "c"]), k=2)
    [(1, 'b', 0.7), (2, 'c', 0.2)]
    """
    probs = np.asarray(probs).ravel()
    order = np.argsort(probs, kind="stable")[::-1][:k]
    return [(int(i), labels.name(int(i)), float(probs[i])) for i in order]


def grey_levels(n: int) -> str:
    """``n`` with its unit: "1 grey level", "4 grey levels"."""
    return f"{n} grey level" + ("" if n == 1 else "s")
