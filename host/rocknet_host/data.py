"""Datasets: aeon's bundled UCR sets, named UCR folders in configured data directories, and any
UCR file or folder given by path (.tsv, old-style .txt, .ts).

Every loader returns a `Dataset` with float64 series and labels mapped to 0..C-1 (the mapping
kept in ``classes``). Unequal lengths and missing values get an explicit, documented treatment
(see ``load``); nothing is silently altered.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import UserError

DATA_DIR_ENV = "ROCKNET_DATA_DIR"
# aeon's bundled univariate classification sets (checked against aeon 1.x's data folder).
BUNDLED = (
    "ACSF1", "ArrowHead", "GunPoint", "ItalyPowerDemand", "OSULeaf", "PickupGestureWiimoteZ",
)
EQUALIZE = ("error", "resample", "pad")
MISSING = ("error", "interpolate")
_SUFFIXES = (".tsv", ".txt", ".ts")


@dataclass
class Dataset:
    name: str
    X_train: np.ndarray  # (n, L) float64
    y_train: np.ndarray  # (n,) int, 0..C-1
    X_test: np.ndarray
    y_test: np.ndarray
    classes: list[str]  # original label text of class index i
    source: str
    notes: list[str] = field(default_factory=list)

    @property
    def length(self) -> int:
        return int(self.X_train.shape[1])

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def summary(self) -> dict[str, object]:
        return {
            "name": self.name,
            "train": int(len(self.y_train)),
            "test": int(len(self.y_test)),
            "length": self.length,
            "classes": self.n_classes,
            "source": self.source,
            "notes": self.notes,
        }


class DatasetError(UserError):
    """A dataset problem with a message that names the fix."""


def data_dirs(extra: list[str] | None = None) -> list[Path]:
    dirs = [Path(p) for p in (extra or [])]
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        dirs += [Path(p) for p in env.split(os.pathsep) if p]
    return dirs


def _read_rows(path: Path) -> tuple[list[str], list[np.ndarray]]:
    """Rows of a UCR text file: (labels, series). .ts via aeon's reader; .tsv/.txt by hand."""
    if path.suffix == ".ts":
        from aeon.datasets import load_from_ts_file

        try:
            X, y = load_from_ts_file(str(path))
        except Exception as exc:  # aeon raises assorted types for malformed headers
            raise DatasetError(f"{path}: cannot parse .ts file ({exc})") from exc
        if isinstance(X, np.ndarray):
            if X.ndim == 3 and X.shape[1] != 1:
                raise DatasetError(
                    f"{path}: multivariate ({X.shape[1]} channels); rocknet handles univariate "
                    "series only — pick one channel and save it as .tsv"
                )
            series = [np.asarray(s, dtype=np.float64).reshape(-1) for s in X]
        else:
            if any(np.asarray(s).shape[0] != 1 for s in X):
                raise DatasetError(f"{path}: multivariate series are not supported")
            series = [np.asarray(s, dtype=np.float64).reshape(-1) for s in X]
        return [str(v) for v in y], series
    labels: list[str] = []
    series = []
    sep = "\t" if path.suffix == ".tsv" else None
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            parts = line.replace(",", " ").split() if sep is None else line.split(sep)
            try:
                values = np.array([float(v) for v in parts[1:]], dtype=np.float64)
            except ValueError as exc:
                raise DatasetError(f"{path}:{lineno}: not a number ({exc})") from exc
            label = parts[0].strip()
            if label.replace(".", "", 1).lstrip("-").isdigit() and float(label).is_integer():
                label = str(int(float(label)))
            labels.append(label)
            series.append(values)
    return labels, series


