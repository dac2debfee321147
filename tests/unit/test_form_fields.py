"""The generation form's field bounds and its errors in words."""

from __future__ import annotations

from core.config import Settings
from core.schemas import TextGenerateInput
from web.form_fields import in_words, number_bounds


def test_bounds_come_from_the_declared_limits_and_the_servers_caps():
    settings = Settings(max_new_tokens=300, max_choices=4)
    bounds = number_bounds(TextGenerateInput, settings, {"max_new_tokens": "1", "top_p": "0.05", "n": "1",
                                                         "temperature": "0.05", "seed": "1"})
    assert bounds["max_new_tokens"] == {"min": 1, "max": 300}
    assert bounds["n"] == {"min": 1, "max": 4}
    assert bounds["temperature"] == {"min": 0, "max": 2}
    assert bounds["top_p"] == {"min": 0.05, "max": 1}  # > 0 becomes the first step above it
    assert bounds["seed"] == {"min": 0, "max": 2**32 - 1}


def test_an_exclusive_bound_of_a_field_stepped_any_is_left_open():
    from core.schemas import FinetuneHyperparameters

    bounds = number_bounds(FinetuneHyperparameters, Settings(), {"learning_rate": "any", "epochs": "1"})
    assert bounds["learning_rate"] == {"min": None, "max": 1}  # > 0 has no nearest step
    assert bounds["epochs"] == {"min": 1, "max": 100}


def test_errors_read_as_words_under_the_forms_labels():
    labels = {"input.max_new_tokens": "Max new tokens", "input.stop": "Stop sequences"}
    assert in_words("input.max_new_tokens must be >= 1", labels) == "Max new tokens must be at least 1"
    assert in_words("input.temperature must be <= 2.0", labels) == "input.temperature must be at most 2"
    assert in_words("input.stop[0] must not be empty", labels) == "Stop sequences[0] must not be empty"
    assert in_words("input.max_new_tokens must be less than 512, the context window of builtin:ad-writer", labels) \
        == "Max new tokens must be less than 512, the context window of builtin:ad-writer"

