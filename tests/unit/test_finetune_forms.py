"""The fine-tune form's reading of its fields and errors, and the CLI's request body and event paging."""

from __future__ import annotations

from argparse import Namespace

import pytest

from aigc.finetune import create_body, new_events
from core.schemas import FinetuneHyperparameters, LoraSettings
from web.finetune_ui import DEFAULTS, form_input, form_problems


def test_the_form_shows_the_declared_defaults():
    hp = FinetuneHyperparameters()
    assert (DEFAULTS["epochs"], DEFAULTS["batch_size"], DEFAULTS["learning_rate"]) == \
        (str(hp.epochs), str(hp.batch_size), str(hp.learning_rate))
    assert DEFAULTS["lora_r"] == str(LoraSettings().r) and DEFAULTS["max_steps"] == ""


@pytest.mark.parametrize("method,r,lora", [("auto", "4", None), ("lora", "4", {"r": 4}), ("lora", "", True),
                                           ("full", "4", False)])
def test_the_method_says_what_trains(method, r, lora):
    values = dict(DEFAULTS, base_model="builtin:tiny-gpt2", training_file="file_1", method=method, lora_r=r)
    hp = form_input(values)["hyperparameters"]
    assert hp.get("lora") == lora and ("lora" in hp) == (lora is not None)


def test_blank_fields_are_left_out_and_non_numbers_go_on_as_typed():
    values = dict(DEFAULTS, training_file=" file_1 ", validation_file="", max_steps="", epochs="two",
                  learning_rate="1e-3")
    inp = form_input(values)
    assert inp["training_file"] == "file_1" and "validation_file" not in inp
    assert "max_steps" not in inp["hyperparameters"]
    assert inp["hyperparameters"]["epochs"] == "two"  # the job's shape says "must be an integer"
    assert inp["hyperparameters"]["learning_rate"] == 1e-3


def test_each_problem_goes_beside_its_field_in_words():
    by_field, general = form_problems([
        {"param": "input.hyperparameters.epochs", "message": "input.hyperparameters.epochs must be >= 1"},
        {"param": "input.hyperparameters.lora.r", "message": "input.hyperparameters.lora.r must be >= 1"},
        {"param": "file", "message": "The file has 2 example(s); fine-tuning needs at least 10"},
        {"param": None, "message": "Too many open jobs"},
    ])
    assert by_field == {"epochs": ["Epochs must be at least 1"], "lora_r": ["LoRA rank must be at least 1"],
                        "training_upload": ["The file has 2 example(s); fine-tuning needs at least 10"]}
    assert general == ["Too many open jobs"]


def _args(**given) -> Namespace:
    names = ("epochs", "batch_size", "learning_rate_multiplier", "max_steps", "lora_r", "validation_file",
             "suffix", "seed")
    return Namespace(**{**dict.fromkeys(names), "model": "builtin:tiny-gpt2", "training_file": "file_1",
                        "full": False, **given})


def test_the_cli_sends_only_what_was_given_in_openais_names():
    assert create_body(_args()) == {"model": "builtin:tiny-gpt2", "training_file": "file_1",
                                    "method": {"type": "supervised", "supervised": {"hyperparameters": {}}}}
    body = create_body(_args(epochs=2, learning_rate_multiplier=0.5, lora_r=4, suffix="ads"))
    assert body["method"]["supervised"]["hyperparameters"] == {"n_epochs": 2, "learning_rate_multiplier": 0.5,
                                                               "lora": {"r": 4}}
    assert body["suffix"] == "ads"
    assert create_body(_args(full=True))["method"]["supervised"]["hyperparameters"] == {"lora": False}


class Events:
    """GET .../events as the API pages it: newest first, `after` an event id, `limit` a page."""

    def __init__(self, n: int):
        self.events = [{"id": f"ev-{i}", "created_at": 0, "level": "info", "message": str(i)} for i in range(n)]
        self.requests = 0

    def request(self, method, path):
        self.requests += 1
        newest_first = self.events[::-1]
        query = dict(part.split("=") for part in path.split("?")[1].split("&"))
        start = [e["id"] for e in newest_first].index(query["after"]) + 1 if "after" in query else 0
        page = newest_first[start:start + int(query["limit"])]
        return {"data": page, "has_more": start + len(page) < len(newest_first)}


def test_events_come_oldest_first_and_each_once():
    api = Events(250)
    first = new_events(api, "ftjob-1", set())
    assert [e["message"] for e in first] == [str(i) for i in range(250)] and api.requests == 3
    seen = {e["id"] for e in first}
    api.events += [{"id": "ev-250", "created_at": 0, "level": "info", "message": "250"}]
    assert [e["message"] for e in new_events(api, "ftjob-1", seen)] == ["250"]
