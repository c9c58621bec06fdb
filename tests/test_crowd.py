"""fairal.crowd: reading crowd answers, worker quality, aggregation, agreement, export."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa
from statsmodels.stats.proportion import proportion_confint

from fairal import crowd
from fairal.crowd import CrowdDataError, read_answers

LONG_CSV = b"item_id,worker_id,answer\n1,a,3\n1,b,4\n1,c,1\n2,a,2\n2,c,1\n3,b,4\n"
WIDE_CSV = (
    b"item_id,answer_1,worker_id_1,answer_2,worker_id_2,answer_3,worker_id_3\n"
    b"1,3,a,4,b,1,c\n2,2,a,1,c,,\n3,4,b,,,,\n"
)


def frame(rows, columns=("item_id", "worker_id", "answer")) -> pd.DataFrame:
    """A tidy answers frame from (item, worker, answer) rows, positions in row order."""
    answers = pd.DataFrame(rows, columns=list(columns)).astype({"item_id": str, "worker_id": str})
    return answers.assign(position=answers.groupby("item_id").cumcount())


# --- reading -----------------------------------------------------------------


def test_long_and_wide_files_give_the_same_answers():
    long = read_answers(LONG_CSV, scale="confidence4")
    wide = read_answers(WIDE_CSV, scale="confidence4")
    pd.testing.assert_frame_equal(long, wide)
    assert long["position"].tolist() == [0, 1, 2, 0, 1, 0]
    assert list(long.columns) == list(crowd.ANSWER_COLUMNS)


def test_to_wide_round_trips_through_csv():
    answers = read_answers(LONG_CSV, scale="confidence4")
    buffer = io.StringIO()
    crowd.export_table(crowd.to_wide(answers), buffer)
    again = read_answers(buffer.getvalue().encode(), scale="confidence4")
    pd.testing.assert_frame_equal(again, answers)


def test_columns_match_case_insensitively_with_bom_and_semicolons():
    text = "\ufeffTask;Annotator;Label\nx;w1;1\nx;w2;0\n".encode()
    answers = read_answers(text)
    assert answers[["item_id", "worker_id", "answer"]].values.tolist() == [["x", "w1", 1], ["x", "w2", 0]]


def test_explicit_column_names_and_file_like_and_path(tmp_path):
    text = "question,who,vote,note\nq1,ann,1,\nq1,bob,0,x\n"
    from_buffer = read_answers(io.StringIO(text), item_column="question", worker_column="who", answer_column="vote")
    path = tmp_path / "answers.csv"
    path.write_text(text)
    from_path = read_answers(path, item_column="question", worker_column="who", answer_column="vote")
    pd.testing.assert_frame_equal(from_buffer, from_path)
    assert from_path["worker_id"].tolist() == ["ann", "bob"]


def test_ids_are_read_verbatim_including_formula_like_strings():
    text = b'item_id,worker_id,answer\n"=SUM(A1)",@evil,1\n007,+1,0\n'
    answers = read_answers(text)
    assert answers["item_id"].tolist() == ["=SUM(A1)", "007"]
    assert answers["worker_id"].tolist() == ["@evil", "+1"]


HEADER = b"item_id,worker_id,answer\n"
MALFORMED = {
    "empty": (b"", {}, "is empty"),
    "blank lines": (b"\n  \n\n", {}, "is empty"),
    "xlsx": (b"PK\x03\x04\x14\x00\x06\x00", {}, "not a CSV text file"),
    "binary garbage": (b"item\x00\x01\x02\xff\xfe", {}, "looks binary (NUL byte at offset 4)"),
    "latin-1": (HEADER + b"1,Jos\xe9,1\n", {}, "not UTF-8 encoded: byte 0xe9 at offset 30 (line 2)"),
    "utf-16": ("item_id,worker_id,answer\n".encode("utf-16"), {}, "UTF-16"),
    "too large": (HEADER + b"1,a,1\n" * 10, {"max_bytes": 40}, "larger than max_bytes=40"),
    "jagged row": (HEADER + b"1,a,1,extra\n", {}, "not a well-formed CSV: line 2 has 4 fields"),
    "duplicate columns": (b"item_id,worker_id,answer,Answer\n1,a,1,1\n", {}, "duplicate column names"),
    "missing worker column": (b"item_id,answer\n1,1\n", {}, "missing worker column"),
    "missing named column": (HEADER + b"1,a,1\n", {"item_column": "case"}, "missing item column: expected 'case'"),
    "answer_k without worker_id_k": (b"item_id,answer_1,worker_id_1,answer_2\n1,1,a,0\n", {}, "answer_2 has no matching worker_id_2"),
    "worker_id_k without answer_k": (b"item_id,answer_1,worker_id_1,worker_id_2\n1,1,a,b\n", {}, "worker_id_2 has no matching answer_2"),
    "wide answer without worker": (b"item_id,answer_1,worker_id_1\n1,1,\n", {}, "line 2: answer_1 is filled but worker_id_1 is blank"),
    "wide worker without answer": (b"item_id,answer_1,worker_id_1\n1,,a\n", {}, "line 2: worker_id_1 is filled but answer_1 is blank"),
    "blank item id": (HEADER + b"1,a,1\n,b,1\n", {}, "blank item id on line 3"),
    "blank worker id": (HEADER + b"1, ,1\n", {}, "blank worker id on line 2"),
    "blank answer": (HEADER + b"1,a,\n", {}, "blank answer on line 2"),
    "non-integer word": (HEADER + b"1,a,yes\n", {}, "non-integer answers: 'yes' (line 2, answer)"),
    "non-integer fraction": (HEADER + b"1,a,2.5\n", {"scale": "confidence4"}, "non-integer answers: '2.5'"),
    "outside confidence4": (HEADER + b"1,a,5\n2,a,0\n", {"scale": "confidence4"}, "outside the confidence4 scale (1, 2, 3, 4): 5 (line 2, answer); 0 (line 3"),
    "outside binary": (HEADER + b"1,a,3\n", {}, "outside the binary scale (0, 1): 3 (line 2"),
    "same worker twice": (HEADER + b"1,a,1\n2,a,0\n1,a,0\n", {}, "worker 'a' answered item '1' more than once (lines 2, 4)"),
    "header only": (HEADER, {}, "has no answers"),
    "wide all blank": (b"item_id,answer_1,worker_id_1\n1,,\n2,,\n", {}, "has no answers"),
    "unknown scale": (HEADER + b"1,a,1\n", {"scale": "likert7"}, "scale must be one of 'binary', 'confidence4'"),
    "unknown format": (HEADER + b"1,a,1\n", {"format": "xml"}, "format must be 'auto', 'long' or 'wide'"),
    "answer column not in a wide file": (WIDE_CSV, {"answer_column": "x"}, "column worker_id_1 has no matching x_1 column"),
    "mapping with an unknown role": (LONG_CSV, {"columns": {"label": "answer"}}, "unknown keys ['label']"),
    "mapping and column arguments": (LONG_CSV, {"columns": {"item": "item_id"}, "item_column": "item_id"},
                                     "not both"),
}


@pytest.mark.parametrize("content, options, message", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_input_raises_a_named_error(content, options, message):
    with pytest.raises(CrowdDataError) as error:
        read_answers(content, **options)
    assert message in str(error.value)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(CrowdDataError, match="answers.csv not found"):
        read_answers(tmp_path / "answers.csv")


def _rows(n: int) -> bytes:
    return b"item_id,worker_id,answer\n" + b"".join(b"%d,w%d,1\n" % (i, i) for i in range(1, n))


def test_an_unbalanced_quote_is_reported_where_it_opens_not_as_a_blank_answer():
    # 12.13: a quote opened on line 121 used to swallow the rest of the file and read as "blank answer".
    content = _rows(120) + b'120,"w120,1\n121,w121,1\n122,w122,0\n'
    with pytest.raises(CrowdDataError) as error:
        read_answers(content, name="amt.csv")
    message = str(error.value)
    assert "blank answer" not in message
    assert message.startswith("amt.csv is not a well-formed CSV: a quoted field opened on line 121 is never closed")


def test_a_quoted_field_running_over_lines_is_refused():
    content = _rows(5) + b'5,"w5,1\n6,w6",1\n'
    with pytest.raises(CrowdDataError, match='opened on line 6 runs on to line 7 \\(an unbalanced " quote'):
        read_answers(content)


def test_messages_name_the_file_given_as_bytes():
    with pytest.raises(CrowdDataError, match="^answers-2024.csv: blank answer on line 2"):
        read_answers(b"item_id,worker_id,answer\n1,a,\n", name="answers-2024.csv")


FRTRAIN_WIDE = (b"example_idx,ans_1,worker_1,ans_2,worker_2\n"
                b"10,4,a,1,b\n11,2,b,,\n")


#: The header and first two rows of FR-Train's published AMT file (github.com/yuji-roh/fr-train,
#: crowdsourcing-data/AdultCensus_crowdsourcing_data.csv): features, true_label, ans_1..11, worker_id_1..11.
AMT_ADULT = (
    "example_idx,age,work_class,education,education_num,marital_status,occupation,role_in_family,capital_gain,"
    "work_hours_per_week,gender,race,true_label," + ",".join(f"ans_{k}" for k in range(1, 12)) + ","
    + ",".join(f"worker_id_{k}" for k in range(1, 12)) + "\n"
    "0,44,Self-employed (not inc.),High-school-grad,9,Civilian spouse,Sales,Wife,0,40,Female,White,1,"
    "1,3,2,3,1,1,1,1,4,1,2,worker_150,worker_96,worker_292,worker_208,worker_637,worker_611,worker_571,worker_346,"
    "worker_253,worker_640,worker_103\n"
    "1,49,Self-employed (not inc.),Bachelors,13,Civilian spouse,Sales,Husband,0,60,Male,White,1,"
    "4,4,3,3,3,3,1,2,4,3,3,worker_5,worker_294,worker_136,worker_80,worker_533,worker_224,worker_184,worker_444,"
    "worker_318,worker_272,worker_270\n"
).encode()


def test_the_frtrain_authors_amt_file_reads_without_editing():
    answers = read_answers(AMT_ADULT, scale="confidence4", name="AdultCensus_crowdsourcing_data.csv")
    assert len(answers) == 22 and set(answers["item_id"]) == {"0", "1"}
    first = answers[answers["item_id"] == "0"]
    assert first["answer"].tolist() == [1, 3, 2, 3, 1, 1, 1, 1, 4, 1, 2]
    assert first["worker_id"].iloc[0] == "worker_150" and first["position"].tolist() == list(range(11))
    assert crowd.mean_score(answers).loc["1", "label"] == 1  # mean 3.0 > 2.5; item 0's mean 1.82 is negative


def test_frtrain_style_wide_files_with_a_column_mapping():
    # 12.13: FR-Train's published files use example_idx and ans_k; both are read without editing.
    by_default = read_answers(FRTRAIN_WIDE, scale="confidence4")
    mapped = read_answers(FRTRAIN_WIDE, scale="confidence4", columns={"item": "example_idx", "answer": "ans",
                                                                      "worker": "worker"})
    pd.testing.assert_frame_equal(by_default, mapped)
    assert mapped[["item_id", "worker_id", "answer"]].values.tolist() == [["10", "a", 4], ["10", "b", 1],
                                                                       ["11", "b", 2]]
    renamed = FRTRAIN_WIDE.replace(b"ans_", b"rating_").replace(b"example_idx", b"row")
    again = read_answers(renamed, scale="confidence4", format="wide", columns={"item": "row", "answer": "rating"})
    pd.testing.assert_frame_equal(again, mapped)


# --- aggregation ---------------------------------------------------------------


def test_majority_vote_breaks_binary_ties_by_the_crowds_majority():
    answers = frame([("A", "w1", 1), ("A", "w2", 1), ("A", "w3", 0), ("B", "w1", 0), ("B", "w2", 0),
                     ("B", "w3", 1), ("C", "w1", 1), ("C", "w2", 0), ("D", "w1", 1), ("D", "w2", 1)])
    result = crowd.majority_vote(answers, scale="binary")  # 6 of 10 answers positive
    assert result["label"].to_dict() == {"A": 1, "B": 0, "C": 1, "D": 1}
    assert result["tied"].to_dict() == {"A": False, "B": False, "C": True, "D": False}
    assert result.loc["A", "confidence"] == pytest.approx(2 / 3)
    assert result["n_answers"].tolist() == [3, 3, 2, 2]


def test_majority_vote_on_confidence4_breaks_ties_by_the_mean():
    answers = frame([("A", "w1", 4), ("A", "w2", 4), ("A", "w3", 2), ("A", "w4", 1),
                     ("B", "w1", 3), ("B", "w2", 3), ("B", "w3", 1), ("B", "w4", 1)])
    result = crowd.majority_vote(answers, scale="confidence4")
    assert result["label"].to_dict() == {"A": 1, "B": 0}
    assert result["tied"].all()


def test_max_answers_keeps_the_first_answers_by_position():
    answers = frame([("A", "w1", 0), ("A", "w2", 1), ("A", "w3", 1)])
    assert crowd.majority_vote(answers, scale="binary", max_answers=1).loc["A", "label"] == 0
    assert crowd.majority_vote(answers, scale="binary").loc["A", "label"] == 1


def test_mean_score_is_the_papers_rule():
    answers = frame([("A", "w1", 4), ("A", "w2", 3), ("A", "w3", 1), ("B", "w1", 3), ("B", "w2", 2),
                     ("B", "w3", 2), ("C", "w1", 3), ("C", "w2", 2)])
    result = crowd.mean_score(answers)
    assert result["mean"].tolist() == pytest.approx([8 / 3, 7 / 3, 2.5])
    assert result["label"].to_dict() == {"A": 1, "B": 0, "C": 0}  # 2.5 is not above 2.5
    assert result["tied"].tolist() == [False, False, True]
    assert crowd.mean_score(answers, max_answers=1)["label"].tolist() == [1, 1, 1]


def test_mean_score_refuses_binary_answers():
    with pytest.raises(CrowdDataError, match="mean_score needs answers on the confidence4 scale"):
        crowd.mean_score(frame([("A", "w1", 1)]), scale="binary")


def test_dawid_skene_learns_to_invert_an_always_wrong_worker():
    rows = []
    for i in range(6):
        rows += [(f"i{i}", "a", i % 2), (f"i{i}", "b", i % 2), (f"i{i}", "x", 1 - i % 2)]
    answers = frame(rows + [("i6", "x", 1)])  # only x answered i6
    ds = crowd.dawid_skene(answers, scale="binary")
    assert crowd.majority_vote(answers, scale="binary").loc["i6", "label"] == 1
    assert ds.loc["i6", "label"] == 0
    assert ds.loc["i6", "posterior"] < 0.01
    assert ds["label"].iloc[:6].tolist() == [0, 1, 0, 1, 0, 1]


def test_dawid_skene_beats_majority_vote_with_few_good_and_many_random_workers():
    truth = pd.Series(np.random.default_rng(1).integers(0, 2, 300))
    answers = crowd.simulate_crowd(truth, n_workers=20, answers_per_item=9, scale="binary",
                                   worker_accuracy=[0.9] * 4 + [0.55] * 16, seed=0)
    result = crowd.compare_aggregations(answers, truth, scale="binary").set_index("method")
    margin = result.loc["dawid_skene", "accuracy"] - result.loc["majority_vote", "accuracy"]
    assert margin > 0.05  # measured 0.097 (seeds 0-7: 0.08-0.15)


def test_aggregate_dispatches_by_name_and_names_unknown_methods():
    answers = frame([("A", "w1", 1), ("A", "w2", 1)])
    assert crowd.aggregate(answers, "majority_vote", scale="binary").loc["A", "label"] == 1
    with pytest.raises(CrowdDataError, match="method must be one of majority_vote, mean_score, dawid_skene"):
        crowd.aggregate(answers, "median", scale="binary")


# --- worker quality ------------------------------------------------------------


def test_gold_accuracy_and_wilson_interval_match_statsmodels():
    answers = frame([("g1", "a", 4), ("g2", "a", 1), ("g3", "a", 3), ("g4", "a", 4), ("x", "a", 2),
                     ("g1", "b", 1), ("g2", "b", 4), ("g3", "b", 3), ("g4", "b", 3)])
    quality = crowd.gold_accuracy(answers, {"g1": 1, "g2": 0, "g3": 1, "g4": 0}, scale="confidence4")
    assert quality.loc["a"][["n_answers", "n_gold", "n_correct"]].tolist() == [5, 4, 3]
    assert quality.loc["b", "accuracy"] == 0.25
    low, high = proportion_confint(3, 4, alpha=0.05, method="wilson")
    assert quality.loc["a", ["ci_low", "ci_high"]].tolist() == pytest.approx([low, high])


def test_gold_ids_that_match_no_answer_are_an_error():
    with pytest.raises(CrowdDataError, match="none of the 1 gold items has an answer"):
        crowd.gold_accuracy(frame([("7", "a", 1)]), {"007": 1}, scale="binary")


@pytest.mark.parametrize(
    "gold, message",
    [({"g1": 2}, "gold labels must be 0 or 1, got 2 for item 'g1'"),
     (pd.Series([1, 0], index=["g1", "g1"]), "gold lists item 'g1' more than once"),
     ({}, "gold is empty")],
)
def test_bad_gold_labels_are_named(gold, message):
    with pytest.raises(CrowdDataError) as error:
        crowd.gold_accuracy(frame([("g1", "a", 1)]), gold, scale="binary")
    assert message in str(error.value)


def test_simulate_crowd_refuses_more_answers_than_workers():
    with pytest.raises(CrowdDataError, match="answers_per_item must be between 1 and n_workers=3"):
        crowd.simulate_crowd([0, 1], n_workers=3, answers_per_item=4, scale="binary", seed=0)


def test_exclusion_removes_a_planted_spammer():
    truth = pd.Series(np.random.default_rng(0).integers(0, 2, 40), index=[f"g{i}" for i in range(40)])
    answers, workers = crowd.simulate_crowd(truth, n_workers=10, answers_per_item=10, scale="confidence4",
                                            worker_accuracy=[0.9] * 10, spammer_share=0.1, seed=3,
                                            return_workers=True)
    quality = crowd.gold_accuracy(answers, truth, scale="confidence4")
    kept, excluded = crowd.exclude_workers(answers, quality, min_accuracy=0.75)
    assert excluded == workers.index[workers["spammer"]].tolist()
    assert not kept["worker_id"].isin(excluded).any() and len(kept) == 360


def test_upper_bound_rule_keeps_a_worker_with_one_miss_in_two():
    answers = frame([("g1", "a", 1), ("g2", "a", 0)])
    quality = crowd.gold_accuracy(answers, {"g1": 1, "g2": 1}, scale="binary")
    assert crowd.exclude_workers(answers, quality, min_accuracy=0.7, min_gold=2)[1] == []
    assert crowd.exclude_workers(answers, quality, min_accuracy=0.7, min_gold=2, rule="point")[1] == ["a"]


# --- agreement -----------------------------------------------------------------


def test_fleiss_kappa_matches_statsmodels():
    votes = np.array([[1, 1, 0], [0, 0, 0], [1, 1, 1], [0, 1, 0], [1, 0, 1]])
    answers = frame([(f"i{i}", f"w{j}", int(votes[i, j])) for i in range(5) for j in range(3)])
    expected = fleiss_kappa(aggregate_raters(votes, n_cat=2)[0])
    result = crowd.agreement(answers, scale="binary")
    assert result["fleiss_kappa"] == pytest.approx(expected)
    assert (result["fleiss_items"], result["fleiss_raters"]) == (5, 3)


def test_fleiss_uses_the_equal_count_block_that_keeps_most_answers():
    rows = [(f"i{i}", f"w{j}", (i + j) % 2) for i in range(3) for j in range(3)] + [("i3", "w0", 1), ("i3", "w1", 1)]
    result = crowd.agreement(frame(rows), scale="binary")
    assert (result["fleiss_items"], result["fleiss_raters"]) == (3, 3)  # 3 x 3 = 9 > 4 x 2 = 8


def test_krippendorff_alpha_is_one_for_perfect_agreement_with_missing_answers():
    answers = frame([("A", "w1", 4), ("A", "w2", 4), ("B", "w1", 1), ("B", "w3", 1), ("C", "w2", 2),
                     ("C", "w3", 2), ("C", "w1", 2), ("D", "w3", 3)])
    result = crowd.agreement(answers, scale="confidence4")
    assert result["krippendorff_alpha"] == pytest.approx(1.0)
    assert result["krippendorff_level"] == "ordinal"


def test_cohen_kappa_matches_sklearn():
    a = [1, 0, 1, 1, 0, 0, 1, 0]
    b = [1, 0, 0, 1, 0, 1, 1, 1]
    answers = frame([(f"i{i}", "a", x) for i, x in enumerate(a)] + [(f"i{i}", "b", x) for i, x in enumerate(b)]
                    + [("extra", "a", 1)])
    assert crowd.cohen_kappa(answers, "a", "b", scale="binary") == pytest.approx(cohen_kappa_score(a, b))
    assert crowd.agreement(answers, scale="binary", min_shared=8)["cohen_kappa_mean"] == pytest.approx(cohen_kappa_score(a, b))


def test_mean_pairwise_cohen_equals_a_loop_over_sklearn():
    answers = crowd.simulate_crowd([0, 1] * 30, n_workers=8, answers_per_item=4, scale="confidence4", seed=2)
    workers = sorted(answers["worker_id"].unique())
    kappas = []
    for i, a in enumerate(workers):
        for b in workers[i + 1:]:
            shared = set(answers.item_id[answers.worker_id == a]) & set(answers.item_id[answers.worker_id == b])
            if len(shared) >= 5:
                kappas.append(crowd.cohen_kappa(answers, a, b, scale="confidence4"))
    result = crowd.agreement(answers, scale="confidence4", min_shared=5)
    assert result["cohen_pairs"] == len(kappas) > 10
    assert result["cohen_kappa_mean"] == pytest.approx(np.nanmean(kappas))


# --- export --------------------------------------------------------------------

DANGEROUS = pd.DataFrame({"item_id": ["=SUM(A1)", "+1", "-2+3", "@x", "safe"], "score": [-2, 1, 0, 3, 4]})


def test_csv_export_neutralises_formulas_but_not_numbers():
    buffer = io.StringIO()
    crowd.export_table(DANGEROUS, buffer)
    lines = buffer.getvalue().splitlines()
    assert lines == ["item_id,score", "'=SUM(A1),-2", "'+1,1", "'-2+3,0", "'@x,3", "safe,4"]


def test_json_export_neutralises_formulas_but_not_numbers():
    buffer = io.StringIO()
    crowd.export_table(DANGEROUS, buffer, format="json")
    records = json.loads(buffer.getvalue())
    assert [r["item_id"] for r in records] == ["'=SUM(A1)", "'+1", "'-2+3", "'@x", "safe"]
    assert records[0]["score"] == -2


def test_csv_export_quotes_bare_carriage_returns_and_neutralises_the_next_line(tmp_path):
    # 12.14: "w\r=1+1" went out unquoted; a spreadsheet split the record and got a live =1+1 cell.
    table = pd.DataFrame({"worker_id": ["w\r=1+1", "a\n@b", "ok"], "n": [1, 2, 3]})
    path = tmp_path / "workers.csv"
    crowd.export_table(table, path)
    raw = path.read_bytes()
    assert raw == b'worker_id,n\n"w\r\'=1+1",1\n"a\n\'@b",2\nok,3\n'
    # Split at every CR or LF (what a careless importer does): no piece starts like a formula.
    pieces = raw.decode().replace("\r", "\n").split("\n")
    assert not [p for p in pieces if p.lstrip('"').startswith(("=", "+", "-", "@"))]
    # A CSV reader gets the cells back, each neutralised line intact.
    back = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert back["worker_id"].tolist() == ["w\r'=1+1", "a\n'@b", "ok"]


def test_export_writes_the_item_index_as_a_column(tmp_path):
    labels = crowd.majority_vote(frame([("=1", "w", 1)]), scale="binary")
    path = tmp_path / "labels.csv"
    crowd.export_table(labels, path)
    assert path.read_text().splitlines()[1].startswith("'=1,1,1,")


# --- simulation against real truth ----------------------------------------------


@pytest.fixture(scope="module")
def compas_sample():
    from fairal.datasets import load_compas

    data = load_compas()
    rows = np.random.default_rng(0).choice(len(data), size=400, replace=False)
    ids = data.ids[rows].astype(str)
    return pd.Series(data.y[rows], index=ids), pd.Series(data.group[rows], index=ids)


def test_simulate_crowd_is_reproducible_and_well_formed():
    truth = [1, 0, 1]
    first = crowd.simulate_crowd(truth, n_workers=5, answers_per_item=3, scale="confidence4", seed=7)
    again = crowd.simulate_crowd(truth, n_workers=5, answers_per_item=3, scale="confidence4", seed=7)
    pd.testing.assert_frame_equal(first, again)
    assert first["answer"].isin([1, 2, 3, 4]).all() and len(first) == 9
    assert not first.duplicated(["item_id", "worker_id"]).any()


def test_compare_aggregations_on_compas_reports_each_group(compas_sample):
    truth, groups = compas_sample
    answers = crowd.simulate_crowd(truth, n_workers=60, answers_per_item=11, scale="confidence4",
                                   worker_accuracy=(0.55, 0.75), spammer_share=0.15, seed=0)
    result = crowd.compare_aggregations(answers, truth, scale="confidence4", groups=groups,
                                        methods=["majority_vote", "mean_score"], max_answers=5)
    assert set(result["group"]) == {"(all)", "African-American", "Caucasian"}
    assert len(result) == 6 and result["accuracy"].between(0, 1).all()
    assert (result["coverage"] == 1).all()


def test_more_answers_per_item_make_mean_score_more_accurate(compas_sample):
    truth, _ = compas_sample
    answers = crowd.simulate_crowd(truth, n_workers=60, answers_per_item=11, scale="confidence4",
                                   worker_accuracy=(0.55, 0.75), spammer_share=0.15, seed=0)
    accuracy = {n: crowd.compare_aggregations(answers, truth, scale="confidence4", methods=["mean_score"],
                                              max_answers=n)["accuracy"].iloc[0] for n in (1, 5, 11)}
    assert accuracy[1] < accuracy[5] < accuracy[11]
