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
authors' copy from Google Drive with ``gdown`` through ``pooch`` (on Colab: ``pip install gdown``
first). Nothing is ever downloaded on import. Every function takes the factor ``sizes`` as an
argument, so that the tests can run the same code on a tiny synthetic file.

Integrity: the file's layout (:func:`check_mpi3d_file`) and its SHA-256 (:func:`verify_mpi3d_file`)
are checked after a download and before every reuse, memory-mapped loads included; on first use the
archive's own CRC-32s are checked as well. The SHA-256 is computed once and kept beside the file
(``<file>.sha256``), and recomputed only when the file's size or modification time changes. The
authors publish no checksum and this project has not recorded one, so :data:`MPI3D_SHA256` is
``None``: then the digest first seen is kept, and a later change to the file (an interrupted copy,
flipped bytes) is reported. Give the expected digest with ``sha256=`` or ``$MMCL_MPI3D_SHA256`` to
check a first download as well.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mmcl_helpers.core import storage
from mmcl_helpers.core.biases import CaptionBias
from mmcl_helpers.core.random_streams import hashed_integers, stream
from mmcl_helpers.core.storage import default_cache_dir
from mmcl_helpers.core.timing import timed
from mmcl_helpers.datasets.naming import (
    bias_from_names,
    named_perturbation_sweep,
    named_selection_sweep,
)
from mmcl_helpers.datasets.perturbation import CaptionBatch, perturb_factors, statement_ids

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
    "MPI3DChecksumError",
    "MPI3D_SHA256",
    "verify_mpi3d_file",
    "default_mpi3d_path",
    "find_mpi3d",
    "download_mpi3d",
    "check_mpi3d_file",
    "load_mpi3d_images",
    "mpi3d_factors",
    "mpi3d_split_sizes",
    "mpi3d_splits",
    "mpi3d_bias",
    "mpi3d_selection_sweep",
    "mpi3d_perturbation_sweep",
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
#: SHA-256 of the authors' ``real3d_complicated_shapes_ordered.npz``. Not known: the dataset's
#: authors publish none and none has been recorded here, so it is None (see the module docstring:
#: the digest first seen is kept and checked from then on). ``$MMCL_MPI3D_SHA256`` overrides it.
MPI3D_SHA256: str | None = None
_IMAGE_SHAPE = (64, 64, 3)


class MPI3DNotFoundError(FileNotFoundError):
    """Raised when the MPI3D-complex file is not where it was looked for."""


class MPI3DFormatError(ValueError):
    """Raised when a file does not have the layout of MPI3D-complex."""


class MPI3DChecksumError(ValueError):
    """Raised when a file's SHA-256 differs from the expected or the first recorded one."""


def _expected_sha256(sha256: str | None, sizes: Sequence[int]) -> str | None:
    if sha256 is not None:
        return sha256.lower().removeprefix("sha256:")
    if tuple(int(s) for s in sizes) != MPI3D_SIZES:
        return None  # a synthetic layout (tests): only the recorded digest applies
    env = os.environ.get("MMCL_MPI3D_SHA256", "").strip()
    return env.lower().removeprefix("sha256:") if env else MPI3D_SHA256


def verify_mpi3d_file(path: str | Path, sha256: str | None = None) -> str:
    """Check a file's SHA-256 against ``sha256``, else against the digest recorded at first use.

    The digest is computed once and kept in ``<file>.sha256`` with the file's size and mtime;
    it is recomputed (minutes for the real file's 5.6 GB, once) only when either changed. Each
    time it is computed, an .npz's own CRC-32s are checked as well (every member read in full), so
    a file damaged before its first use is reported although no digest was known for it.

    Args:
        path: the file.
        sha256: expected hex digest (optionally ``"sha256:..."``); None: the recorded one, if any.

    Returns:
        the file's SHA-256.

    Raises:
        MPI3DChecksumError: the digest differs, or an .npz member's CRC-32 does not hold (the
            message says what to do).
    """
    p = Path(path)
    record = storage.read_checksum_record(p)
    st = p.stat()
    fresh = record is not None and (record["size"], record["mtime_ns"]) == (st.st_size, st.st_mtime_ns)
    digest = record["sha256"] if fresh else storage.file_sha256(p)
    if sha256:
        expected = sha256.lower().removeprefix("sha256:")
        if digest != expected:
            raise MPI3DChecksumError(
                f"{p} has SHA-256 {digest}, expected {expected}: the file is damaged, incomplete or "
                f"another version. Delete it and run download_mpi3d() again, or download "
                f"{MPI3D_FILENAME} by hand from {MPI3D_URL}."
            )
    elif record is not None and digest != record["sha256"]:
        raise MPI3DChecksumError(
            f"{p} changed since it was first used: its SHA-256 is now {digest}, it was "
            f"{record['sha256']} (kept in {p.name}.sha256). The file is probably damaged (an "
            "interrupted copy or download); delete both files and download it again. If you "
            f"replaced it on purpose with a good copy, delete {p.name}.sha256 only."
        )
    if not fresh:
        _check_crc(p)  # first use: the archive's own CRC-32s must hold before its digest is kept
        storage.write_checksum_record(p, digest)
    return digest


