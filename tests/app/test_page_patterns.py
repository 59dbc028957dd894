"""The page's input patterns: valid where browsers compile them, and the label's the same as the server's.

Browsers compile an input's `pattern` as `^(?:pattern)$` with the `v` flag (HTML standard). Inside a `v`-mode
class a bare `-` that is not a range, an unescaped `( ) [ { } / |`, or a doubled punctuator (`&&`, `..`, ...)
is a syntax error, and an invalid pattern checks nothing: Chromium only logs a console error. Read from the
file, no browser needed."""

import re
from html.parser import HTMLParser
from pathlib import Path

from storage.serving_policy import LABEL_PATTERN

INDEX_HTML = Path(__file__).resolve().parents[2] / "app" / "web" / "index.html"
CLASS_SYNTAX = set("()[{}/|")
DOUBLE_PUNCTUATORS = set("&!#$%*+,.:;<=>?@^`~")


class Patterns(HTMLParser):
    """`pattern` attributes of the page's inputs, by id (or name)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "input" and values.get("pattern") is not None:
            self.found[str(values.get("id") or values.get("name"))] = str(values["pattern"])


def page_patterns() -> dict[str, str]:
    parser = Patterns()
    parser.feed(INDEX_HTML.read_text(encoding="utf-8"))
    return parser.found


def v_mode_class_problems(pattern: str) -> list[str]:
    """What a `v`-flag RegExp refuses in the character classes of `pattern` (the subset our patterns use:
    characters, escapes and ranges; no nested classes)."""
    problems: list[str] = []
    units: list[tuple[str, str]] | None = None  # inside a class: (kind, text)
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            if units is not None:
                units.append(("char", pattern[index : index + 2]))
            index += 2
            continue
        if units is None:
            units = [] if char == "[" else None
        elif char == "]":
            problems += _unpaired(units)
            units = None
        else:
            if char in DOUBLE_PUNCTUATORS and pattern[index + 1 : index + 2] == char:
                problems.append(f"doubled {char * 2!r} in a class")
            kind = "dash" if char == "-" else "syntax" if char in CLASS_SYNTAX else "char"
            units.append((kind, char))
        index += 1
    return problems


def _unpaired(units: list[tuple[str, str]]) -> list[str]:
    """Ranges are char-char; any other `-` or syntax character in the class is an error."""
    problems, index = [], 0
    while index < len(units):
        kinds = [kind for kind, _ in units[index : index + 3]]
        if kinds == ["char", "dash", "char"]:
            index += 3
            continue
        kind, text = units[index]
        if kind != "char":
            problems.append(f"unescaped {text!r} in a class")
        index += 1
    return problems


def test_the_checker_knows_what_the_v_flag_refuses() -> None:
    assert v_mode_class_problems(r"[A-Za-z0-9_\-]{0,63}") == []
    assert v_mode_class_problems(r"[a-z]x-y") == [], "a `-` outside a class is a plain character"
    assert v_mode_class_problems("[A-Za-z0-9_-]") == ["unescaped '-' in a class"]
    assert v_mode_class_problems("[-a]") and v_mode_class_problems("[a-b-c]") and v_mode_class_problems("[(]")
    assert v_mode_class_problems("[a..b]") == ["doubled '..' in a class"]


def test_every_input_pattern_compiles_with_the_v_flag() -> None:
    patterns = page_patterns()
    assert "label-name" in patterns, f"the label input lost its pattern: {patterns}"
    for name, pattern in patterns.items():
        assert v_mode_class_problems(pattern) == [], (
            f"input {name}: pattern {pattern!r} is not a valid `v`-flag regular expression, so browsers "
            f"check nothing: {v_mode_class_problems(pattern)}"
        )


def test_the_label_input_checks_what_the_server_accepts() -> None:
    pattern = page_patterns()["label-name"]
    assert pattern == LABEL_PATTERN, (
        f"page {pattern!r} vs server {LABEL_PATTERN!r} (storage/serving_policy.py)"
    )
    for label, valid in [("stable", True), ("a-b_C9", True), ("x" * 64, True), ("x" * 65, False),
                         ("9lives", False), ("bad label", False), ("-x", False), ("", False)]:  # fmt: skip
        assert bool(re.fullmatch(pattern, label)) is valid, (label, valid)