def _equalize(series: list[np.ndarray], length: int, how: str, where: str) -> np.ndarray:
    lengths = {len(s) for s in series}
    if lengths == {length}:
        return np.vstack(series)
    if how == "error":
        raise DatasetError(
            f"{where}: series have unequal lengths ({min(lengths)}..{max(lengths)}); pass "
            "--equalize resample (linear resampling to the longest training length) or "
            "--equalize pad (zero padding after the end)"
        )
    out = np.zeros((len(series), length))
    for i, s in enumerate(series):
        if how == "pad":
            n = min(len(s), length)
            out[i, :n] = s[:n]
        else:
            out[i] = np.interp(np.linspace(0, len(s) - 1, length), np.arange(len(s)), s)
    return out


def _fix_missing(series: list[np.ndarray], how: str, where: str) -> tuple[list[np.ndarray], int]:
    """Strip trailing NaN (UCR's padding of short series); interior NaN per `how`."""
    fixed, count = [], 0
    for i, s in enumerate(series):
        if not np.all(np.isfinite(s[~np.isnan(s)])):
            raise DatasetError(f"{where}: series {i} contains inf; clean the file first")
        nan = np.isnan(s)
        if nan.any():
            last = np.flatnonzero(~nan)
            if len(last) == 0:
                raise DatasetError(f"{where}: series {i} is all NaN; remove it from the file")
            s = s[: last[-1] + 1]
            nan = np.isnan(s)
            if nan.any():
                if how == "error":
                    raise DatasetError(
                        f"{where}: series {i} has missing values (NaN) inside; pass "
                        "--missing interpolate to fill them linearly"
                    )
                idx = np.arange(len(s))
                s = s.copy()
                s[nan] = np.interp(idx[nan], idx[~nan], s[~nan])
                count += 1
        fixed.append(s)
    return fixed, count


def _sibling_test(train: Path) -> Path:
    """The *_TEST file beside a *_TRAIN file: same suffix first, then any supported one."""
    name = train.name
    for token, repl in (("_TRAIN", "_TEST"), ("_train", "_test")):
        if token in name:
            stem = name[: name.rindex(token)] + repl
            for suffix in (train.suffix,) + _SUFFIXES:
                cand = train.with_name(stem + suffix)
                if cand.exists():
                    return cand
    raise DatasetError(
        f"{train}: no matching *_TEST file beside it; put the test split "
        f"({name.replace('TRAIN', 'TEST')}) in {train.parent}"
    )


def _find_train_file(folder: Path, name: str | None = None) -> Path | None:
    stem = name or folder.name
    for suffix in _SUFFIXES:  # prefer a format whose TEST file is there too
        cand = folder / f"{stem}_TRAIN{suffix}"
        if cand.exists() and (folder / f"{stem}_TEST{suffix}").exists():
            return cand
    cands = sorted(p for p in folder.glob("*_TRAIN.*") if p.suffix in _SUFFIXES)
    return cands[0] if cands else None


def _bundled_dir() -> Path:
    import aeon.datasets

    return Path(aeon.datasets.__file__).parent / "data"


def resolve(name_or_path: str, data_dir: list[str] | None = None) -> tuple[Path, str]:
    """Find the TRAIN file for a dataset name or path; returns (train_file, display name)."""
    p = Path(name_or_path).expanduser()
    if p.is_file():
        return p, p.name.split("_TRAIN")[0].split("_train")[0]
    if p.is_dir():
        train = _find_train_file(p)
        if train is None:
            raise DatasetError(f"{p}: no *_TRAIN.tsv/.txt/.ts file in this folder")
        return train, p.name
    if os.sep in name_or_path or name_or_path.endswith(_SUFFIXES):
        raise DatasetError(f"{name_or_path}: no such file or folder")
    for d in data_dirs(data_dir):
        folder = d / name_or_path
        if folder.is_dir():
            train = _find_train_file(folder, name_or_path)
            if train is not None:
                return train, name_or_path
    if name_or_path in BUNDLED:
        folder = _bundled_dir() / name_or_path
        train = _find_train_file(folder, name_or_path)
        if train is not None:
            return train, name_or_path
    known = sorted(set(BUNDLED) | set(available_names(data_dir)))
    raise DatasetError(
        f"unknown dataset {name_or_path!r}. Known here: {', '.join(known)}. Give a path to a "
        f"UCR *_TRAIN file or folder, or add a data directory with --data-dir / "
        f"{DATA_DIR_ENV}."
    )