def _check_crc(p: Path) -> None:
    """Read every member of an .npz in full, so that zipfile checks its stored CRC-32 (.npy: no CRC)."""
    if p.suffix == ".npy":
        return
    try:
        with zipfile.ZipFile(p) as zf:
            for info in zf.infolist():
                with zf.open(info) as f:
                    while f.read(1 << 24):
                        pass
    except (zipfile.BadZipFile, OSError, EOFError) as err:  # "Bad CRC-32 for file 'images.npy'"
        raise MPI3DChecksumError(
            f"{p} is damaged: its bytes do not match the CRC-32 stored in the archive ({err}). "
            f"Delete it and run download_mpi3d() again, or download {MPI3D_FILENAME} by hand from "
            f"{MPI3D_URL}."
        ) from None


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


def download_mpi3d(path: str | Path | None = None, quiet: bool = False, sha256: str | None = None,
                   sizes: Sequence[int] = MPI3D_SIZES) -> Path:
    """Download the authors' copy of MPI3D-complex from Google Drive (needs ``gdown``), verified.

    ``pooch`` runs the download (with gdown, which handles Google Drive's confirmation page) and
    checks the SHA-256 when one is known; the layout is checked as well. A file already at the
    destination is verified the same way instead of being downloaded again.

    Args:
        path: destination file (default :func:`default_mpi3d_path`).
        quiet: hide gdown's progress bar.
        sha256: expected digest (default ``$MMCL_MPI3D_SHA256``, else :data:`MPI3D_SHA256`).
        sizes: factor sizes the layout must have (the real ones by default).

    Returns:
        the path of the verified file.

    Raises:
        ImportError: gdown is not installed (the message says how to install it or download by hand).
        MPI3DChecksumError, MPI3DFormatError: a damaged or foreign file (the message says what to do).
    """
    dest = Path(path).expanduser() if path is not None else default_mpi3d_path()
    expected = _expected_sha256(sha256, sizes)
    if dest.is_file():
        _verified(dest, sizes, expected, "the file already there")
        return dest
    try:
        import gdown
    except ImportError as err:
        raise ImportError(
            "download_mpi3d needs the gdown package: run `pip install gdown` (on Colab: "
            f"`%pip install gdown`), or download {MPI3D_URL} by hand and set MMCL_MPI3D_PATH."
        ) from err
    import pooch

    def fetch(url: str, output_file: str, _pooch: object) -> None:
        result = gdown.download(id=MPI3D_GDRIVE_ID, output=str(output_file), quiet=quiet)
        if result is None or not Path(output_file).is_file():
            raise OSError(f"gdown could not download {url}; download it by hand and set MMCL_MPI3D_PATH.")

    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        pooch.retrieve(MPI3D_URL, known_hash=f"sha256:{expected}" if expected else None,
                       fname=dest.name, path=dest.parent, downloader=fetch)
    except ValueError as err:  # pooch's hash mismatch (it deletes the bad download)
        raise MPI3DChecksumError(
            f"the downloaded {MPI3D_FILENAME} does not have the expected SHA-256 {expected} ({err}). "
            f"The download was probably cut short; run download_mpi3d() again, or download it by "
            f"hand from {MPI3D_URL} and set MMCL_MPI3D_PATH."
        ) from None
    _verified(dest, sizes, expected, "the downloaded file")
    return dest


