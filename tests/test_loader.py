from pathlib import Path

import numpy as np
import pytest

from gatedrec.data import load_mmrec
from gatedrec.errors import GatedRecError

GOOD_ROWS = ["0\t0\t0", "0\t1\t1", "0\t2\t2", "1\t1\t0", "1\t2\t1", "1\t0\t2"]


def write_folder(tmp_path: Path, rows=GOOD_ROWS, header="userID\titemID\tx_label", features=None) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "toy.inter").write_text("\n".join([header, *rows]) + "\n")
    np.save(folder / "image_feat.npy", np.ones((3, 4), dtype=np.float64) if features is None else features)
    return folder


def test_good_folder_loads_with_float32_features(tmp_path):
    dataset = load_mmrec(write_folder(tmp_path))
    assert (dataset.n_users, dataset.n_items) == (2, 3)
    assert (dataset.train.nnz, dataset.valid.nnz, dataset.test.nnz) == (2, 2, 2)
    assert dataset.modalities["visual"].features.dtype == np.float32


def test_float16_features_are_converted(tmp_path):
    dataset = load_mmrec(write_folder(tmp_path, features=np.ones((3, 4), dtype=np.float16)))
    assert dataset.modalities["visual"].features.dtype == np.float32


def test_missing_folder(tmp_path):
    with pytest.raises(GatedRecError, match="does not exist"):
        load_mmrec(tmp_path / "nope")


def test_missing_modality_file(tmp_path):
    with pytest.raises(GatedRecError, match="absent.npy' does not exist"):
        load_mmrec(write_folder(tmp_path), modalities={"visual": "absent.npy"})


def test_missing_column_names_file_and_column(tmp_path):
    folder = write_folder(tmp_path, rows=["0\t0", "0\t1"], header="userID\titemID")
    with pytest.raises(GatedRecError, match=r"toy.inter: missing column\(s\) x_label"):
        load_mmrec(folder)


def test_non_integer_id_names_the_line(tmp_path):
    rows = GOOD_ROWS[:3] + ["1\tabc\t0"] + GOOD_ROWS[4:]
    with pytest.raises(GatedRecError, match=r"toy.inter, line 5: itemID 'abc' is not a non-negative integer"):
        load_mmrec(write_folder(tmp_path, rows=rows))


def test_negative_id_names_the_line(tmp_path):
    rows = ["-1\t0\t0", *GOOD_ROWS[1:]]
    with pytest.raises(GatedRecError, match=r"line 2: userID '-1' is not a non-negative integer"):
        load_mmrec(write_folder(tmp_path, rows=rows))


def test_item_id_outside_the_feature_matrix(tmp_path):
    rows = GOOD_ROWS + ["1\t5\t0"]
    with pytest.raises(GatedRecError, match=r"image_feat.npy: has 3 rows but toy.inter, line 8, names item 5 "
                                            r"\(ids go up to 5\)"):
        load_mmrec(write_folder(tmp_path, rows=rows))


def test_a_truncated_feature_file_is_named_with_the_fix(tmp_path):
    folder = write_folder(tmp_path)
    whole = (folder / "image_feat.npy").read_bytes()
    (folder / "image_feat.npy").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(GatedRecError, match=r"image_feat.npy: not a complete NumPy .npy array .* write it again"):
        load_mmrec(folder)


def test_feature_row_count_differs_from_item_count(tmp_path):
    with pytest.raises(GatedRecError, match=r"has 5 rows but toy.inter has 3 items"):
        load_mmrec(write_folder(tmp_path, features=np.ones((5, 4), dtype=np.float32)))


def test_nan_features_name_the_row(tmp_path):
    features = np.ones((3, 4), dtype=np.float32)
    features[2, 1] = np.nan
    with pytest.raises(GatedRecError, match=r"row 2 holds NaN or infinite values"):
        load_mmrec(write_folder(tmp_path, features=features))


def test_infinite_features(tmp_path):
    features = np.ones((3, 4), dtype=np.float32)
    features[0, 0] = np.inf
    with pytest.raises(GatedRecError, match="NaN or infinite"):
        load_mmrec(write_folder(tmp_path, features=features))


def test_bad_x_label_names_the_line(tmp_path):
    rows = GOOD_ROWS[:2] + ["0\t2\t3"] + GOOD_ROWS[3:]
    with pytest.raises(GatedRecError, match=r"line 4: x_label 3 is not 0 \(train\), 1 \(valid\) or 2 \(test\)"):
        load_mmrec(write_folder(tmp_path, rows=rows))


def test_empty_split(tmp_path):
    rows = ["0\t0\t0", "0\t1\t1", "1\t2\t0", "1\t1\t1"]
    with pytest.raises(GatedRecError, match=r"the test split \(x_label 2\) has no interactions"):
        load_mmrec(write_folder(tmp_path, rows=rows))


