"""A numpy forward pass for BERT-family sentence encoders (MiniLM, mpnet-free BERT variants).

Why this exists: a search query is a handful of tokens, and at that size the transformers/torch stack
spends ~20 ms per query on Python overhead (mask building, module dispatch) for a 6-layer model that
needs well under 1 ms of arithmetic. The same weights evaluated with a few numpy matmuls encode a
query in ~2 ms on this 2-core CPU, which is what the end-to-end search budget needs. Results match
sentence-transformers to ~1e-6 (tested). Batch indexing of passages can use either path.

Only the standard BERT layout with absolute positions and mean/CLS pooling is supported; anything
else raises ValueError at load time so callers fall back to sentence-transformers.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["NumpyBert", "supports"]


def _gelu(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf  # scipy loads slowly: only when the numpy BERT runs

    out: np.ndarray = 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)).astype(x.dtype))
    return out


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    out: np.ndarray = (x - mu) / np.sqrt(var + eps) * w + b
    return out


def _read_json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    return data


def supports(model_dir: Path) -> bool:
    """True when ``model_dir`` is a BERT sentence-transformers directory this module can run."""
    cfg = _read_json(model_dir / "config.json")
    return (
        cfg.get("model_type") == "bert"
        and cfg.get("position_embedding_type", "absolute") == "absolute"
        and cfg.get("hidden_act") == "gelu"
        and (model_dir / "model.safetensors").is_file()
        and (model_dir / "tokenizer.json").is_file()
    )


class NumpyBert:
    def __init__(self, model_dir: str | Path, *, max_length: int | None = None) -> None:
        # safetensors and tokenizers load only when a BERT model directory is opened
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        d = Path(model_dir)
        if not supports(d):
            raise ValueError(f"{d} is not a BERT sentence-transformers directory with safetensors weights")
        cfg = _read_json(d / "config.json")
        st_cfg = _read_json(d / "sentence_bert_config.json")
        pool = _read_json(d / "1_Pooling" / "config.json")
        self.pooling = "cls" if pool.get("pooling_mode_cls_token") else "mean"
        self.heads = int(cfg["num_attention_heads"])
        self.eps = float(cfg.get("layer_norm_eps", 1e-12))
        self.max_length = int(max_length or st_cfg.get("max_seq_length") or 256)
        self.dim = int(cfg["hidden_size"])

        w = load_file(str(d / "model.safetensors"))
        prefix = "bert." if "bert.embeddings.word_embeddings.weight" in w else ""

        def g(name: str) -> np.ndarray:
            return np.ascontiguousarray(w[prefix + name], dtype=np.float32)

        self.word = g("embeddings.word_embeddings.weight")
        self.pos = g("embeddings.position_embeddings.weight")
        self.type0 = g("embeddings.token_type_embeddings.weight")[0]
        self.emb_ln = (g("embeddings.LayerNorm.weight"), g("embeddings.LayerNorm.bias"))
        self.layers = []
        for i in range(int(cfg["num_hidden_layers"])):
            p = f"encoder.layer.{i}."
            qkv_w = np.concatenate(
                [g(p + f"attention.self.{n}.weight") for n in ("query", "key", "value")], axis=0
            ).T.copy()
            qkv_b = np.concatenate([g(p + f"attention.self.{n}.bias") for n in ("query", "key", "value")])
            self.layers.append(
                (
                    qkv_w,
                    qkv_b,
                    g(p + "attention.output.dense.weight").T.copy(),
                    g(p + "attention.output.dense.bias"),
                    (g(p + "attention.output.LayerNorm.weight"), g(p + "attention.output.LayerNorm.bias")),
                    g(p + "intermediate.dense.weight").T.copy(),
                    g(p + "intermediate.dense.bias"),
                    g(p + "output.dense.weight").T.copy(),
                    g(p + "output.dense.bias"),
                    (g(p + "output.LayerNorm.weight"), g(p + "output.LayerNorm.bias")),
                )
            )
        self.tokenizer = Tokenizer.from_file(str(d / "tokenizer.json"))
        self.tokenizer.enable_truncation(self.max_length)
        self.tokenizer.no_padding()

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        n, t = ids.shape
        h = self.word[ids] + self.pos[:t][None, :, :] + self.type0
        h = _layer_norm(h, *self.emb_ln, self.eps)
        hd = self.dim // self.heads
        bias = ((1.0 - mask[:, None, None, :]) * -1e9).astype(np.float32)
        scale = np.float32(1.0 / np.sqrt(hd))
        for qkv_w, qkv_b, o_w, o_b, ln1, i_w, i_b, f_w, f_b, ln2 in self.layers:
            qkv = h @ qkv_w + qkv_b
            q, k, v = np.split(qkv, 3, axis=-1)
            q = q.reshape(n, t, self.heads, hd).transpose(0, 2, 1, 3)
            k = k.reshape(n, t, self.heads, hd).transpose(0, 2, 3, 1)
            v = v.reshape(n, t, self.heads, hd).transpose(0, 2, 1, 3)
            s = (q @ k) * scale + bias
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            ctx = (s @ v).transpose(0, 2, 1, 3).reshape(n, t, self.dim)
            h = _layer_norm(ctx @ o_w + o_b + h, *ln1, self.eps)
            ff = _gelu(h @ i_w + i_b) @ f_w + f_b
            h = _layer_norm(ff + h, *ln2, self.eps)
        if self.pooling == "cls":
            pooled = h[:, 0]
        else:
            m = mask[:, :, None]
            pooled = (h * m).sum(1) / np.maximum(m.sum(1), 1e-9)
        norm = np.linalg.norm(pooled, axis=1, keepdims=True)
        out: np.ndarray = (pooled / np.maximum(norm, 1e-12)).astype(np.float32)
        return out

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """L2-normalised sentence embeddings; batches are length-sorted to keep padding small."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        encs = self.tokenizer.encode_batch(list(texts))
        order = np.argsort([len(e.ids) for e in encs], kind="stable")
        out = np.empty((len(encs), self.dim), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            width = max(len(encs[i].ids) for i in idx)
            ids = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.float32)
            for row, i in enumerate(idx):
                e = encs[i].ids
                ids[row, : len(e)] = e
                mask[row, : len(e)] = 1.0
            out[idx] = self._forward(ids, mask)
        return out


