"""Embedders: masked mean pooling, padding side, static and LSA embedders, the disk cache."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch

from ternhd.pipeline.embed import (
    EmbeddingCache,
    HFEmbedder,
    LSAEmbedder,
    StaticEmbedder,
    embed_cached,
    make_embedder,
    masked_mean,
    texts_hash,
)

WORDS = "the a good bad movie film great awful plot acting was is not very fun dull".split()
TEXTS = ["the movie was good", "bad", "a very very dull film is not fun at all",
         "great acting", "the plot was awful and the acting was bad too", "fun"]


def _tokenizer(pad: bool):
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[EOS]"]
    vocab = {w: i for i, w in enumerate(specials + WORDS)}
    tok = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = Whitespace()
    kw = dict(tokenizer_object=tok, unk_token="[UNK]", eos_token="[EOS]")
    if pad:
        kw["pad_token"] = "[PAD]"
    return PreTrainedTokenizerFast(**kw)


def _bert():
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(WORDS) + 3, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=48, max_position_embeddings=64, pad_token_id=0)
    return BertModel(cfg).eval()


def _gpt2():
    from transformers import GPT2Config, GPT2Model

    torch.manual_seed(1)
    cfg = GPT2Config(vocab_size=len(WORDS) + 3, n_embd=32, n_layer=2, n_head=2, n_positions=64,
                     bos_token_id=2, eos_token_id=2)
    return GPT2Model(cfg).eval()


def _manual(model, tok, texts, layer=-1):
    """Each text alone (no padding at all): mean of the chosen hidden layer over its tokens."""
    out = []
    with torch.no_grad():
        for t in texts:
            enc = tok([t], return_tensors="pt")
            h = model(**enc, output_hidden_states=True).hidden_states[layer][0]
            out.append(h.mean(0).numpy())
    return np.stack(out)


@pytest.mark.parametrize("arch", ["bert", "gpt2"])
@pytest.mark.parametrize("side", ["right", "left"])
def test_masked_mean_matches_manual_and_padding_side(arch, side):
    model = _bert() if arch == "bert" else _gpt2()
    tok = _tokenizer(pad=(arch == "bert"))  # the GPT-2 tokenizer has no pad token: EOS is used
    tok.padding_side = side
    emb = HFEmbedder("tiny-" + arch, model=model, tokenizer=tok, batch_size=4, progress=False, device="cpu")
    got = emb.embed(TEXTS)
    assert got.dtype == np.float32 and got.shape == (len(TEXTS), 32)
    if arch == "gpt2":
        assert tok.pad_token == tok.eos_token
    np.testing.assert_allclose(got, _manual(model, tok, TEXTS), rtol=1e-4, atol=1e-5)


def test_layer_choice_and_identity():
    model, tok = _bert(), _tokenizer(True)
    e0 = HFEmbedder("tiny", model=model, tokenizer=tok, layer=1, progress=False, device="cpu")
    np.testing.assert_allclose(e0.embed(TEXTS[:3]), _manual(model, tok, TEXTS[:3], layer=1), rtol=1e-4, atol=1e-5)
    e1 = HFEmbedder("tiny", model=model, tokenizer=tok, layer=-1, progress=False, device="cpu")
    assert e0.identity != e1.identity


def test_masked_mean_ignores_nan_in_padding():
    h = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [float("nan"), 0.0]]])
    m = torch.tensor([[1, 1, 0]])
    np.testing.assert_allclose(masked_mean(h, m).numpy(), [[2.0, 3.0]])


def test_bad_arguments():
    with pytest.raises(ValueError, match="^pooling"):
        HFEmbedder("x", pooling="max")
    with pytest.raises(TypeError, match="^texts"):
        HFEmbedder("tiny", model=_bert(), tokenizer=_tokenizer(True), progress=False).embed("just a string")
    with pytest.raises(ValueError, match="^self"):
        LSAEmbedder(8).embed(["a"])
    with pytest.raises(ValueError, match="^spec"):
        make_embedder("")


def test_static_embedder_is_token_table_average():
    model, tok = _bert(), _tokenizer(True)
    emb = StaticEmbedder("tiny", model=model, tokenizer=tok)
    table = model.get_input_embeddings().weight.detach().numpy()
    got = emb.embed(["good movie", "bad"])
    ids = [tok("good movie", add_special_tokens=False)["input_ids"], tok("bad", add_special_tokens=False)["input_ids"]]
    np.testing.assert_allclose(got, np.stack([table[i].mean(0) for i in ids]), rtol=1e-6)


def test_lsa_fit_embed_and_identity():
    texts = [f"{a} {b} {c}" for a in WORDS[:6] for b in WORDS[6:12] for c in WORDS[12:]]
    e = LSAEmbedder(dim=8, seed=0).fit(texts)
    x = e.embed(texts[:10])
    assert x.shape == (10, 8) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-5)
    e2 = LSAEmbedder(dim=8, seed=0).fit(texts[:-1])
    assert e.identity != e2.identity


class _Counting:
    identity = "counting|v1"

    def __init__(self):
        self.calls = 0

    def embed(self, texts):
        self.calls += 1
        return np.array([[len(t), t.count("a")] for t in texts], dtype=np.float32)


def test_embedding_cache(tmp_path):
    cache = EmbeddingCache(tmp_path)
    e = _Counting()
    a = embed_cached(e, ["aa", "b"], cache)
    b = embed_cached(e, ["aa", "b"], cache)
    assert e.calls == 1
    np.testing.assert_array_equal(a, b)
    embed_cached(e, ["b", "aa"], cache)  # another order = another key
    assert e.calls == 2
    assert texts_hash(["ab", "c"]) != texts_hash(["a", "bc"])
    e.identity = "counting|v2"
    embed_cached(e, ["aa", "b"], cache)
    assert e.calls == 3


def test_packaged_minilm_offline():
    e = make_embedder("minilm", progress=False, device="cpu")
    x = e.embed(["a great movie", "a terrible movie", "stocks fell sharply on monday"])
    assert x.shape == (3, 384)
    c = x @ x.T / np.outer(np.linalg.norm(x, axis=1), np.linalg.norm(x, axis=1))
    assert c[0, 1] > c[0, 2]