def test_duplicate_rows_warn_and_collapse(tmp_path, caplog):
    rows = GOOD_ROWS + [GOOD_ROWS[0]]
    dataset = load_mmrec(write_folder(tmp_path, rows=rows))
    assert dataset.train.nnz == 2
    assert "1 duplicate row(s) collapsed (first at line 8)" in caplog.text


def test_pair_in_two_splits_is_refused(tmp_path):
    rows = GOOD_ROWS + ["0\t0\t2"]
    with pytest.raises(GatedRecError, match=r"lines 2 and 8: user 0 and item 0 appear in two splits"):
        load_mmrec(write_folder(tmp_path, rows=rows))


def test_several_inter_files_need_a_choice(tmp_path):
    folder = write_folder(tmp_path)
    (folder / "other.inter").write_text((folder / "toy.inter").read_text())
    with pytest.raises(GatedRecError, match="pick one with --inter"):
        load_mmrec(folder)
    assert load_mmrec(folder, inter="other.inter").n_users == 2


def test_of_several_inter_files_the_only_mmrec_one_is_used(tmp_path):
    folder = write_folder(tmp_path)
    raw_ids = ["userID\titemID\tx_label", "17\t900\t0", "17\t901\t1", "20\t900\t2"]
    (folder / "raw_ids.inter").write_text("\n".join(raw_ids) + "\n")
    assert load_mmrec(folder).n_items == 3


def test_no_modality_is_allowed_but_feature_models_refuse(tmp_path):
    folder = write_folder(tmp_path)
    (folder / "image_feat.npy").unlink()
    dataset = load_mmrec(folder)
    assert dataset.modalities == {}
    with pytest.raises(GatedRecError, match="needs item features"):
        dataset.require_modalities("rlmultimodalrec")


def test_lastfm_with_named_modalities_loads(shared_data):
    dataset = load_mmrec(
        shared_data / "lastfm-2k-multimodal", modalities={"text": "all-MiniLM-L6-v2.npy", "audio": "vggish.npy"}
    )
    assert (dataset.n_users, dataset.n_items) == (1858, 1425)
    assert dataset.train.nnz == 44327
    assert dataset.modalities["audio"].features.dtype == np.float32


def write_partial_image(folder: Path, item_ids: list[int], rows: np.ndarray) -> None:
    np.save(folder / "partial.npy", rows)
    (folder / "partial_items.tsv").write_text("itemID\tasin\n" + "".join(f"{i}\tA{i}\n" for i in item_ids))


def test_partial_modality_marks_unlisted_items_absent(tmp_path):
    folder = write_folder(tmp_path)
    write_partial_image(folder, [2, 0], np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32))
    dataset = load_mmrec(folder, modalities={"visual": "partial.npy@partial_items.tsv"})
    visual = dataset.modalities["visual"]
    assert visual.present.tolist() == [True, False, True]
    assert visual.features.tolist() == [[3.0, 4.0], [0.0, 0.0], [1.0, 2.0]]


def test_mean_fill_gives_absent_items_the_mean_vector(tmp_path):
    folder = write_folder(tmp_path)
    write_partial_image(folder, [2, 0], np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32))
    dataset = load_mmrec(folder, modalities={"visual": "partial.npy@partial_items.tsv"}, missing="mean")
    visual = dataset.modalities["visual"]
    assert visual.present.all()
    assert visual.features[1].tolist() == [2.0, 3.0]


def test_partial_modality_row_count_must_match_the_list(tmp_path):
    folder = write_folder(tmp_path)
    write_partial_image(folder, [2, 0, 1], np.ones((2, 2), dtype=np.float32))
    with pytest.raises(GatedRecError, match=r"partial.npy: has 2 rows but .*partial_items.tsv lists 3 items"):
        load_mmrec(folder, modalities={"visual": "partial.npy@partial_items.tsv"})


@pytest.mark.parametrize(
    ("ids", "message"),
    [([0, 7], r"line 3: itemID 7 is not an item of toy.inter"), ([1, 1], r"line 3: itemID 1 is listed twice")],
)
def test_partial_modality_bad_item_list_names_the_line(tmp_path, ids, message):
    folder = write_folder(tmp_path)
    write_partial_image(folder, ids, np.ones((2, 2), dtype=np.float32))
    with pytest.raises(GatedRecError, match=message):
        load_mmrec(folder, modalities={"visual": "partial.npy@partial_items.tsv"})


def test_scientific_full_images_cover_a_third_of_the_items(shared_data):
    dataset = load_mmrec(
        shared_data / "amazon-scientific-full", modalities={"visual": "image_feat.npy@image_items.tsv"}
    )
    assert dataset.n_items == 4385
    assert int(dataset.modalities["visual"].present.sum()) == 1585
