"""Which class of a conditional image model a request names: by name, by index, or in a prompt
("a handwritten seven", "7", "七", "sneakers"), in English and Chinese."""

from __future__ import annotations

import re
import unicodedata

ENGLISH_NUMBERS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
                   "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
                   "nineteen", "twenty")
CHINESE_NUMBERS = ("零", "一", "二", "三", "四", "五", "六", "七", "八", "九", "十")
CHINESE_ALSO = {"〇": 0, "两": 2}  # other ways to write a digit
_CHINESE_NUMERALS = set(CHINESE_NUMBERS) | set(CHINESE_ALSO) | set("百千万")
# A Chinese numeral before one of these counts things or measures ("一个七": a seven; "一些": some),
# it names no class.
MEASURE_WORDS = "个只张幅位条件双副份枚颗本些下种"
_CJK = re.compile(r"[\u3000-\u9fff\uf900-\ufaff]")


class NoClass(ValueError):
    """The request names no class, or several; the message lists the model's classes."""


def _listing(classes: list[str]) -> str:
    return ", ".join(repr(c) for c in classes)


def _normal(text: str) -> str:
    """Lower case, full-width forms folded (７ -> 7), and _ or - read as a space."""
    text = unicodedata.normalize("NFKC", text).lower()
    return re.sub(r"\s+", " ", re.sub(r"[_\-]", " ", text)).strip()


def _number(label: str) -> int | None:
    return int(label) if label.isascii() and label.isdigit() else None


def _names(label: str) -> list[str]:
    """The words that stand for one class: its name (and its singular), and for a number its
    English and Chinese words."""
    base = _normal(label)
    names = {base}
    for name in list(names):
        if len(name) > 4 and name.endswith("ies"):
            names.add(name[:-3] + "y")  # puppies -> puppy
        elif len(name) > 3 and name.endswith("s") and not name.endswith("ss"):
            names.add(name[:-1])  # sneakers -> sneaker
    number = _number(label.strip())
    if number is not None and number < len(ENGLISH_NUMBERS):
        names.add(ENGLISH_NUMBERS[number])
        if number < len(CHINESE_NUMBERS):
            names.add(CHINESE_NUMBERS[number])
        names |= {c for c, v in CHINESE_ALSO.items() if v == number}
    return sorted(n for n in names if n)


def _spans(prompt: str, name: str) -> list[tuple[int, int]]:
    if _CJK.search(name):
        out = []
        for m in re.finditer(re.escape(name), prompt):
            before, after = prompt[m.start() - 1:m.start()], prompt[m.end():m.end() + 1]
            if name in _CHINESE_NUMERALS:
                # 十七 is seventeen and 一个 is "a": neither names the digit.
                if before in _CHINESE_NUMERALS or after in _CHINESE_NUMERALS or (after and after in MEASURE_WORDS):
                    continue
            out.append(m.span())
        return out
    # Whole words only ("one" is not in "someone"), with a plural allowed ("sevens", "sneakers").
    stem = re.escape(name[:-1]) + "(?:y|ies)" if name.endswith("y") else re.escape(name) + "(?:s|es)?"
    pattern = r"(?<![a-z0-9])" + stem + r"(?![a-z0-9])"
    return [m.span() for m in re.finditer(pattern, prompt)]


def _counts(prompt: str, spans: list[tuple[int, int]], others: list[tuple[int, int]]) -> bool:
    """Every span is an English number word counting what follows ("one seven", "two 3s")."""
    for start, end in spans:
        word = prompt[start:end]
        nxt = re.match(r" ?", prompt[end:])
        following = end + (nxt.end() if nxt else 0)
        if word.rstrip("s") not in ENGLISH_NUMBERS or not any(s == following for s, _ in others):
            return False
    return True


def class_from_prompt(classes: list[str], prompt: str) -> int:
    """The index of the one class the prompt names; NoClass when it names none or several.

    Where one match lies inside another ("t-shirt" holds "shirt"), the longer one wins; an English
    number word right before another class's name counts it ("one seven") and names nothing.
    """
    text = _normal(prompt)
    found: dict[int, list[tuple[int, int]]] = {}
    for index, label in enumerate(classes):
        spans = [s for name in _names(label) for s in _spans(text, name)]
        if spans:
            found[index] = spans

    def covered(index: int) -> bool:
        return all(any(o != index and a <= s and e <= b and (b - a) > (e - s) for o in found for a, b in found[o])
                   for s, e in found[index])
    named = [i for i in found if not covered(i)]
    if len(named) > 1:
        named = [i for i in named
                 if not _counts(text, found[i], [s for o in named if o != i for s in found[o]])]
    if len(named) == 1:
        return named[0]
    if not named:
        raise NoClass(f"the prompt names none of the model's classes: {_listing(classes)}")
    raise NoClass(f"the prompt names more than one class ({_listing([classes[i] for i in named])}); "
                  f"name one of {_listing(classes)}")


def class_index(classes: list[str], value: str | int) -> int:
    """A class given by name (or a name of it, as a prompt would use) or by index.

    An integer that is also a class's name means that class: with folders named 1 to 10, `1` is
    the folder "1", not the second class.
    """
    if isinstance(value, int):
        if str(value) in classes:
            return classes.index(str(value))
        if 0 <= value < len(classes):
            return value
        raise NoClass(f"class index {value} is out of range: the model has {len(classes)} classes "
                      f"({_listing(classes)})")
    if value in classes:
        return classes.index(value)
    want = _normal(value)
    for index, label in enumerate(classes):
        if want in _names(label):
            return index
    raise NoClass(f"no class {value!r}; the model's classes: {_listing(classes)}")
