"""Input schemas: defaults, type checks, bounds and unknown fields, each error naming its param."""

from __future__ import annotations

import pytest

from core.errors import InvalidInput
from core.schemas import job_create, text_generate_input

BASE = {"model": "builtin:tiny-gpt2", "prompt": "Once upon a time"}


def test_defaults_are_filled_in(settings):
    clean = text_generate_input(dict(BASE), settings)
    assert clean == {
        "model": "builtin:tiny-gpt2", "prompt": "Once upon a time", "max_new_tokens": 64,
        "temperature": 1.0, "top_p": 1.0, "top_k": 0, "n": 1, "seed": None, "stop": [], "stream": False,
    }


def test_explicit_values_are_kept(settings):
    clean = text_generate_input(dict(BASE, max_new_tokens=5, temperature=0, top_p=0.5, top_k=40,
                                     n=3, seed=7, stop=["\n", "END"]), settings)
    assert clean["max_new_tokens"] == 5 and clean["n"] == 3 and clean["seed"] == 7
    assert clean["temperature"] == 0.0 and isinstance(clean["temperature"], float)
    assert clean["top_p"] == 0.5 and clean["top_k"] == 40
    assert clean["stop"] == ["\n", "END"]


def test_null_optional_fields_take_their_defaults(settings):
    clean = text_generate_input(dict(BASE, max_new_tokens=None, seed=None, stop=None), settings)
    assert clean["max_new_tokens"] == 64 and clean["seed"] is None and clean["stop"] == []


def test_stop_as_a_string_becomes_a_list(settings):
    assert text_generate_input(dict(BASE, stop="###"), settings)["stop"] == ["###"]


@pytest.mark.parametrize("changes, param", [
    ({"model": None}, "input.model"),
    ({"model": ""}, "input.model"),
    ({"model": "no-such-model"}, "input.model"),
    ({"model": "../etc/passwd"}, "input.model"),
    ({"prompt": ""}, "input.prompt"),
    ({"prompt": 42}, "input.prompt"),
    ({"prompt": None}, "input.prompt"),
    ({"prompt": "x" * 201}, "input.prompt"),
    ({"max_new_tokens": 0}, "input.max_new_tokens"),
    ({"max_new_tokens": 101}, "input.max_new_tokens"),
    ({"max_new_tokens": 1.5}, "input.max_new_tokens"),
    ({"max_new_tokens": "10"}, "input.max_new_tokens"),
    ({"max_new_tokens": True}, "input.max_new_tokens"),
    ({"n": True}, "input.n"),
    ({"n": 0}, "input.n"),
    ({"n": 4}, "input.n"),
    ({"top_k": -1}, "input.top_k"),
    ({"top_k": False}, "input.top_k"),
    ({"seed": -1}, "input.seed"),
    ({"seed": 2**32}, "input.seed"),
    ({"seed": "1"}, "input.seed"),
    ({"temperature": -0.1}, "input.temperature"),
    ({"temperature": 2.5}, "input.temperature"),
    ({"temperature": True}, "input.temperature"),
    ({"temperature": float("nan")}, "input.temperature"),
    ({"temperature": "hot"}, "input.temperature"),
    ({"top_p": 0}, "input.top_p"),
    ({"top_p": 1.01}, "input.top_p"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "input.stop"),
    ({"stop": 5}, "input.stop"),
    ({"stop": {"a": 1}}, "input.stop"),
    ({"stop": ["ok", 3]}, "input.stop[1]"),
    ({"stop": ["x" * 65]}, "input.stop[0]"),
    ({"stop": [""]}, "input.stop[0]"),
    ({"colour": "red"}, "input.colour"),
])
def test_invalid_input_names_the_param(make_settings, changes, param):
    settings = make_settings(AIGC_MAX_NEW_TOKENS="100", AIGC_MAX_CHOICES="3", AIGC_MAX_PROMPT_CHARS="200")
    with pytest.raises(InvalidInput) as exc:
        text_generate_input(dict(BASE, **changes), settings)
    assert exc.value.param == param
    assert exc.value.status == 400 and exc.value.message


@pytest.mark.parametrize("missing", ["model", "prompt"])
def test_required_fields(settings, missing):
    data = dict(BASE)
    del data[missing]
    with pytest.raises(InvalidInput) as exc:
        text_generate_input(data, settings)
    assert exc.value.param == f"input.{missing}"
    assert "required" in exc.value.message


def test_bounds_follow_the_settings(make_settings):
    settings = make_settings(AIGC_MAX_NEW_TOKENS="100", AIGC_MAX_CHOICES="3")
    clean = text_generate_input(dict(BASE, max_new_tokens=100, n=3), settings)
    assert clean["max_new_tokens"] == 100 and clean["n"] == 3


def test_default_max_new_tokens_respects_a_lower_configured_bound(make_settings):
    settings = make_settings(AIGC_MAX_NEW_TOKENS="16")
    clean = text_generate_input(dict(BASE), settings)
    assert clean["max_new_tokens"] <= settings.max_new_tokens


