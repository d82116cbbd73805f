import numpy as np
import pandas as pd
import pytest
import yaml

from gatedrec.cli import main
from gatedrec.data import load_mmrec
from gatedrec.data.splitting import leave_one_out_split, temporal_split
from gatedrec.errors import GatedRecError
from gatedrec.features import encoders
from gatedrec.prepare.filtering import first_of_each_pair, k_core
from gatedrec.prepare.raw import LineProblems, json_records
from raw_samples import N_ITEMS, image_server, item_title, write_amazon_2014, write_amazon_2023, write_image_folder


def prepared(folder):
    return yaml.safe_load((folder / "dataset.yaml").read_text())["prepared"]


@pytest.fixture
def encode_calls(monkeypatch):
    """Counts the encoders' real work (not the cache's)."""
    calls = []
    original = encoders.Encoder.encode

    def counting(self, inputs, quiet=False):
        calls.append((self.kind, len(inputs)))
        return original(self, inputs, quiet)

    monkeypatch.setattr(encoders.Encoder, "encode", counting)
    return calls


def url_for(base):
    def url(item):
        if item == 10:
            return f"{base}/missing/B999.png"
        if item == 11:
            return f"{base}/flaky/B011.png"
        return f"{base}/img/B{item:03d}.png"
    return url


def test_prepare_amazon_2014_downloads_images_and_trains(tmp_path, capsys):
    with image_server() as (base, attempts):
        reviews, meta = write_amazon_2014(tmp_path, url_for(base))
        out = tmp_path / "prepared"
        code = main(["prepare", "amazon", "--reviews", str(reviews), "--meta", str(meta), "--download-images",
                     "--image-cache", str(tmp_path / "images"), "--download-retries", "1", "--out", str(out),
                     "--quiet"])
    assert code == 0
    summary = prepared(out)["summary"]
    reviews_problems = summary["malformed"][0]
    assert reviews_problems["malformed_lines"] == 2
    assert "line 3: neither a JSON object" in reviews_problems["first"][0]
    assert "line 7: no 'asin' field" in reviews_problems["first"][1]
    assert summary["images"]["failures"] == {"HTTP 404": 1}
    assert summary["images"]["downloaded"] == N_ITEMS - 1
    assert attempts["/flaky/B011.png"] == 2  # retried after a 503
    dataset = load_mmrec(out)
    assert dataset.n_items == N_ITEMS
    assert dataset.modalities["text"].present.all()
    visual = dataset.modalities["visual"]
    assert int(visual.present.sum()) == N_ITEMS - 1 and visual.dim == 1280
    raw_ids = pd.read_csv(out / "i_id_mapping.tsv", sep="\t")["raw_id"].tolist()
    assert not visual.present[raw_ids.index("B010")]
    texts = pd.read_csv(out / "item_text.tsv", sep="\t")
    assert texts.text[raw_ids.index("B004")].startswith(item_title(4))
    assert main(["train", "--data", str(out), "--epochs", "2", "--out", str(tmp_path / "run"), "--quiet"]) == 0


def test_prepare_2023_with_an_image_folder_reuses_cached_features(tmp_path, encode_calls):
    reviews, meta = write_amazon_2023(tmp_path)
    images = write_image_folder(tmp_path / "images", skip={3})
    arguments = ["prepare", "amazon", "--reviews", str(reviews), "--meta", str(meta), "--images-dir", str(images),
                 "--split", "temporal-8-1-1", "--out", str(tmp_path / "prepared"), "--quiet"]
    assert main(arguments) == 0
    assert sorted(kind for kind, _ in encode_calls) == ["image", "text"]
    description = prepared(tmp_path / "prepared")
    assert description["source"]["format"] == "2023"
    first_malformed = description["summary"]["malformed"][0]["first"][0]
    assert first_malformed.endswith("line 5: neither a JSON object nor a Python dict literal")
    dataset = load_mmrec(tmp_path / "prepared")
    raw_ids = pd.read_csv(tmp_path / "prepared" / "i_id_mapping.tsv", sep="\t")["raw_id"].tolist()
    assert not dataset.modalities["text"].present[raw_ids.index("B005")]  # no metadata, no text
    assert not dataset.modalities["visual"].present[raw_ids.index("B003")]  # no image file
    assert main(arguments) == 0
    assert len(encode_calls) == 2  # the second run encoded nothing


def test_generic_csv_and_parquet_inputs(tmp_path):
    rows = pd.DataFrame(
        [(f"u{user}", f"i{(user + step) % 8}", 1_000 + step) for user in range(30) for step in range(5)],
        columns=["customer", "product", "ts"],
    )
    rows.to_parquet(tmp_path / "orders.parquet")
    items = pd.DataFrame({"product": [f"i{k}" for k in range(8)], "name": [f"thing {k}" for k in range(8)],
                          "picture": [f"pics/B{k:03d}.png" for k in range(8)]})
    items.to_csv(tmp_path / "items.csv", index=False)
    write_image_folder(tmp_path / "pics")
    out = tmp_path / "prepared"
    assert main(["prepare", "generic", "--interactions", str(tmp_path / "orders.parquet"), "--items",
                 str(tmp_path / "items.csv"), "--user-col", "customer", "--item-col", "product", "--time-col", "ts",
                 "--item-id-col", "product", "--text-cols", "name", "--image-col", "picture",
                 "--split", "leave-one-out",
                 "--out", str(out), "--quiet"]) == 0
    dataset = load_mmrec(out)
    assert (dataset.n_users, dataset.n_items) == (30, 8)
    assert dataset.valid.nnz == 30 and dataset.test.nnz == 30
    assert dataset.modalities["visual"].present.all() and dataset.modalities["text"].present.all()


