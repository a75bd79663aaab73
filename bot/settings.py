"""The single source of configuration: environment variables with the prefix ``SHOPBOT_``.

``retrieval`` and ``model`` never read settings themselves; the adapters (cli, telegram, actions)
build one Settings and pass plain values down, so every library function is testable with explicit
arguments.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["Settings", "default_data_dir"]


def default_data_dir() -> Path:
    return Path.home() / ".shopbot"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SHOPBOT_", env_file=None, extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir, description="Indexes, database and caches live here.")
    catalog: Path | None = Field(default=None, description="Catalog CSV/JSONL; the bundled demo catalog when unset.")
    encoder: str = Field(default="minilm", description="Dense encoder for English queries (name or model dir).")
    multilingual_encoder: str = Field(
        default="use-multilingual", description="Dense encoder for non-English (Chinese) queries; '' disables it."
    )
    index_type: Literal["auto", "flat", "ivf", "hnsw"] = Field(
        default="auto", description="'flat' (exact), 'ivf' or 'hnsw'; 'auto' is exact below approx_threshold products, IVF above."
    )
    approx_threshold: int = Field(default=20_000, description="Above this many products the index is approximate.")
    device: str | None = Field(default=None, description="The one GPU switch: auto (default), cpu, cuda or cuda:N; puts the encoders, the FAISS index (with faiss-gpu) and the local LLM on that device.")
    use_gpu_index: bool | None = Field(default=None, description="FAISS on GPU; auto-detected when unset.")
    query_cache_size: int = Field(default=4096, description="Entries in the LRU cache of query vectors (0 turns it off).")
    query_threads: int = Field(default=1, description="Threads per query; concurrency comes from parallel requests.")
    body_view: bool = Field(default=True, description="Also index title+description vectors (slower indexing).")
    on_bad_row: Literal["skip", "raise"] = Field(
        default="skip", description="A bad catalog row: 'skip' it (reported by line) or 'raise' (reject the load; the current index stays)."
    )
    page_size: int = Field(default=5, description="Products per page of results in a chat.")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; a SQLite file in the data dir when unset (postgresql+psycopg://... for scale-out)."
    )
    policy: Path | None = Field(default=None, description="Policy document (Markdown, text, HTML or a Q/A FAQ page) or a directory of them; the demo policy when unset.")
    intent_model: Path | None = Field(default=None, description="Intent classifier file; the packaged one when unset.")
    llm: Literal["auto", "off"] = Field(
        default="auto", description="'off': templates only, no language model is loaded (replies stay correct, just plainer)."
    )
    llm_url: str | None = Field(
        default=None, description="OpenAI-compatible server (vLLM), e.g. http://vllm:8000/v1; the local model when unset."
    )
    llm_model: str | None = Field(
        default=None,
        description="With llm_url: the served model's name (the server's first when unset); without: a local transformers model dir (the packaged model when unset).",
    )
    llm_dtype: Literal["auto", "float32", "bfloat16", "int8"] = Field(
        default="auto",
        description="Precision of the local model: auto (bf16 on CUDA; on a CPU int8 for the packaged model, fp32 or bf16 where faster for others), or float32, bfloat16, int8 (CPU only).",
    )
    llm_api_key: str | None = Field(default=None, description="Bearer token for llm_url, if the server wants one.")
    llm_search_summary: bool = Field(
        default=True, description="After search results, a closing line from the model (the cards never wait for it)."
    )
    llm_advice: Literal["auto", "on", "off"] = Field(
        default="auto", description="The model's own words about the products on screen: an answer about one product "
        "that its record does not settle, a sentence after the catalog's picks, general buying advice; auto: only from "
        "a served model (llm_url), since the packaged one wrote none worth sending (code answers from the records)."
    )
    llm_timeout: float = Field(
        default=10.0, gt=0, description="Seconds a reply may wait for the language model before the template answers instead."
    )
    # Telegram (bot/channels/telegram/bot.py)
    telegram_token: SecretStr | None = Field(default=None, description="The bot token from @BotFather.")
    telegram_api_url: str = Field(
        default="https://api.telegram.org/bot",
        description="Bot API base URL in python-telegram-bot's form (the token is appended), e.g. http://127.0.0.1:8081/bot for a self-hosted telegram-bot-api server.",
    )
    telegram_admins: Annotated[list[int], NoDecode] = Field(
        default_factory=list, description="Telegram user ids allowed to run /stats, /reindex, /models and /handoffs (comma-separated)."
    )
    telegram_webhook_secret: SecretStr | None = Field(
        default=None, description="Secret token Telegram sends with every webhook request; derived from the bot token when unset."
    )
    telegram_max_rate: float = Field(
        default=30.0, ge=0, description="Messages per second the bot sends across all chats (Telegram's limit); 0: no limit, 429s are still honoured."
    )
    telegram_edit_interval: float = Field(
        default=1.0, ge=0, description="Seconds between edits of a message the language model is still writing."
    )
    # Watchlists (bot/dialogue/watch.py, bot/watch.py)
    watch_days: float = Field(
        default=30.0, gt=0, description="Days a shopper's watchlist request stays active; an expired one is no longer "
        "re-run after a reindex, is listed as expired, then pruned."
    )
    watch_limit: int = Field(
        default=10, ge=1, description="Active watchlist requests one shopper may hold; one more is refused politely."
    )
    # Rasa (bot/channels/rasa/)
    rasa_url: str | None = Field(
        default=None, description="Base URL of the Rasa server's HTTP API (e.g. http://rasa:5005): watchlist notices "
        "go out as the intent shopbot_watch_found through POST /conversations/{sender}/trigger_intent; unset, they "
        "wait for the shopper's next turn."
    )
    rasa_intents: str = Field(
        default="", description="The shop's own Rasa intent names mapped to what shopbot does "
        "('more_please=more, returns_question=policy'; docs/rasa.md lists the targets); other names shopbot "
        "does not know are read by its own NLU."
    )
    exchange_rates: Annotated[dict[str, float], NoDecode] = Field(
        default_factory=dict, description="US dollars per unit of a currency, for budgets in another currency than "
        "the catalog's ('CNY=0.14,EUR=1.08'); approximate defaults for USD, CNY, EUR and GBP otherwise."
    )
    reload_seconds: float = Field(
        default=60.0, ge=0, description="How often a running bot or action server looks for a newly published index, "
        "recommender or intents version and serves it; 0: only at start."
    )

    # the shop owner's console (bot/console/, docs/console.md)
    console_password: SecretStr | None = Field(
        default=None, description="Password of `shopbot console` (the owner's web pages); the console refuses to start "
        "without one. Use a long random string: anyone who has it can reply to shoppers and swap the index or models."
    )
    console_session_hours: float = Field(
        default=12.0, gt=0, le=24 * 30, description="Hours a console login lasts; the signed session cookie expires "
        "after this and the owner logs in again."
    )
    console_upload_mb: float = Field(
        default=50.0, gt=0, description="Largest catalog file the console accepts in one upload, in MiB; a larger "
        "one is refused before it is read (`shopbot reindex` on the server has no such limit)."
    )

    # scale-out and operations (docs/scale-out.md, docs/operations.md)
    broker_url: str = Field(
        default="redis://127.0.0.1:6379/0", description="Redis server whose Streams carry Telegram updates from "
        "`shopbot receiver` to `shopbot worker` (webhook mode with several workers); polling needs none."
    )
    queue_shards: int = Field(
        default=16, ge=1, le=1024, description="Streams the updates are spread over by chat: one chat's messages stay "
        "in order on one shard, different shards are handled by different workers at once. Set it once, before the "
        "first update; every receiver and worker must agree."
    )
    queue_lease_seconds: float = Field(
        default=5.0, gt=0, description="A worker holds each shard it serves for this long between renewals; a worker "
        "that dies loses its shards after this time and another worker takes over its unacknowledged updates."
    )
    metrics_port: int | None = Field(
        default=None, ge=0, le=65535, description="Port of /healthz, /readyz and Prometheus /metrics for a command "
        "that has no HTTP port of its own (`shopbot telegram` by polling, `shopbot worker`); off when unset."
    )
    log_format: Literal["text", "json"] = Field(
        default="text", description="'json': one JSON object per log line with a turn id that follows a message from "
        "receiver to worker (no tokens, secrets or message text at INFO); 'text' for a terminal."
    )
    redact_pii: bool = Field(
        default=True, description="Replace e-mail addresses, phone numbers, payment card numbers and street addresses "
        "that shoppers write by tags ([EMAIL], [PHONE], [CARD], [ADDRESS]) in log lines and in `shopbot feedback "
        "export`. The owner's console still shows conversations as written."
    )
    retention_days: int | None = Field(
        default=None, ge=1, description="Delete conversations older than this many days (turns with the products they "
        "showed and their feedback, released handoffs, handled updates, long-expired watches, and the state of "
        "shoppers idle that long), once a day in the long-running commands and with `shopbot prune`; off when unset."
    )

    @field_validator("device", mode="before")
    @classmethod
    def _device(cls, value: object) -> object:
        # the one GPU switch (encoders, FAISS index, local LLM): 'auto' or unset decides at run time
        if isinstance(value, str):
            value = value.strip().lower()
            if value in {"", "auto"}:
                return None
            if not re.fullmatch(r"cpu|cuda(:\d+)?", value):
                raise ValueError(f"SHOPBOT_DEVICE={value!r} is not auto, cpu, cuda or cuda:N")
        return value

    @field_validator("exchange_rates", mode="before")
    @classmethod
    def _rates(cls, value: object) -> object:
        if isinstance(value, str):  # "CNY=0.14, EUR=1.08"
            return {k.strip().upper(): float(v) for k, v in re.findall(r"([A-Za-z]{3})\s*[=:]\s*([0-9.]+)", value)}
        return value

    @field_validator("telegram_admins", mode="before")
    @classmethod
    def _ids(cls, value: object) -> object:
        if isinstance(value, str):  # "123, 456" or "[123, 456]"
            return [int(x) for x in re.findall(r"-?\d+", value)]
        return value

    @property
    def index_root(self) -> Path:
        return self.data_dir / "index"

    @property
    def models_dir(self) -> Path:
        """Trained model versions (model/training/registry.py): one folder per kind, an ACTIVE pointer each."""
        return self.data_dir / "models"

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'shopbot.db'}"

    @property
    def buffer_dir(self) -> Path:
        """Rows the database could not take (it was down) wait here until it is back."""
        return self.data_dir / "buffer"
