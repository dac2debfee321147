"""Which class of a conditional image model a request names: by name, by index, or in a prompt
("a handwritten seven", "7", "七", "sneakers"), in English and Chinese."""

from __future__ import annotations

import re

ENGLISH_NUMBERS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
                   "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
                   "nineteen", "twenty")
CHINESE_NUMBERS = ("零", "一", "二", "三", "四", "五", "六", "七", "八", "九", "十")
# A Chinese numeral before a measure word counts things ("一个七": a seven), it names no class.
MEASURE_WORDS = "个只张幅位条件双副份枚颗本"
_CJK = re.compile(r"[\u3000-\u9fff\uf900-\ufaff]")


class NoClass(ValueError):
    """The request names no class, or several; the message lists the model's classes."""


def _listing(classes: list[str]) -> str:
    return ", ".join(repr(c) for c in classes)


def _names(label: str) -> list[str]:
    """The words that stand for one class: its name (and its singular), and for a number its
    English and Chinese words."""
    base = label.strip().lower()
    names = {base, base.replace("_", " ").replace("-", " ")}
    names |= {n[:-1] for n in names if len(n) > 3 and n.endswith("s")}
    if base.isdigit() and int(base) < len(ENGLISH_NUMBERS):
        names.add(ENGLISH_NUMBERS[int(base)])
        if int(base) < len(CHINESE_NUMBERS):
            names.add(CHINESE_NUMBERS[int(base)])
    return sorted(n for n in names if n)


def _spans(prompt: str, name: str) -> list[tuple[int, int]]:
    if _CJK.search(name):
        out = []
        for m in re.finditer(re.escape(name), prompt):
            after = prompt[m.end():m.end() + 1]
            if name in CHINESE_NUMBERS and after and after in MEASURE_WORDS:
                continue
            out.append(m.span())
        return out
    # Whole words only ("one" is not in "someone"), with a plural allowed ("sevens", "sneakers").
    pattern = r"(?<![a-z0-9])" + re.escape(name) + r"(?:s|es)?(?![a-z0-9])"
    return [m.span() for m in re.finditer(pattern, prompt)]


def class_from_prompt(classes: list[str], prompt: str) -> int:
    """The index of the one class the prompt names; NoClass when it names none or several.

    Where one match lies inside another ("t-shirt" holds "shirt"), the longer one wins.
    """
    text = prompt.lower()
    found: dict[int, list[tuple[int, int]]] = {}
    for index, label in enumerate(classes):
        spans = [s for name in _names(label) for s in _spans(text, name)]
        if spans:
            found[index] = spans

    def covered(index: int) -> bool:
        return all(any(o != index and a <= s and e <= b and (b - a) > (e - s) for o in found for a, b in found[o])
                   for s, e in found[index])
    named = [i for i in found if not covered(i)]
    if len(named) == 1:
        return named[0]
    if not named:
        raise NoClass(f"the prompt names none of the model's classes: {_listing(classes)}")
    raise NoClass(f"the prompt names more than one class ({_listing([classes[i] for i in named])}); "
                  f"name one of {_listing(classes)}")


def class_index(classes: list[str], value: str | int) -> int:
    """A class given by name (or a name of it, as a prompt would use) or by index."""
    if isinstance(value, int):
        if 0 <= value < len(classes):
            return value
        raise NoClass(f"class index {value} is out of range: the model has {len(classes)} classes "
                      f"({_listing(classes)})")
    if value in classes:
        return classes.index(value)
    want = value.strip().lower()
    for index, label in enumerate(classes):
        if want in _names(label):
            return index
    raise NoClass(f"no class {value!r}; the model's classes: {_listing(classes)}")