class QuantizedBert:
    """The same BERT forward pass in torch with int8 dynamically quantised linear layers.

    For one short query the fp32 pass is bound by reading 42 MB of weights; int8 weights (per-channel
    scales) read a quarter of that and halve the query time on this CPU (~10 ms -> ~5 ms). Query
    vectors stay within cosine ~0.98 of fp32 and CrowdFlower NDCG@10 is unchanged (0.824 fp32 vs
    0.829 int8, dense only), so only queries use it; catalog vectors are always fp32.
    """

    def __init__(self, base: NumpyBert) -> None:
        import torch  # slow to load, and a build without its int8 engine falls back to fp32 numpy

        self._torch = torch
        self.dim = base.dim
        self.heads = base.heads
        self.eps = base.eps
        self.pooling = base.pooling
        self.tokenizer = base.tokenizer

        def t(x: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(x))

        def qlinear(w: np.ndarray, b: np.ndarray) -> torch.nn.Module:
            lin = torch.nn.Linear(w.shape[0], w.shape[1])
            lin.weight.data = t(w.T)
            lin.bias.data = t(b)
            lin.qconfig = torch.ao.quantization.per_channel_dynamic_qconfig  # type: ignore[assignment]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                q: torch.nn.Module = torch.ao.nn.quantized.dynamic.Linear.from_float(lin)  # type: ignore[no-untyped-call]  # torch leaves from_float unannotated
                return q

        def packed(w: np.ndarray, b: np.ndarray) -> Any:
            # the quantised weights as the int8 kernel takes them: calling the op directly skips the
            # module's Python (dispatch, checks) around each of the 24 matrix products of a query
            return qlinear(w, b)._packed_params._packed_params  # type: ignore[union-attr]

        self.word, self.pos, self.type0 = t(base.word), t(base.pos), t(base.type0)
        self.emb_ln = tuple(t(x) for x in base.emb_ln)
        self.layers = [
            (packed(qw, qb), packed(ow, ob), tuple(t(x) for x in ln1), packed(iw, ib), packed(fw, fb),
             tuple(t(x) for x in ln2))
            for qw, qb, ow, ob, ln1, iw, ib, fw, fb, ln2 in base.layers
        ]
        self._linear = torch.ops.quantized.linear_dynamic.default
        # the reduce_range argument the module's forward passes (True since its version 4)
        self._reduce = getattr(torch.ao.nn.quantized.dynamic.Linear, "_version", 4) >= 4

    def _one(self, ids: list[int]) -> np.ndarray:
        torch = self._torch
        F = torch.nn.functional
        lin, r = self._linear, self._reduce
        d, h_, hd = self.dim, self.heads, self.dim // self.heads
        with torch.inference_mode():
            x = torch.as_tensor(ids, dtype=torch.long)[None]
            n = x.shape[1]
            h = F.layer_norm(self.word[x] + self.pos[:n] + self.type0, (d,), *self.emb_ln, eps=self.eps)
            for qkv, out, ln1, inter, ffn, ln2 in self.layers:
                q, k, v = lin(h, qkv, r).view(1, n, 3, h_, hd).permute(2, 0, 3, 1, 4)
                ctx = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(1, n, d)
                h = F.layer_norm(lin(ctx, out, r) + h, (d,), *ln1, eps=self.eps)
                h = F.layer_norm(lin(F.gelu(lin(h, inter, r)), ffn, r) + h, (d,), *ln2, eps=self.eps)
            pooled = h[:, 0] if self.pooling == "cls" else h.mean(1)
            return F.normalize(pooled, dim=-1).numpy().astype(np.float32)  # type: ignore[no-any-return]

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.concatenate([self._one(e.ids) for e in self.tokenizer.encode_batch(list(texts))])
