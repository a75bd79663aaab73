"""``shopbot eval recommend`` on a tiny synthetic pair of files (item i is followed by item i + 1)."""

from __future__ import annotations

import json
import random
from pathlib import Path

from click.testing import CliRunner

from bot.cli.main import cli


def _files(tmp_path: Path, users: int = 80, items: int = 60, target_shift: int = 0) -> tuple[Path, Path]:
    rnd = random.Random(0)
    item = tmp_path / "toy.item"
    item.write_text("item_id:token\ttitle:token_seq\n" + "".join(f"i{i}\tItem {i}\n" for i in range(items)), encoding="utf-8")
    lines = ["user_id:token\titem_id_list:token_seq\titem_id:token\n"]
    for u in range(users):
        start, length = rnd.randrange(items), rnd.randint(3, 6)
        seq = [f"i{(start + j) % items}" for j in range(length)]
        target = f"i{(start + length - 1 + target_shift) % items}"  # shifted: another next item, same history
        lines.append(f"u{u}\t{' '.join(seq[:-1])}\t{target}\n")
    inter = tmp_path / "toy.inter"
    inter.write_text("".join(lines), encoding="utf-8")
    return item, inter


def _run(tmp_path: Path, *args: str, target_shift: int = 0) -> tuple[int, str]:
    item, inter = _files(tmp_path, target_shift=target_shift)
    result = CliRunner().invoke(cli, ["--data-dir", str(tmp_path / "data"), "eval", "recommend", "--items", str(item),
                                      "--interactions", str(inter), "--json", *args])
    return result.exit_code, result.output


def test_baselines_only_print_one_json_object_last(tmp_path: Path) -> None:
    code, out = _run(tmp_path, "--epochs", "0")
    assert code == 0, out
    report = json.loads(out.strip().splitlines()[-1])
    assert report["n"] == 80 and report["candidates"] == 20
    for key in ("ndcg@10", "recall@10", "full_recall@10", "popularity_ndcg@10", "cooccurrence_ndcg@10"):
        assert 0.0 <= report[key] <= 1.0
    # the next item always co-occurs with the last one in other users' histories
    assert report["cooccurrence_ndcg@10"] > 0.8 > report["popularity_ndcg@10"]


def test_the_sequential_model_trains_and_limit_applies(tmp_path: Path) -> None:
    code, out = _run(tmp_path, "--epochs", "2", "--limit", "40", "--device", "cpu", "--save", str(tmp_path / "m"))
    assert code == 0, out
    report = json.loads(out.strip().splitlines()[-1])
    assert report["n"] == 40 and report["model"].startswith("sasrec") and 0.0 <= report["ndcg@10"] <= 1.0
    assert (tmp_path / "m" / "manifest.json").is_file()
    # --epochs fixes the count: every history trains, nothing is held back, no early stopping
    assert report["epochs_chosen"] == [2] and report["runs"][0]["early_stopping"] is False
    assert report["runs"][0]["validation_users"] == 0 and report["runs"][0]["validation_ndcg@10"] == []


def test_epochs_are_chosen_on_the_histories_and_never_on_the_targets_scored(tmp_path: Path) -> None:
    code, out = _run(tmp_path, "--device", "cpu")
    assert code == 0, out
    report = json.loads(out.strip().splitlines()[-1])
    [run] = report["runs"]
    assert run["early_stopping"] is True and run["validation_users"] == 50  # the floor: 10% of 80 is too few
    assert report["epochs_chosen"] == [run["epochs_chosen"]] and 1 <= run["epochs_chosen"] <= run["epochs_run"]
    assert run["epochs_run"] == len(run["validation_ndcg@10"]) and "patience" in report["model"]
    best = max(run["validation_ndcg@10"])
    assert run["validation_ndcg@10"][run["epochs_chosen"] - 1] == best  # the first epoch with the best figure
    assert run["validation_ndcg@10"].index(best) == run["epochs_chosen"] - 1
    assert "epochs (early stopping)" in out
    # other next items to score, the same histories: the same epochs and curve, another figure
    code, moved = _run(tmp_path, "--device", "cpu", target_shift=7)
    assert code == 0, moved
    again = json.loads(moved.strip().splitlines()[-1])
    assert again["epochs_chosen"] == report["epochs_chosen"]
    assert again["runs"][0]["validation_ndcg@10"] == run["validation_ndcg@10"]
    assert again["ndcg@10"] < report["ndcg@10"]


def test_seeds_report_the_mean_and_the_spread(tmp_path: Path) -> None:
    code, out = _run(tmp_path, "--epochs", "1", "--seeds", "2", "--limit", "40", "--device", "cpu")
    assert code == 0, out
    report = json.loads(out.strip().splitlines()[-1])
    assert [r["model_seed"] for r in report["runs"]] == [0, 1] and report["seeds"] == 2
    values = [r["ndcg@10"] for r in report["runs"]]
    assert report["ndcg@10"] == round(sum(values) / 2, 4) or abs(report["ndcg@10"] - sum(values) / 2) < 1e-4
    assert report["ndcg@10_min"] == min(values) and report["ndcg@10_max"] == max(values) and report["ndcg@10_sd"] >= 0
    assert "mean of 2 seeds" in out


def test_a_missing_file_is_one_sentence(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["eval", "recommend", "--items", str(tmp_path / "no.item"),
                                      "--interactions", str(tmp_path / "no.inter")])
    assert result.exit_code != 0 and "does not exist" in result.output and "Traceback" not in result.output
