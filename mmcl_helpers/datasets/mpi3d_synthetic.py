"""A small synthetic stand-in for MPI3D-complex, with the real file's layout (for dry runs and tests).

The real ``real3d_complicated_shapes_ordered.npz`` (:mod:`~mmcl_helpers.datasets.mpi3d`) holds one
uncompressed uint8 array ``images`` of shape (N, 64, 64, 3), N the product of the factor sizes,
ordered by the factors ``color, shape, size, cam, back, hori, vert`` with the first varying
slowest. :func:`write_synthetic_mpi3d` writes such a file with the five semantic factors at their
real sizes and the two robot-arm axes cut from 40 values to a few (:data:`SYNTHETIC_SIZES`), and
draws each picture from its factors: a background colour (``back``), an object of one of four
outlines (``shape``) in one of four colours (``color``), two sizes (``size``), seen from three
heights (``cam``: the object sits higher or lower in the frame), moved by the arm (``hori``,
``vert``). It is not a photograph; it lets chapter 5's MPI3D branch run end to end without the
5.6 GB download (``make gpu-dry``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mmcl_helpers.core.dry_run import dry_run_enabled
from mmcl_helpers.datasets.mpi3d import MPI3D_FILENAME, MPI3D_KEY, MPI3D_SIZES, mpi3d_factors

__all__ = ["SYNTHETIC_SIZES", "mpi3d_sizes", "synthetic_mpi3d_images", "write_synthetic_mpi3d"]

#: Factor sizes of the synthetic file (the real semantics, 4 positions per arm axis; 4,608 images).
SYNTHETIC_SIZES: tuple[int, ...] = (*MPI3D_SIZES[:5], 4, 4)

_OBJECT_RGB = np.array([[230, 210, 40], [60, 170, 60], [120, 120, 40], [200, 40, 40]], dtype=np.float32)
_BACK_RGB = np.array([[110, 60, 150], [50, 150, 120], [240, 140, 120]], dtype=np.float32)


def synthetic_mpi3d_images(sizes: Sequence[int] = SYNTHETIC_SIZES, seed: int = 0) -> np.ndarray:
    """Every image of a synthetic MPI3D file, in the real file's order.

    Args:
        sizes: the 7 factor sizes (at most the real ones for the five semantics).
        seed: seed of the pixel noise.

    Returns:
        uint8 array (prod(sizes), 64, 64, 3).
    """
    sizes = tuple(int(s) for s in sizes)
    n = int(np.prod(sizes))
    lab = mpi3d_factors(np.arange(n), sizes)  # validates sizes
    rng = np.random.default_rng(seed)
    out = np.empty((n, 64, 64, 3), dtype=np.uint8)
    for lo in range(0, n, 512):  # in chunks: a few MB of float32 at a time
        out[lo:lo + 512] = _draw(lab[lo:lo + 512], sizes, rng)
    return out


def _draw(lab: np.ndarray, sizes: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    color, shape, size, cam, back, hori, vert = (lab[:, k] for k in range(7))
    n = len(lab)
    yy, xx = np.mgrid[0:64, 0:64].astype(np.float32)
    # Centre: the arm moves the object; the camera height shifts it up or down in the frame.
    cx = 16.0 + 32.0 * hori / max(sizes[5] - 1, 1)
    cy = 14.0 + 24.0 * vert / max(sizes[6] - 1, 1) + 8.0 * (cam - 1)
    radius = np.where(size == 0, 6.0, 10.0).astype(np.float32)
    dx = (xx[None] - cx[:, None, None]) / radius[:, None, None]
    dy = (yy[None] - cy[:, None, None]) / radius[:, None, None]
    r2 = dx ** 2 + dy ** 2
    outlines = np.stack([
        r2 <= 1.0,                                   # coffee cup: a disc
        np.maximum(np.abs(dx), np.abs(dy)) <= 0.8,   # tennis ball: a square
        (np.abs(dx) + np.abs(dy)) <= 1.0,            # croissant: a diamond
        (r2 <= 1.0) & (r2 >= 0.35),                  # beer cup: a ring
    ])
    mask = outlines[shape, np.arange(n)]
    img = np.where(mask[..., None], _OBJECT_RGB[color][:, None, None, :], _BACK_RGB[back][:, None, None, :])
    noise = rng.normal(0.0, 6.0, size=img.shape).astype(np.float32)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def mpi3d_sizes() -> tuple[int, ...]:
    """MPI3D factor sizes to read: the real ones, or the synthetic file's under a dry run."""
    return SYNTHETIC_SIZES if dry_run_enabled() else MPI3D_SIZES


def write_synthetic_mpi3d(path: str | Path, sizes: Sequence[int] = SYNTHETIC_SIZES, seed: int = 0) -> Path:
    """Write a synthetic MPI3D-complex file (uncompressed .npz, one ``images`` array) and return its path.

    Args:
        path: a file path, or a folder (the file is then named like the real one).
        sizes: the 7 factor sizes; chapter 5 reads :data:`SYNTHETIC_SIZES` under ``MMCL_DRY_RUN=1``.
        seed: seed of the pixel noise.
    """
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / MPI3D_FILENAME
    if p.suffix != ".npz":
        raise ValueError(f"path must name an .npz file or a folder, got {str(path)!r}.")
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".part.npz")
    np.savez(tmp, **{MPI3D_KEY: synthetic_mpi3d_images(sizes, seed)})
    tmp.replace(p)
    return p


if __name__ == "__main__":  # python -m mmcl_helpers.datasets.mpi3d_synthetic PATH
    import sys

    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m mmcl_helpers.datasets.mpi3d_synthetic PATH")
    print(write_synthetic_mpi3d(sys.argv[1]))