def test_generic_missing_column_is_named(tmp_path, capsys):
    pd.DataFrame({"user": ["a"], "thing": ["b"]}).to_csv(tmp_path / "x.csv", index=False)
    assert main(["prepare", "generic", "--interactions", str(tmp_path / "x.csv"), "--out", str(tmp_path / "o")]) == 2
    assert "x.csv: no column(s) item" in capsys.readouterr().err


def test_prepare_refuses_to_replace_a_foreign_folder(tmp_path, capsys):
    reviews, meta = write_amazon_2023(tmp_path)
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    assert main(["prepare", "amazon", "--reviews", str(reviews), "--out", str(out), "--quiet"]) == 2
    assert "not a folder written by 'gatedrec prepare'" in capsys.readouterr().err
    assert (out / "notes.txt").read_text() == "keep me"


def test_reviews_alone_give_a_collaborative_folder(tmp_path):
    reviews, _ = write_amazon_2023(tmp_path)
    assert main(["prepare", "amazon", "--reviews", str(reviews), "--out", str(tmp_path / "o"), "--quiet"]) == 0
    dataset = load_mmrec(tmp_path / "o")
    assert dataset.modalities == {} and prepared(tmp_path / "o")["summary"]["coverage"] == {"text": 0.0}
    assert main(["train", "--data", str(tmp_path / "o"), "--model", "lightgcn", "--epochs", "1",
                 "--out", str(tmp_path / "run"), "--quiet"]) == 0


def test_unknown_text_field_is_named(tmp_path, capsys):
    reviews, meta = write_amazon_2023(tmp_path)
    assert main(["prepare", "amazon", "--reviews", str(reviews), "--text-fields", "title,colour",
                 "--out", str(tmp_path / "o")]) == 2
    assert "--text-fields names colour" in capsys.readouterr().err


def test_too_strict_core_is_a_clear_error(tmp_path, capsys):
    reviews, _ = write_amazon_2023(tmp_path)
    arguments = ["prepare", "amazon", "--reviews", str(reviews), "--min-item", "500", "--out", str(tmp_path / "o")]
    assert main(arguments) == 2
    assert "lower --min-user / --min-item" in capsys.readouterr().err


def test_a_filter_that_keeps_little_is_warned_about_with_the_counts(tmp_path, caplog):
    reviews, _ = write_amazon_2023(tmp_path)
    assert main(["prepare", "amazon", "--reviews", str(reviews), "--min-user", "3", "--min-item", "3",
                 "--out", str(tmp_path / "o"), "--quiet"]) == 0
    warning = next(record.getMessage() for record in caplog.records if "the filters kept" in record.getMessage())
    assert "users" in warning and "lower --min-user 3 / --min-item 3 to keep more" in warning


def test_generic_given_amazon_reviews_points_to_prepare_amazon(tmp_path, capsys):
    reviews, _ = write_amazon_2023(tmp_path)
    assert main(["prepare", "generic", "--interactions", str(reviews), "--out", str(tmp_path / "o")]) == 2
    assert "JSON lines of Amazon reviews, not a table; read it with 'gatedrec prepare amazon" in \
        capsys.readouterr().err


def test_json_records_reads_python_literals_and_counts_bad_lines(tmp_path):
    path = tmp_path / "mixed.json"
    path.write_text('{"a": 1}\n\n{\'a\': 2}\n[1, 2]\n{oops\n')
    problems = LineProblems(path)
    assert [(line, record["a"]) for line, record in json_records(path, problems)] == [(1, 1), (3, 2)]
    assert problems.count == 2 and "line 4" in problems.examples[0] and "line 5" in problems.examples[1]


def test_k_core_is_iterative():
    # item 2 has one user; removing it leaves user 1 with one item, which must go too
    users = np.array([0, 0, 1, 1, 2, 2])
    items = np.array([0, 1, 0, 2, 0, 1])
    assert k_core(users, items, 2, 2).tolist() == [True, True, False, False, True, True]


def test_duplicates_keep_the_earliest():
    keep = first_of_each_pair(np.array([0, 0, 1]), np.array([4, 4, 4]), np.array([9.0, 3.0, 5.0]))
    assert keep.tolist() == [False, True, True]


def test_temporal_split_holds_out_the_latest():
    users = np.zeros(10, dtype=np.int64)
    times = np.arange(10, dtype=np.float64)
    labels = temporal_split(users, times, np.random.default_rng(0))
    assert labels.tolist() == [0] * 8 + [1, 2]


def test_leave_one_out_without_times_is_random_but_one_each():
    users = np.repeat(np.arange(4), 5)
    labels = leave_one_out_split(users, None, np.random.default_rng(0))
    for user in range(4):
        assert sorted(labels[users == user].tolist()) == [0, 0, 0, 1, 2]


def test_unknown_split_is_named(tmp_path):
    from gatedrec.prepare.pipeline import split_labels
    from gatedrec.prepare.filtering import KeptInteractions

    kept = KeptInteractions(np.zeros(3, dtype=np.int64), np.arange(3), np.zeros(3), np.array(["u"]),
                            np.array(["a", "b", "c"]))
    with pytest.raises(GatedRecError, match="--split 'random-7-2-1' is unknown"):
        split_labels(kept, "random-7-2-1", 0)