def available_names(data_dir: list[str] | None = None) -> list[str]:
    names = []
    for d in data_dirs(data_dir):
        if d.is_dir():
            names += [f.name for f in sorted(d.iterdir()) if f.is_dir() and _find_train_file(f)]
    return names


def load(
    name_or_path: str,
    data_dir: list[str] | None = None,
    equalize: str = "resample",
    missing: str = "error",
) -> Dataset:
    """Load a dataset by name or path.

    Unequal lengths (e.g. PickupGestureWiimoteZ): ``equalize="resample"`` (default) resamples
    every series linearly to the longest training length; ``"pad"`` zero-pads after the end;
    ``"error"`` refuses. Trailing NaN are UCR's padding and are stripped first. Interior NaN:
    ``missing="error"`` (default) refuses, ``"interpolate"`` fills linearly. inf is refused.
    """
    if equalize not in EQUALIZE:
        raise DatasetError(f"equalize must be one of {EQUALIZE}, not {equalize!r}")
    if missing not in MISSING:
        raise DatasetError(f"missing must be one of {MISSING}, not {missing!r}")
    train_path, name = resolve(name_or_path, data_dir)
    test_path = _sibling_test(train_path)
    ytr_raw, str_ = _read_rows(train_path)
    yte_raw, ste = _read_rows(test_path)
    if not str_:
        raise DatasetError(f"{train_path}: no series in the training file")
    if not ste:
        raise DatasetError(f"{test_path}: no series in the test file")
    str_, n1 = _fix_missing(str_, missing, str(train_path))
    ste, n2 = _fix_missing(ste, missing, str(test_path))
    notes = []
    if n1 + n2:
        notes.append(f"interpolated missing values in {n1 + n2} series")
    length = max(len(s) for s in str_)
    if length < 9:
        raise DatasetError(f"{train_path}: series of length {length}; MiniRocket needs >= 9")
    unequal = len({len(s) for s in str_ + ste}) > 1
    X_train = _equalize(str_, length, equalize, str(train_path))
    X_test = _equalize(ste, length, equalize, str(test_path))
    if unequal:
        notes.append(f"unequal lengths: {equalize} to {length}")
    classes = sorted(set(ytr_raw), key=_label_key)
    index = {c: i for i, c in enumerate(classes)}
    unseen = sorted(set(yte_raw) - set(classes))
    if unseen:
        raise DatasetError(
            f"{test_path}: test labels {unseen} never occur in training; fix the files"
        )
    return Dataset(
        name=name,
        X_train=X_train,
        y_train=np.array([index[v] for v in ytr_raw], dtype=np.int64),
        X_test=X_test,
        y_test=np.array([index[v] for v in yte_raw], dtype=np.int64),
        classes=classes,
        source=str(train_path.parent),
        notes=notes,
    )


def _label_key(label: str) -> tuple[int, float | str]:
    try:
        return (0, float(label))
    except ValueError:
        return (1, label)


def synthetic(n_train: int = 60, n_test: int = 60, length: int = 64, n_classes: int = 3,
              seed: int = 0) -> Dataset:
    """A small, learnable dataset for demos and tests: class-dependent bumps plus noise."""
    rng = np.random.default_rng(seed)

    def make(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = np.arange(n) % n_classes
        t = np.linspace(0, 1, length)
        centres = (np.arange(n_classes) + 1) / (n_classes + 1)
        X = np.exp(-((t[None, :] - centres[y][:, None]) ** 2) / 0.005)
        X += 0.3 * rng.standard_normal((n, length))
        return X, y

    Xtr, ytr = make(n_train)
    Xte, yte = make(n_test)
    return Dataset("synthetic", Xtr, ytr, Xte, yte, [str(i) for i in range(n_classes)],
                   "generated")
