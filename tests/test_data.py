"""Datasets by name and by path, in every UCR format, with clear errors."""

import numpy as np
import pytest
from conftest import has_faceall
from rocknet_host import data


def write_ucr(folder, name, rows_train, rows_test, fmt):
    folder.mkdir(parents=True, exist_ok=True)
    for split, rows in (("TRAIN", rows_train), ("TEST", rows_test)):
        path = folder / f"{name}_{split}.{fmt}"
        if fmt == "tsv":
            text = "\n".join("\t".join(str(v) for v in r) for r in rows)
        elif fmt == "txt":
            text = "\n".join("  ".join(f"{v:e}" for v in r) for r in rows)
        else:
            head = f"@problemName {name}\n@timeStamps false\n@missing false\n@univariate true\n"
            head += "@equalLength true\n@classLabel true a b\n@data\n"
            text = head + "\n".join(",".join(str(v) for v in r[1:]) + f":{r[0]}" for r in rows)
        path.write_text(text + "\n")
    return folder / f"{name}_TRAIN.{fmt}"


def rows(labels, length=12, seed=0):
    rng = np.random.default_rng(seed)
    return [[lab] + list(np.round(rng.standard_normal(length), 4)) for lab in labels]


@pytest.mark.parametrize("fmt", ["tsv", "txt", "ts"])
def test_any_ucr_file_by_path(tmp_path, fmt):
    labs = ["a", "b"] if fmt == "ts" else [1, 2]
    train = write_ucr(tmp_path / "Toy", "Toy", rows(labs * 3), rows(labs * 2, seed=1), fmt)
    for target in (train, train.parent):
        ds = data.load(str(target))
        assert ds.X_train.shape == (6, 12) and ds.X_test.shape == (4, 12)
        assert ds.y_train.tolist() == [0, 1] * 3 and len(ds.classes) == 2


def test_labels_mapped_with_mapping_kept(tmp_path):
    train = write_ucr(tmp_path / "T", "T", rows([-1, 1, 1]), rows([1, -1]), "tsv")
    ds = data.load(str(train))
    assert ds.classes == ["-1", "1"] and ds.y_train.tolist() == [0, 1, 1]


def test_bundled_and_data_dir_names():
    ds = data.load("GunPoint")
    assert ds.X_train.shape == (50, 150) and ds.n_classes == 2
    if has_faceall():
        fa = data.load("FaceAll")
        assert fa.X_train.shape == (560, 131) and fa.X_test.shape == (1690, 131)
        assert fa.n_classes == 14


def test_unknown_name_lists_known_and_names_the_fix():
    with pytest.raises(data.DatasetError) as info:
        data.load("NoSuchSet")
    msg = str(info.value)
    assert "GunPoint" in msg and "--data-dir" in msg


def test_unequal_lengths(tmp_path):
    tr = rows([1, 2, 1]) + [[2] + [0.5] * 7]
    train = write_ucr(tmp_path / "U", "U", tr, rows([1, 2]), "tsv")
    with pytest.raises(data.DatasetError, match="--equalize"):
        data.load(str(train), equalize="error")
    ds = data.load(str(train))
    assert ds.X_train.shape == (4, 12) and "resample" in ds.notes[0]
    assert np.allclose(ds.X_train[3], 0.5)


def test_trailing_nan_is_ucr_padding_interior_nan_is_refused(tmp_path):
    tr = rows([1, 2, 1])
    tr[0][-2:] = [np.nan, np.nan]
    tr[1][4] = np.nan
    train = write_ucr(tmp_path / "N", "N", tr, rows([1, 2]), "tsv")
    with pytest.raises(data.DatasetError, match="--missing interpolate"):
        data.load(str(train))
    ds = data.load(str(train), missing="interpolate")
    assert np.all(np.isfinite(ds.X_train))


def test_empty_and_missing_test_split(tmp_path):
    (tmp_path / "E").mkdir()
    (tmp_path / "E" / "E_TRAIN.tsv").write_text("")
    (tmp_path / "E" / "E_TEST.tsv").write_text("1\t1\t2\n")
    with pytest.raises(data.DatasetError, match="no series"):
        data.load(str(tmp_path / "E"))
    (tmp_path / "F").mkdir()
    (tmp_path / "F" / "F_TRAIN.tsv").write_text("1\t1\t2\n")
    with pytest.raises(data.DatasetError, match="TEST"):
        data.load(str(tmp_path / "F" / "F_TRAIN.tsv"))
