"""Class labels: number <-> name, as in the blog ("283 (Persian cat)").

A label file has one class a line, line N+1 naming class N. ILSVRC-2012's
``synset_words.txt`` lines start with a WordNet id that is dropped:
``n02123394 Persian cat`` is class 283, named "Persian cat".
"""
from __future__ import annotations

import difflib
import re
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Union

from .errors import LabelError
from . import paths

Label = Union[int, str]

# ILSVRC-2012 class numbers the blog uses.
KING_PENGUIN = 145
PERSIAN_CAT = 283
COMPUTER_KEYBOARD = 508
MOUSE = 673
_WNID = re.compile(r"^n\d{8}\s+")


class Labels:
    """The class names of a classifier, indexed 0 .. len-1.

    >>> labels = Labels(["tabby, tabby cat", "king penguin, Aptenodytes patagonica"])
    >>> labels.name(1)
    'king penguin, Aptenodytes patagonica'
    >>> labels.index("King Penguin")
    1
    """

    def __init__(self, names: Iterable[str], *, source: Union[str, Path, None] = None):
        self.names = [str(n).strip() for n in names]
        self.source = str(source) if source is not None else None  # the label file, when read from one
        self._by_name: dict[str, list[int]] = {}
        for i, full in enumerate(self.names):
            synonyms = {full.lower()} | {s.strip().lower() for s in full.split(",")}
            for s in synonyms:
                if s:
                    self._by_name.setdefault(s, []).append(i)

    @classmethod
    def from_file(cls, path: Union[str, Path]) -> "Labels":
        """Read a label file (one name a line; a leading WordNet id is dropped)."""
        path = Path(path)
        if not path.is_file():
            raise LabelError(f"label file {path} does not exist: pass the path of a text file with one class name a line")
        lines = path.read_text(encoding="utf-8").splitlines()
        names = [_WNID.sub("", line) for line in lines if line.strip()]
        if not names:
            raise LabelError(f"label file {path} is empty: it needs one class name a line")
        return cls(names, source=path)

    def __len__(self) -> int:
        return len(self.names)

    def name(self, label: Label) -> str:
        """The class name of ``label`` (a number or a name), e.g. ``"mouse, computer mouse"``."""
        return self.names[self.index(label)]

    def index(self, label: Label) -> int:
        """The class number of ``label``: a number is range-checked, a name looked up.

        Names match case-insensitively, the whole line or any comma-separated
        synonym ("king penguin", "Aptenodytes patagonica" -> 145).
        """
        if isinstance(label, str):
            return self._index_of_name(label)
        try:
            i = int(label)
        except (TypeError, ValueError):
            raise LabelError(f"a label is a class number or a class name, not {label!r}") from None
        if i != label or not 0 <= i < len(self.names):
            raise LabelError(
                f"label {label!r} is out of range: this model has {len(self.names)} classes, "
                f"numbered 0 to {len(self.names) - 1}"
            )
        return i

    def _index_of_name(self, name: str) -> int:
        key = name.strip().lower()
        found = self._by_name.get(key, [])
        if len(found) == 1:
            return found[0]
        if found:
            choices = ", ".join(f"{i} ({self.names[i]})" for i in found)
            raise LabelError(f"{name!r} names several classes: {choices}; pass the class number instead")
        close = self._suggestions(key)
        if close:
            hint = "; did you mean " + " or ".join(repr(c) for c in close) + "?"
        elif len(self.names) <= 20:
            hint = "; its classes are " + ", ".join(f"{i} {n!r}" for i, n in enumerate(self.names))
        else:
            where = f"every name is in {self.source}" if self.source else "Labels.names lists every name"
            hint = f"; pass a class number 0 to {len(self.names) - 1}, or a name: {where}"
        raise LabelError(f"unknown label name {name!r}{hint}")

    def _suggestions(self, key: str, n: int = 3) -> list[str]:
        """Up to ``n`` known names for a lower-case ``key``: the shortest that contain it as a whole
        word ("safe" -> "safe for work"), then the closest spellings ("king pengin" -> "king penguin")."""
        word = re.compile(rf"\b{re.escape(key)}\b") if key else None
        containing = sorted((s for s in self._by_name if word and word.search(s)), key=lambda s: (len(s), s))
        close = difflib.get_close_matches(key, self._by_name, n=n, cutoff=0.6)
        one_per_class: dict[tuple[int, ...], str] = {}
        for s in containing + close:
            one_per_class.setdefault(tuple(self._by_name[s]), s)
        return list(one_per_class.values())[:n]


@lru_cache(maxsize=1)
def imagenet_labels() -> Labels:
    """The 1000 ILSVRC-2012 classes GoogLeNet predicts (shipped with the package)."""
    return Labels.from_file(paths.imagenet_label_file())


def get_label_name(label: Label) -> str:
    """ILSVRC-2012 name of ``label``, as printed in the blog: 283 -> ``"Persian cat"``."""
    return imagenet_labels().name(label)
