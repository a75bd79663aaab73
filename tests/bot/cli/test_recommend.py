"""``shopbot eval recommend`` on a tiny synthetic pair of files (item i is followed by item i + 1)."""

from __future__ import annotations

import json
import random
from pathlib import Path

from click.testing import CliRunner

from bot.cli.main import cli


def _files(tmp_path: Path, users: int = 80, items: int = 60) -> tuple[Path, Path]:
    rnd = random.Random(0)
    item = tmp_path / "toy.item"
    item.write_text("item_id:token\ttitle:token_seq\n" + "".join(f"i{i}\tItem {i}\n" for i in range(items)), encoding="utf-8")
    lines = ["user_id:token\titem_id_list:token_seq\titem_id:token\n"]
    for u in range(users):
        start, length = rnd.randrange(items), rnd.randint(3, 6)
        seq = [f"i{(start + j) % items}" for j in range(length)]
        lines.append(f"u{u}\t{' '.join(seq[:-1])}\t{seq[-1]}\n")
    inter = tmp_path / "toy.inter"
    inter.write_text("".join(lines), encoding="utf-8")
    return item, inter


def _run(tmp_path: Path, *args: str) -> tuple[int, str]:
    item, inter = _files(tmp_path)
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


def test_a_missing_file_is_one_sentence(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["eval", "recommend", "--items", str(tmp_path / "no.item"),
                                      "--interactions", str(tmp_path / "no.inter")])
    assert result.exit_code != 0 and "does not exist" in result.output and "Traceback" not in result.output
