"""MPI3D-complex (Gondal et al., 2019): real photographs, captions and splits (paper §5.2, App. D).

The file ``real3d_complicated_shapes_ordered.npz`` holds one array ``images`` of 460,800 uint8
photos of shape 64x64x3, ordered by the factors of :data:`MPI3D_FACTORS` (the first varies
slowest), so an image's factor values follow from its flat index (:func:`mpi3d_factors`).

Semantic factors (:data:`MPI3D_SEMANTICS`): ``color`` (yellow, green, olive, red), ``shape``
(coffee cup, tennis ball, croissant, beer cup), ``size`` (small, large), ``cam`` (camera height:
top, center, bottom) and ``back`` (background: purple, sea green, salmon). The two axes of the
robot arm, ``hori`` and ``vert`` (40 values each), are image-specific.

The file is not shipped (about 5.6 GB uncompressed). :func:`find_mpi3d` looks for it
(``$MMCL_MPI3D_PATH``, else :func:`default_mpi3d_path`); :func:`download_mpi3d` fetches the
authors' copy from Google Drive with ``gdown`` (on Colab: ``pip install gdown`` first). Nothing is
ever downloaded on import. Every function takes the factor ``sizes`` as an argument, so that the
tests can run the same code on a tiny synthetic file.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..biases import CaptionBias
from .captions import (
    CaptionBatch,
    bias_from_names,
    perturb_factors,
    perturbation_settings,
    selection_settings,
)
from .scenes import default_cache_dir, hashed_integers

__all__ = [
    "MPI3D_FACTORS",
    "MPI3D_SEMANTICS",
    "MPI3D_SIZES",
    "MPI3D_VALUES",
    "MPI3D_SPLIT",
    "MPI3D_P_PERTURB",
    "MPI3D_FILENAME",
    "MPI3D_KEY",
    "MPI3D_GDRIVE_ID",
    "MPI3D_URL",
    "MPI3DNotFoundError",
    "MPI3DFormatError",
    "default_mpi3d_path",
    "find_mpi3d",
    "download_mpi3d",
    "check_mpi3d_file",
    "load_mpi3d_images",
    "mpi3d_factors",
    "mpi3d_split_sizes",
    "mpi3d_splits",
    "mpi3d_bias",
    "mpi3d_selection_settings",
    "mpi3d_perturbation_settings",
    "mpi3d_captions",
]

MPI3D_FACTORS: tuple[str, ...] = ("color", "shape", "size", "cam", "back", "hori", "vert")
MPI3D_SEMANTICS: tuple[str, ...] = MPI3D_FACTORS[:5]
MPI3D_SIZES: tuple[int, ...] = (4, 4, 2, 3, 3, 40, 40)
MPI3D_VALUES: dict[str, tuple[str, ...]] = {
    "color": ("yellow", "green", "olive", "red"),
    "shape": ("coffee cup", "tennis ball", "croissant", "beer cup"),
    "size": ("small", "large"),
    "cam": ("top", "center", "bottom"),
    "back": ("purple", "sea green", "salmon"),
}
#: Train, eval and test images of the paper's split (App. D).
MPI3D_SPLIT: tuple[int, int, int] = (44_720, 23_040, 23_040)
#: Probability that a perturbable factor is replaced by a uniformly random value (App. D).
MPI3D_P_PERTURB = 0.9
MPI3D_FILENAME = "real3d_complicated_shapes_ordered.npz"
MPI3D_KEY = "images"
MPI3D_GDRIVE_ID = "1Tp8eTdHxgUMtsZv5uAoYAbJR1BOa_OQm"
MPI3D_URL = f"https://drive.google.com/uc?id={MPI3D_GDRIVE_ID}"
_IMAGE_SHAPE = (64, 64, 3)


class MPI3DNotFoundError(FileNotFoundError):
    """Raised when the MPI3D-complex file is not where it was looked for."""


class MPI3DFormatError(ValueError):
    """Raised when a file does not have the layout of MPI3D-complex."""


def _check_sizes(sizes: Sequence[int]) -> tuple[int, ...]:
    sizes = tuple(int(s) for s in sizes)
    if len(sizes) != len(MPI3D_FACTORS) or min(sizes) < 1:
        raise ValueError(
            f"sizes must give {len(MPI3D_FACTORS)} positive factor sizes ({', '.join(MPI3D_FACTORS)}), "
            f"got {sizes}."
        )
    for name, k in zip(MPI3D_SEMANTICS, sizes):
        if k > len(MPI3D_VALUES[name]):
            raise ValueError(f"sizes gives {name} {k} values; it has at most {len(MPI3D_VALUES[name])}.")
    return sizes


def default_mpi3d_path() -> Path:
    """Where :func:`download_mpi3d` puts the file: ``default_cache_dir() / "mpi3d" / MPI3D_FILENAME``."""
    return default_cache_dir() / "mpi3d" / MPI3D_FILENAME


def find_mpi3d() -> Path | None:
    """Path of the MPI3D-complex file if present, else None.

    Looks at ``$MMCL_MPI3D_PATH`` (a file, or a folder holding :data:`MPI3D_FILENAME`) and then
    at :func:`default_mpi3d_path`. The file's contents are not checked (see :func:`check_mpi3d_file`).
    """
    candidates = []
    env = os.environ.get("MMCL_MPI3D_PATH")
    if env:
        p = Path(env).expanduser()
        candidates.append(p / MPI3D_FILENAME if p.is_dir() else p)
    candidates.append(default_mpi3d_path())
    return next((p for p in candidates if p.is_file()), None)


def _not_found(path: Path | None) -> MPI3DNotFoundError:
    where = f"{path} does not exist" if path is not None else (
        "no MPI3D-complex file found ($MMCL_MPI3D_PATH is "
        f"{'unset' if 'MMCL_MPI3D_PATH' not in os.environ else repr(os.environ['MMCL_MPI3D_PATH'])}, "
        f"and {default_mpi3d_path()} does not exist)"
    )
    return MPI3DNotFoundError(
        f"{where}. Get {MPI3D_FILENAME} (about 5.6 GB) with "
        "mmcl_helpers.datasets.mpi3d.download_mpi3d() (needs `pip install gdown`), or download it "
        f"by hand from {MPI3D_URL} and set MMCL_MPI3D_PATH to the file."
    )


def download_mpi3d(path: str | Path | None = None, quiet: bool = False) -> Path:
    """Download the authors' copy of MPI3D-complex from Google Drive (needs ``gdown``).

    Args:
        path: destination file (default :func:`default_mpi3d_path`); kept if it already exists.
        quiet: hide gdown's progress bar.

    Returns:
        the path of the file.

    Raises:
        ImportError: gdown is not installed (the message says how to install it or download by hand).
    """
    dest = Path(path).expanduser() if path is not None else default_mpi3d_path()
    if dest.is_file():
        return dest
    try:
        import gdown
    except ImportError as err:
        raise ImportError(
            "download_mpi3d needs the gdown package: run `pip install gdown` (on Colab: "
            f"`%pip install gdown`), or download {MPI3D_URL} by hand and set MMCL_MPI3D_PATH."
        ) from err
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    result = gdown.download(id=MPI3D_GDRIVE_ID, output=str(tmp), quiet=quiet)
    if result is None or not tmp.is_file():
        raise OSError(f"gdown could not download {MPI3D_URL}; download it by hand and set MMCL_MPI3D_PATH.")
    os.replace(tmp, dest)
    return dest


def _npz_member_header(path: Path) -> tuple[list[str], dict[str, tuple]]:
    """Keys of an .npz and, per key, (shape, dtype, stored uncompressed, data offset in file)."""
    out = {}
    with zipfile.ZipFile(path) as zf:
        keys = [n.removesuffix(".npy") for n in zf.namelist()]
        for info in zf.infolist():
            with zf.open(info) as f:
                version = np.lib.format.read_magic(f)
                reader = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                          else np.lib.format.read_array_header_2_0)
                shape, fortran, dtype = reader(f)
                header_len = f.tell()
            offset = None
            if info.compress_type == zipfile.ZIP_STORED and not fortran:
                with open(path, "rb") as raw:
                    raw.seek(info.header_offset + 26)
                    name_len, extra_len = np.frombuffer(raw.read(4), dtype="<u2")
                offset = info.header_offset + 30 + int(name_len) + int(extra_len) + header_len
            out[info.filename.removesuffix(".npy")] = (tuple(shape), np.dtype(dtype), offset)
    return keys, out


def check_mpi3d_file(path: str | Path | None = None, sizes: Sequence[int] = MPI3D_SIZES) -> Path:
    """Check the layout of an MPI3D-complex file without reading its images.

    Args:
        path: the .npz (or .npy) file; default :func:`find_mpi3d`.
        sizes: factor sizes (the real ones by default); the image count must be their product.

    Returns:
        the checked path.

    Raises:
        MPI3DNotFoundError: no file (the message says how to get it).
        MPI3DFormatError: not an .npz/.npy, no ``images`` array, or a wrong shape or dtype.
    """
    sizes = _check_sizes(sizes)
    p = Path(path).expanduser() if path is not None else find_mpi3d()
    if p is None or not p.is_file():
        raise _not_found(p)
    expected = (int(np.prod(sizes)), *_IMAGE_SHAPE)
    if p.suffix == ".npy":
        arr = np.load(p, mmap_mode="r")
        shape, dtype = arr.shape, arr.dtype
    else:
        try:
            keys, headers = _npz_member_header(p)
        except (zipfile.BadZipFile, ValueError, OSError) as err:
            raise MPI3DFormatError(
                f"{p} is not a readable .npz archive ({err}); expected {MPI3D_FILENAME} from {MPI3D_URL}."
            ) from err
        if MPI3D_KEY not in headers:
            raise MPI3DFormatError(
                f"{p} has arrays {keys} but no {MPI3D_KEY!r}; expected one uint8 array "
                f"{MPI3D_KEY!r} of shape {expected}."
            )
        shape, dtype, _ = headers[MPI3D_KEY]
    if dtype != np.uint8:
        raise MPI3DFormatError(f"{p}: {MPI3D_KEY!r} has dtype {dtype}, expected uint8.")
    if len(shape) != 4 or tuple(shape[1:]) != _IMAGE_SHAPE:
        raise MPI3DFormatError(
            f"{p}: {MPI3D_KEY!r} has shape {tuple(shape)}, expected (N, 64, 64, 3) images."
        )
    if shape[0] != expected[0]:
        raise MPI3DFormatError(
            f"{p}: {MPI3D_KEY!r} holds {shape[0]} images, expected {expected[0]} "
            f"(the product of the factor sizes {sizes}); the file may be truncated or another dataset."
        )
    return p


def load_mpi3d_images(path: str | Path | None = None, sizes: Sequence[int] = MPI3D_SIZES) -> np.ndarray:
    """The images, memory-mapped when the file allows it (an uncompressed .npz or an .npy).

    Args:
        path: the file; default :func:`find_mpi3d`.
        sizes: factor sizes (the real ones by default).

    Returns:
        uint8 array (N, 64, 64, 3), read-only; a compressed .npz is read into memory instead.
    """
    p = check_mpi3d_file(path, sizes)
    if p.suffix == ".npy":
        return np.load(p, mmap_mode="r")
    _, headers = _npz_member_header(p)
    shape, dtype, offset = headers[MPI3D_KEY]
    if offset is not None:
        return np.memmap(p, dtype=dtype, mode="r", offset=offset, shape=shape)
    with np.load(p) as data:
        return data[MPI3D_KEY]


def mpi3d_factors(index: np.ndarray, sizes: Sequence[int] = MPI3D_SIZES) -> np.ndarray:
    """Factor values of images from their flat indices (the first factor varies slowest).

    Args:
        index: integer indices, shape (N,).
        sizes: factor sizes, in :data:`MPI3D_FACTORS` order.

    Returns:
        int64 array (N, 7): color, shape, size, cam, back, hori, vert.
    """
    sizes = _check_sizes(sizes)
    idx = np.asarray(index, dtype=np.int64).reshape(-1)
    total = int(np.prod(sizes))
    if idx.size and (idx.min() < 0 or idx.max() >= total):
        raise IndexError(f"image indices must lie in 0..{total - 1}, got {idx.min()}..{idx.max()}.")
    return np.stack(np.unravel_index(idx, sizes), axis=1).astype(np.int64)


def mpi3d_split_sizes(sizes: Sequence[int] = MPI3D_SIZES) -> tuple[int, int, int]:
    """Train/eval/test sizes: the paper's :data:`MPI3D_SPLIT`, scaled to the dataset's size."""
    total = int(np.prod(_check_sizes(sizes)))
    full = int(np.prod(MPI3D_SIZES))
    return tuple(int(round(k * total / full)) for k in MPI3D_SPLIT)  # type: ignore[return-value]


def mpi3d_splits(seed: int = 0, sizes: Sequence[int] = MPI3D_SIZES) -> dict[str, np.ndarray]:
    """Disjoint random train/eval/test image indices of :func:`mpi3d_split_sizes`.

    Returns:
        ``{"train": (n_train,), "eval": (n_eval,), "test": (n_test,)}`` int64 index arrays, each sorted.
    """
    total = int(np.prod(_check_sizes(sizes)))
    n_train, n_eval, n_test = mpi3d_split_sizes(sizes)
    perm = np.random.default_rng(seed).permutation(total)
    cuts = np.cumsum([n_train, n_eval, n_test])
    return {name: np.sort(perm[lo:hi]) for name, lo, hi in
            zip(("train", "eval", "test"), (0, cuts[0], cuts[1]), cuts)}


def mpi3d_bias(selected: Sequence[str], perturbed: Sequence[str] = (),
               p_perturb: float = MPI3D_P_PERTURB) -> CaptionBias:
    """A setting over :data:`MPI3D_SEMANTICS` by factor names (see ``captions.bias_from_names``)."""
    return bias_from_names(selected, perturbed, MPI3D_SEMANTICS, p_perturb)


def mpi3d_selection_settings(p_perturb: float = MPI3D_P_PERTURB) -> dict[str, CaptionBias]:
    """Selection settings 1..5: {color}, {color, shape}, {color..size}, {color..cam}, {color..back}."""
    return selection_settings(MPI3D_SEMANTICS, p_perturb)


def mpi3d_perturbation_settings(p_perturb: float = MPI3D_P_PERTURB) -> dict[str, CaptionBias]:
    """Perturbation settings 1..5 (paper's order): ∅, {back}, {cam, back}, {size..back}, {shape..back}."""
    return perturbation_settings(MPI3D_SEMANTICS, p_perturb, most_perturbed_first=False)


_TEMPLATES = (
    "{a_obj}{size_c}{cam_c}{back_c}.",
    "There is {a_obj}{size_c}{back_c}{cam_c}.",
    "{back_lead}{a_obj}{size_c}{cam_c}.",
)
_CLAUSES = (
    dict(size=" of {size} size", cam=", photographed from the {cam}", back=" in front of a {back} background",
         back_lead=""),
    dict(size=", {size} in size", cam=", with the camera at the {cam}", back=", on a {back} background",
         back_lead=""),
    dict(size=" that is {size}", cam=" seen from the {cam}", back="", back_lead="On a {back} background, "),
)
_MPI3D_PHRASING_STREAM = 3000


def mpi3d_captions(index: np.ndarray, bias: CaptionBias, seed: int = 0,
                   sizes: Sequence[int] = MPI3D_SIZES) -> CaptionBatch:
    """Captions of MPI3D images (3 templates; the template is the text-specific factor).

    Args:
        index: flat image indices, shape (N,); they seed each caption's draws.
        bias: a setting over :data:`MPI3D_SEMANTICS` (see :func:`mpi3d_bias`).
        seed: caption seed.
        sizes: factor sizes (the real ones by default).

    Returns:
        :class:`~mmcl_helpers.datasets.captions.CaptionBatch`; ``reported`` holds value indices.
    """
    sizes = _check_sizes(sizes)
    idx = np.asarray(index, dtype=np.int64).reshape(-1)
    labels = mpi3d_factors(idx, sizes)
    values = {name: labels[:, k] for k, name in enumerate(MPI3D_SEMANTICS)}
    cards = dict(zip(MPI3D_SEMANTICS, sizes))
    reported, resampled = perturb_factors(values, bias, MPI3D_SEMANTICS, cards, seed, idx)
    phrasing = hashed_integers(seed, idx, _MPI3D_PHRASING_STREAM, len(_TEMPLATES))
    text = []
    for j in range(len(idx)):
        w = {k: MPI3D_VALUES[k][int(v[j])] for k, v in reported.items()}
        c = _CLAUSES[phrasing[j]]
        obj = " ".join([w[k] for k in ("color",) if k in w] + [w.get("shape", "object")])
        parts = {
            "a_obj": ("an " if obj[0] in "aeiou" else "a ") + obj,
            "size_c": c["size"].format(size=w["size"]) if "size" in w else "",
            "cam_c": c["cam"].format(cam=w["cam"]) if "cam" in w else "",
            "back_c": c["back"].format(back=w["back"]) if "back" in w else "",
            "back_lead": c["back_lead"].format(back=w["back"]) if "back" in w else "",
        }
        s = _TEMPLATES[phrasing[j]].format(**parts)
        text.append(s[0].upper() + s[1:])
    return CaptionBatch(text=text, phrasing=phrasing, reported=reported, resampled=resampled)