def test_input_must_be_an_object(settings):
    with pytest.raises(InvalidInput) as exc:
        text_generate_input(["not", "an", "object"], settings)
    assert exc.value.param == "input"


# -- the whole POST /v1/jobs body ---------------------------------------------------------------

def test_job_create_returns_clean_kind_input_and_metadata(settings):
    clean = job_create({"kind": "text.generate", "input": dict(BASE), "metadata": {"a": "b"}}, settings)
    assert clean["kind"] == "text.generate"
    assert clean["input"]["max_new_tokens"] == 64
    assert clean["metadata"] == {"a": "b"}
    assert job_create({"kind": "text.generate", "input": dict(BASE)}, settings)["metadata"] == {}


@pytest.mark.parametrize("body, param", [
    ({"kind": "text.generate", "input": BASE, "extra": 1}, "extra"),
    ({"kind": "image.generate", "input": BASE}, "kind"),
    ({"input": BASE}, "kind"),
    ({"kind": "text.generate"}, "input"),
    ({"kind": "text.generate", "input": BASE, "metadata": {"a": 1}}, "metadata"),
    ({"kind": "text.generate", "input": BASE, "metadata": {"k": "x" * 513}}, "metadata"),
    ({"kind": "text.generate", "input": BASE, "metadata": {str(i): "v" for i in range(17)}}, "metadata"),
    ({"kind": "text.generate", "input": BASE, "metadata": "tag"}, "metadata"),
    ({"kind": "text.generate", "input": {**BASE, "n": "2"}}, "input.n"),
])
def test_job_create_errors_name_the_param(settings, body, param):
    with pytest.raises(InvalidInput) as exc:
        job_create(body, settings)
    assert exc.value.param == param


@pytest.mark.parametrize("body", [[], "text", None, 3])
def test_job_create_body_must_be_an_object(settings, body):
    with pytest.raises(InvalidInput) as exc:
        job_create(body, settings)
    assert exc.value.param is None and "object" in exc.value.message


@pytest.mark.parametrize("metadata", [[], False, 0, ""])
def test_job_create_rejects_falsy_non_object_metadata(settings, metadata):
    with pytest.raises(InvalidInput) as exc:
        job_create({"kind": "text.generate", "input": dict(BASE), "metadata": metadata}, settings)
    assert exc.value.param == "metadata"


def _gan_lookups():
    from core.schemas import Lookups

    files = {"file_imgs": {"purpose": "gan-dataset"}, "file_text": {"purpose": "fine-tune"}}
    return Lookups(owns_model=lambda m: m == "gan:abcd1234", file=files.get)


def test_gan_train_defaults_and_channels_follow_the_dataset(settings):
    clean = job_create({"kind": "gan.train", "input": {"dataset": "builtin:digits"}}, settings, _gan_lookups())
    inp = clean["input"]
    assert inp["channels"] == 1 and inp["image_size"] == 32 and inp["nz"] == 100 and inp["lr"] == 2e-4
    assert inp["diffaugment"] == "translation,cutout" and inp["ema_decay"] == 0.999
    uploaded = job_create({"kind": "gan.train", "input": {"dataset": "file_imgs", "diffaugment": " cutout, color "}},
                          settings, _gan_lookups())["input"]
    assert uploaded["channels"] == 3 and uploaded["diffaugment"] == "cutout,color"


@pytest.mark.parametrize("kind,inp,param,fragment", [
    ("gan.train", {"dataset": "file_text"}, "input.dataset", "purpose"),
    ("gan.train", {"dataset": "builtin:cats"}, "input.dataset", "builtin:digits"),
    ("gan.train", {"dataset": "builtin:digits", "channels": 2}, "input.channels", "[1, 3]"),
    ("gan.train", {"dataset": "builtin:digits", "epochs": 0}, "input.epochs", ">= 1"),
    ("gan.train", {"dataset": "builtin:digits", "label_smoothing": 0.9}, "input.label_smoothing", "<= 0.5"),
    ("gan.train", {"dataset": "builtin:digits", "diffaugment": "flip"}, "input.diffaugment", "flip"),
    ("gan.train", {"dataset": "builtin:digits", "gamma": 1}, "input.gamma", "Unknown"),
    ("gan.sample", {"model": "gan:other"}, "input.model", "gan.train"),
    ("gan.sample", {"model": "gan:abcd1234", "n": 0}, "input.n", ">= 1"),
    ("gan.sample", {"model": "gan:abcd1234", "interpolate": {"steps": 4}}, "input.interpolate.to_seed", "required"),
    ("gan.sample", {"model": "gan:abcd1234", "interpolate": {"to_seed": 1, "steps": 1}},
     "input.interpolate.steps", ">= 2"),
])
def test_gan_input_errors_name_the_field(settings, kind, inp, param, fragment):
    with pytest.raises(InvalidInput) as err:
        job_create({"kind": kind, "input": inp}, settings, _gan_lookups())
    assert err.value.param == param and fragment in err.value.message