def _verified(p: Path, sizes: Sequence[int], expected: str | None, what: str) -> None:
    try:
        check_mpi3d_file(p, sizes)
    except MPI3DFormatError as err:
        raise MPI3DFormatError(
            f"{what} is not a complete MPI3D-complex file: {err} Delete {p} and run "
            f"download_mpi3d() again, or download it by hand from {MPI3D_URL}."
        ) from None
    verify_mpi3d_file(p, expected)


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
        try:
            arr = np.load(p, mmap_mode="r")
        except (ValueError, OSError, EOFError) as err:
            raise MPI3DFormatError(
                f"{p} is not a readable .npy array ({err}); it may be truncated: delete it and get "
                f"{MPI3D_FILENAME} again from {MPI3D_URL}."
            ) from err
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
        shape, dtype, offset = headers[MPI3D_KEY]
        need = None if offset is None else offset + int(np.prod(shape)) * np.dtype(dtype).itemsize
        if need is not None and p.stat().st_size < need:
            raise MPI3DFormatError(
                f"{p} is truncated: it has {p.stat().st_size} bytes, its {MPI3D_KEY!r} array needs "
                f"{need}; delete it and download it again from {MPI3D_URL}."
            )
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


@timed("data")
def load_mpi3d_images(path: str | Path | None = None, sizes: Sequence[int] = MPI3D_SIZES,
                      sha256: str | None = None) -> np.ndarray:
    """The images, memory-mapped when the file allows it (an uncompressed .npz or an .npy).

    The file's layout and SHA-256 are checked first (:func:`verify_mpi3d_file`; the digest is
    computed once and kept beside the file), so a damaged file is reported even though a memory
    map would not notice.

    Args:
        path: the file; default :func:`find_mpi3d`.
        sizes: factor sizes (the real ones by default).
        sha256: expected digest (default ``$MMCL_MPI3D_SHA256``, else :data:`MPI3D_SHA256`).

    Returns:
        uint8 array (N, 64, 64, 3), read-only; a compressed .npz is read into memory instead.

    Raises:
        MPI3DNotFoundError: no file at ``path``.
        MPI3DFormatError: the file does not have MPI3D-complex's layout.
        MPI3DChecksumError: its SHA-256 differs from the expected one.
    """
    p = check_mpi3d_file(path, sizes)
    verify_mpi3d_file(p, _expected_sha256(sha256, sizes))
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
    """A setting over :data:`MPI3D_SEMANTICS` by factor names (see
    :func:`~mmcl_helpers.datasets.naming.bias_from_names`)."""
    return bias_from_names(selected, perturbed, MPI3D_SEMANTICS, p_perturb)


def mpi3d_selection_sweep(p_perturb: float = MPI3D_P_PERTURB) -> dict[str, CaptionBias]:
    """Selection settings 1..5: {color}, {color, shape}, {color..size}, {color..cam}, {color..back}."""
    return named_selection_sweep(MPI3D_SEMANTICS, p_perturb)


def mpi3d_perturbation_sweep(p_perturb: float = MPI3D_P_PERTURB) -> dict[str, CaptionBias]:
    """Perturbation settings 1..5 (paper's order): ∅, {back}, {cam, back}, {size..back}, {shape..back}."""
    return named_perturbation_sweep(MPI3D_SEMANTICS, p_perturb, most_perturbed_first=False)


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


def mpi3d_captions(index: np.ndarray, bias: CaptionBias, seed: int = 0,
                   sizes: Sequence[int] = MPI3D_SIZES) -> CaptionBatch:
    """Captions of MPI3D images (3 templates; the template is the text-specific factor).

    Args:
        index: flat image indices, shape (N,); they seed each caption's draws.
        bias: a setting over :data:`MPI3D_SEMANTICS` (see :func:`mpi3d_bias`).
        seed: caption seed.
        sizes: factor sizes (the real ones by default).

    Returns:
        :class:`~mmcl_helpers.datasets.perturbation.CaptionBatch`; ``reported`` holds value indices.
    """
    sizes = _check_sizes(sizes)
    idx = np.asarray(index, dtype=np.int64).reshape(-1)
    labels = mpi3d_factors(idx, sizes)
    values = {name: labels[:, k] for k, name in enumerate(MPI3D_SEMANTICS)}
    cards = dict(zip(MPI3D_SEMANTICS, sizes))
    reported, resampled = perturb_factors(values, bias, MPI3D_SEMANTICS, cards, seed, idx)
    phrasing = hashed_integers(seed, idx, stream("caption_phrasing"), len(_TEMPLATES))
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
    return CaptionBatch(text=text, phrasing=phrasing, reported=reported, resampled=resampled,
                        statement=statement_ids(reported))
