"""End to end with the real Rasa: Rasa 3.6.21 (Python 3.10) trains docker/rasa/, talks to ``shopbot actions``
and holds a REST-channel conversation whose answers must be shopbot's.

    .venv/bin/python tests/e2e/rasa_e2e.py            # or: .venv/bin/python -m pytest -m e2e tests/e2e

Rasa 3.6 does not install on Python 3.11, so it gets its own virtual environment made with pyenv's 3.10.13
(``$(pyenv root)/versions/3.10.13/bin/python``; ``SHOPBOT_RASA_PYTHON`` overrides) under
``~/.cache/shopbot/rasa-3.6.21-py3.10`` (``SHOPBOT_RASA_VENV``), created and filled once (rasa==3.6.21 and
jieba for the example's Chinese tokenizer). The trained model and the action server's search index are
kept under ``~/.cache/shopbot/rasa-e2e`` too, so a second run skips training (Rasa sees nothing
changed) and indexing. Ports are free loopback ports; every process started here is stopped at the end.
Prints the time of each step; exits 1 with the servers' logs when an answer is wrong.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("SHOPBOT_RASA_CACHE", Path.home() / ".cache" / "shopbot"))
VENV = Path(os.environ.get("SHOPBOT_RASA_VENV", CACHE / "rasa-3.6.21-py3.10"))
WORK = CACHE / "rasa-e2e"
RASA_VERSION = "3.6.21"
TIMINGS: dict[str, float] = {}


def log(msg: str) -> None:
    print(f"[rasa-e2e {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def step(name: str, t0: float) -> None:
    TIMINGS[name] = round(time.monotonic() - t0, 1)
    log(f"{name}: {TIMINGS[name]} s")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def python310() -> str:
    if os.environ.get("SHOPBOT_RASA_PYTHON"):
        return os.environ["SHOPBOT_RASA_PYTHON"]
    root = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=True).stdout.strip()
    exe = Path(root) / "versions" / "3.10.13" / "bin" / "python"
    if not exe.exists():
        raise SystemExit(f"Python 3.10.13 is not installed under {exe.parent}; run `pyenv install 3.10.13` "
                         "or set SHOPBOT_RASA_PYTHON to a Python 3.10 interpreter.")
    return str(exe)


def ensure_rasa() -> Path:
    """The venv's rasa executable, installing Rasa 3.6.21 on first use."""
    rasa = VENV / "bin" / "rasa"
    try:
        out = subprocess.run([str(rasa), "--version"], capture_output=True, text=True, timeout=300).stdout
        if f"Rasa Version      :         {RASA_VERSION}" in out and (VENV / "bin" / "python").exists():
            ok = subprocess.run([str(VENV / "bin" / "python"), "-c", "import jieba"], capture_output=True).returncode == 0
            if ok:
                return rasa
    except (OSError, subprocess.TimeoutExpired):
        pass
    log(f"installing rasa=={RASA_VERSION} into {VENV} (once; a few minutes)")
    if not (VENV / "bin" / "python").exists():
        subprocess.run([python310(), "-m", "venv", str(VENV)], check=True)
    pip = [str(VENV / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "--upgrade", "pip<25"], check=True)
    subprocess.run([*pip, f"rasa=={RASA_VERSION}", "jieba==0.42.1"], check=True)
    return rasa


def rasa_env() -> dict[str, str]:
    env = dict(os.environ)
    # no telemetry or error reports to the internet (this machine has none); quieter TensorFlow
    env.update(RASA_TELEMETRY_ENABLED="false", TF_CPP_MIN_LOG_LEVEL="3", SQLALCHEMY_SILENCE_UBER_WARNING="1",
               PYTHONWARNINGS="ignore")
    env.pop("VIRTUAL_ENV", None)
    return env


def project(action_port: int) -> Path:
    """docker/rasa copied into the work dir, its endpoint pointed at this run's action server."""
    proj = WORK / "project"
    proj.mkdir(parents=True, exist_ok=True)
    src = ROOT / "docker" / "rasa"
    for f in ["domain.yml", "config.yml", "credentials.yml", "data/nlu.yml", "data/rules.yml", "data/stories.yml"]:
        (proj / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / f, proj / f)
    (proj / "endpoints.yml").write_text(f'action_endpoint:\n  url: "http://127.0.0.1:{action_port}/webhook"\n', encoding="utf-8")
    return proj


