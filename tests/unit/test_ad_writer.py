"""builtin:ad-writer: checked weights, a held-out split training never sees, and the quality it promises."""

from __future__ import annotations

import random
import shutil

import pytest
from safetensors import safe_open

from models import ad_writer
from models.ad_writer import data, evaluate
from models.ad_writer.tokenizer import EOS, IM_END, IM_START


@pytest.fixture(scope="module")
def writer():
    from models.text import load_text_model

    return load_text_model(ad_writer.NAME, "builtin")


def test_shipped_weights_are_small_fp16_and_match_their_checksums():
    ad_writer.verify()
    weights = ad_writer.WEIGHTS_DIR / "model.safetensors"
    assert weights.stat().st_size <= 12 * 1024 * 1024
    with safe_open(weights, "pt") as f:
        dtypes = {f.get_slice(name).get_dtype() for name in f.keys()}
    assert dtypes == {"F16"}


def test_a_changed_file_is_refused_at_load(tmp_path):
    copy = tmp_path / "weights"
    shutil.copytree(ad_writer.WEIGHTS_DIR, copy)
    blob = bytearray((copy / "model.safetensors").read_bytes())
    blob[-1] ^= 1
    (copy / "model.safetensors").write_bytes(bytes(blob))
    with pytest.raises(ad_writer.CorruptWeights, match="model.safetensors"):
        ad_writer.load(copy)
    shutil.copy(ad_writer.WEIGHTS_DIR / "model.safetensors", copy / "model.safetensors")
    ad_writer.verify(copy)
    (copy / "tokenizer.json").unlink()
    with pytest.raises(ad_writer.CorruptWeights, match="tokenizer.json is missing"):
        ad_writer.verify(copy)


def test_loads_in_fp32_with_its_own_chat_template_ending_on_im_end(writer):
    import torch

    from models.chat import chat_stops, has_own_template

    assert next(writer.model.parameters()).dtype == torch.float32
    assert has_own_template(writer.tokenizer) and chat_stops(writer.tokenizer) == ()
    assert writer.tokenizer.convert_tokens_to_ids(IM_END) in writer.end_ids
    assert writer.tokenizer.eos_token_id in writer.end_ids


def test_training_never_sees_a_held_out_combination():
    rng = random.Random(3)
    trained = {(r.lang, r.noun, frozenset(r.keywords)) for r, _, _ in
               (data._pair(rng, data.LANGS[i % 2], "train") for i in range(20_000))}
    held = [(r.lang, r.noun, frozenset(r.keywords)) for r, _, _ in data.held_out_requests(200)]
    assert len(held) == 200 and not trained & set(held)
    assert {lang for lang, _, _ in held} == {"en", "zh"}


def test_every_ad_names_its_product_and_keywords():
    rng = random.Random(5)
    for i in range(2000):
        req = data.draw_request(rng, data.LANGS[i % 2])
        ad = data.write_ad(rng, req)
        assert req.product in ad
        assert all(k.lower() in ad.lower() for k in req.keywords), (req, ad)
        assert req.product in data.render_request(rng, req)


def test_examples_train_only_the_answer():
    examples = data.training_examples(400, 1, EOS, IM_START, IM_END, ["An ad."])
    for ex in examples:
        trained = [text for text, on in ex.pieces if on]
        assert trained and all(text.endswith((EOS, IM_END)) for text in trained)
        assert not any(IM_START in text or "user\n" in text for text in trained)


def test_metrics_catch_what_they_measure():
    assert not evaluate.is_clean("bad \ufffd byte") and not evaluate.is_clean("bell \x07")
    assert evaluate.is_clean("\nThe Kestrel thermos: leak-proof. Order today.")
    assert evaluate.language("保温杯，防漏！USB-C") == "zh" and evaluate.language("The thermos 保温") == "en"
    assert evaluate.distinct_2(["a b c", "a b c"]) == pytest.approx(0.5)


@pytest.mark.parametrize("path", ["as-this-cpu-runs", "fp32"])
def test_held_out_quality_meets_its_targets(writer, path, request):
    """The issue's four figures on a sample of held-out requests (the README reports all 200), on
    this CPU's path (bf16 autocast for a call of 16 sequences where bf16 is native) and in fp32, as
    a CPU without native bf16 runs it."""
    if path == "fp32":
        request.getfixturevalue("pin_fp32")
    requests = data.held_out_requests(32)
    texts = evaluate.generate(writer, requests)
    n = len(texts)
    assert sum(map(evaluate.is_clean, texts)) / n >= evaluate.TARGETS["clean"], texts
    assert sum(evaluate.language(t) == r.lang for t, (r, _, _) in zip(texts, requests)) / n >= \
        evaluate.TARGETS["right_language"], texts
    assert sum(evaluate.on_topic(t, r) for t, (r, _, _) in zip(texts, requests)) / n >= \
        evaluate.TARGETS["on_topic"], texts
    assert evaluate.distinct_2(texts) >= evaluate.TARGETS["distinct_2"]
    seen = evaluate.training_ads()
    assert sum(t.strip() in seen for t in texts) / n <= evaluate.MAX_VERBATIM


def test_the_training_script_runs_end_to_end_and_repeats_itself(tmp_path):
    """A few steps on a small slice: the files pass the load-time check and load, and the same seed
    writes the same bytes again."""
    from models.ad_writer.train import train

    runs = [train(steps=3, seed=1, out=tmp_path / name, example_count=600, log_every=1) for name in ("a", "b")]
    ad_writer.verify(runs[0])
    model, tokenizer = ad_writer.load(runs[0])
    assert tokenizer.chat_template and model.config.n_layer >= 1
    assert (runs[0] / ad_writer.CHECKSUMS).read_text() == (runs[1] / ad_writer.CHECKSUMS).read_text()
