"""`shopbot intents parse|rebuild`: the maintainer's view of the packaged intent classifier."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from bot.cli.main import cli
from bot.dialogue.nlu.intents import IntentModel, default_model_path


def test_parse_prints_the_intent_and_slots_of_each_message_as_json_lines() -> None:
    runner = CliRunner()
    one = runner.invoke(cli, ["intents", "parse", "show", "me", "running", "shoes", "under", "80", "dollars"])
    assert one.exit_code == 0, one.output
    row = json.loads(one.stdout)
    assert (row["intent"], row["max_price"], row["source"] != "") == ("search", 80.0, True)

    # no TEXT: one line of output per line of standard input, in order
    many = runner.invoke(cli, ["intents", "parse"], input="how do I return shoes?\n转人工\n")
    assert many.exit_code == 0, many.output
    rows = [json.loads(line) for line in many.stdout.splitlines()]
    assert [r["text"] for r in rows] == ["how do I return shoes?", "转人工"]
    assert rows[1]["intent"] == "contact_human_agent"


def test_rebuild_trains_from_a_csv_and_writes_weights_that_load(tmp_path: Path) -> None:
    data = tmp_path / "intents.csv"
    data.write_text("utterance,intent\n"
                    + "".join(f"show me {w},search\nwhere is my order {n},order_status\n"
                              for n, w in enumerate(["shoes", "coats", "phones", "laptops", "bags", "hats"])),
                    encoding="utf-8")
    out = tmp_path / "model.npz"
    packaged = default_model_path().read_bytes()
    result = CliRunner().invoke(cli, ["intents", "rebuild", "--data", str(data), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("12 rows, 2 intents, version ") and result.stdout.strip().endswith(str(out))
    assert sorted(IntentModel.load(out).labels) == ["order_status", "search"]
    assert default_model_path().read_bytes() == packaged  # --out: the shipped weights are left alone


def test_rebuild_names_a_missing_file_in_one_sentence(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["intents", "rebuild", "--data", str(tmp_path / "nope.csv"),
                                      "--out", str(tmp_path / "m.npz")])
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and "nope.csv" in result.output and "Traceback" not in result.output