def wait_http(url: str, proc: subprocess.Popen[bytes], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{what} did not answer {url} within {timeout:.0f} s")


def post(url: str, body: dict[str, Any], timeout: float = 120) -> Any:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


class Chat:
    def __init__(self, url: str, sender: str) -> None:
        self.url, self.sender = url, sender
        self.last: list[dict[str, Any]] = []

    def say(self, text: str) -> str:
        t0 = time.monotonic()
        self.last = post(self.url, {"sender": self.sender, "message": text})
        out = "\n".join(m.get("text") or "" for m in self.last)
        log(f"> {text}  ({time.monotonic() - t0:.2f} s)\n" + "\n".join("    " + line for line in out.splitlines()[:8]))
        return out

    def button(self, title: str) -> dict[str, str]:
        return next(b for m in self.last for b in m.get("buttons") or [] if b["title"] == title)


def expect(cond: bool, what: str) -> None:
    if not cond:
        raise AssertionError(what)
    log(f"ok: {what}")


def converse(url: str) -> None:
    chat = Chat(url, f"e2e-{os.getpid()}")
    expect("shop assistant" in chat.say("hello"), "Rasa's own greeting (a rule, no action)")

    text = chat.say("show me red winter coats under $80")
    expect("products match" in text and "red" in text and "under 80" in text, "a search through action_search_products")
    expect(any(m.get("image") for m in chat.last) or all(" - $" in m.get("text", "") for m in chat.last[1:]),
           "one message per product (with its image when it has one)")
    prices = [float(x) for x in re.findall(r" - \$(\d+\.\d\d) - ", text)]
    expect(bool(prices) and max(prices) <= 80, f"every price within the budget: {prices}")

    text = chat.say("show me running shoes")
    head = text.splitlines()[0]
    prices = [float(x) for x in re.findall(r" - \$(\d+\.\d\d) - ", text)]
    expect(("products match" in head or "Best matches" in head) and "red" not in head and bool(prices),
           "a new search does not inherit the last one's filters (mirrored in Rasa's slots)")

    text = chat.say("something cheaper")
    cheaper = [float(x) for x in re.findall(r" - \$(\d+\.\d\d) - ", text)]
    expect(bool(cheaper) and max(cheaper) < min(prices), f"refined through action_refine_search: {cheaper} < {min(prices)}")

    details = chat.button("Details")
    text = chat.say(details["payload"])
    expect("In stock" in text or "Out of stock" in text, "the Details button (a payload Rasa parses itself) opens the product page")

    text = chat.say("how do I return shoes?")
    expect("30 days" in text and "Returns" in text, "a support question answered from the shop's policy")

    text = chat.say("我想买红色的外套")
    expect("找到" in text, "a Chinese search")

    text = chat.say("talk to a person")
    expect("colleague" in text, "handoff")
    expect(chat.say("hello? anyone?") == "", "the conversation is paused after the handoff")


def main() -> int:
    t_all = time.monotonic()
    WORK.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    rasa = ensure_rasa()
    step("rasa venv ready", t0)

    action_port, rasa_port = free_port(), free_port()
    proj = project(action_port)
    t0 = time.monotonic()
    train = subprocess.run([str(rasa), "train", "--fixed-model-name", "shopbot", "--out", "models"], cwd=proj,
                           env=rasa_env(), capture_output=True, text=True)
    if train.returncode != 0:
        print(train.stdout[-4000:], train.stderr[-4000:], file=sys.stderr)
        return 1
    step("rasa train", t0)

    logs = WORK / "logs"
    logs.mkdir(exist_ok=True)
    procs: list[subprocess.Popen[bytes]] = []
    shopbot = Path(sys.executable).with_name("shopbot")
    env = dict(os.environ, SHOPBOT_DATA_DIR=str(WORK / "data"), SHOPBOT_LLM="off")
    try:
        t0 = time.monotonic()
        with (logs / "actions.log").open("wb") as out:
            procs.append(subprocess.Popen([str(shopbot), "actions", "--port", str(action_port)], env=env,
                                          stdout=out, stderr=subprocess.STDOUT))
        with (logs / "rasa.log").open("wb") as out:
            procs.append(subprocess.Popen(
                [str(rasa), "run", "--port", str(rasa_port), "--interface", "127.0.0.1", "--model", "models/shopbot.tar.gz",
                 "--endpoints", "endpoints.yml", "--credentials", "credentials.yml"],
                cwd=proj, env=rasa_env(), stdout=out, stderr=subprocess.STDOUT))
        wait_http(f"http://127.0.0.1:{action_port}/health", procs[0], "shopbot actions", 900)
        step("action server up", t0)
        wait_http(f"http://127.0.0.1:{rasa_port}/", procs[1], "rasa run", 300)
        step("rasa server up", t0)
        t0 = time.monotonic()
        converse(f"http://127.0.0.1:{rasa_port}/webhooks/rest/webhook")
        step("conversation", t0)
    except (AssertionError, RuntimeError, OSError, StopIteration) as exc:
        log(f"FAILED: {type(exc).__name__}: {exc}")
        for name in ("actions.log", "rasa.log"):
            tail = (logs / name).read_text(encoding="utf-8", errors="replace")[-3000:]
            print(f"----- {name} (tail) -----\n{tail}", file=sys.stderr)
        return 1
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
    step("total", t_all)
    print(json.dumps({"rasa_e2e": "passed", "seconds": TIMINGS}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
