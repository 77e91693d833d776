"""Personal data in free text: what an RM types into a note, or a caller puts in a request.

`personal_data_in(text, names)` says what kind of personal data `text` holds, or None:

* a phone, account or card number: seven or more digits in one run, whatever separates them
  (spaces, dots, dashes, slashes, brackets, a leading +), full-width digits included; a whole,
  valid calendar date or clock time is not a number;
* an e-mail address, also written round a filter: `a@b`, `a @ b`, a full-width `＠`,
  `j.smith(at)bank`, `[at]`, `{at}`, `name at bank dot com`;
* a customer's name from the bank's tables (`NameIndex`): any two to four consecutive words that
  spell a full name, case, accents and punctuation aside.

Text is compared after Unicode NFKC folding, so look-alike characters do not slip through.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path

import numpy as np

DIGITS_IN_A_NUMBER = 7
MAX_NAME_WORDS = 4

_DATE = (
    r"(?:19|20)\d\d-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])"  # 2026-01-05
    r"|(?:0?[1-9]|[12]\d|3[01])[./](?:0?[1-9]|1[0-2])[./](?:19|20)?\d\d"  # 05.01.2026, 5/1/26
    r"|(?:[01]?\d|2[0-3]):[0-5]\d(?::[0-5]\d)?"  # 14:30, 09:05:00
)
# a date or time that stands alone: no digit or number separator glued to either side
_WHOLE_DATE = re.compile(rf"(?<![\d./\-:])(?:{_DATE})(?![\d./\-:])")
_NUMBER_RUN = re.compile(r"\+?\d(?:[\s.\-/()]{0,2}\d)+")
_AT = r"(?:@|\(\s*at\s*\)|\[\s*at\s*\]|\{\s*at\s*\}|<\s*at\s*>)"
_EMAIL = re.compile(rf"[\w.+\-]+\s*{_AT}\s*[\w\-]+", re.IGNORECASE)
_SPELLED_EMAIL = re.compile(
    r"\b[\w.+\-]+\s+at\s+[\w\-]+\s*(?:\.|\(\s*dot\s*\)|\[\s*dot\s*\]|\bdot\b)\s*[a-z]{2,}\b",
    re.IGNORECASE,
)
_WORD = re.compile(r"[^\W\d_]+")


def fold(text: str) -> str:
    """NFKC-folded text (full-width and look-alike forms become their plain characters)."""
    return unicodedata.normalize("NFKC", text)


def _plain_word(word: str) -> str:
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def name_words(text: str) -> list[str]:
    """The words of `text`, case-folded and without accents (for name matching)."""
    return [_plain_word(w) for w in _WORD.findall(fold(text))]


def has_number(text: str) -> bool:
    """Seven or more digits in one run, once whole dates and times are taken out."""
    rest = _WHOLE_DATE.sub(" ", fold(text))
    return any(
        sum(c.isdigit() for c in run) >= DIGITS_IN_A_NUMBER for run in _NUMBER_RUN.findall(rest)
    )


def has_email(text: str) -> bool:
    folded = fold(text)
    return bool(_EMAIL.search(folded) or _SPELLED_EMAIL.search(folded))


def _name_key(words: Iterable[str]) -> int:
    digest = hashlib.blake2b(" ".join(words).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


class NameIndex:
    """The full names of the bank's customers, for spotting one in a note or a request.

    Held as a sorted array of 64-bit digests of the folded names (8 bytes a name: 1M customers
    take 8 MB, not the names themselves); a false match needs a 64-bit collision."""

    def __init__(self, names: Iterable[str | None] = ()) -> None:
        keys = []
        for name in names:
            words = name_words(name or "")
            if 2 <= len(words) <= MAX_NAME_WORDS:
                keys.append(_name_key(words))
        self._keys = np.unique(np.array(keys, dtype=np.uint64))

    def __len__(self) -> int:
        return len(self._keys)

    @property
    def nbytes(self) -> int:
        """The memory the index holds (8 bytes a name)."""
        return int(self._keys.nbytes)

    def _has(self, key: int) -> bool:
        at = int(np.searchsorted(self._keys, np.uint64(key)))
        return at < len(self._keys) and int(self._keys[at]) == key

    def find(self, text: str) -> bool:
        if not len(self._keys):
            return False
        words = name_words(text)
        for size in range(2, MAX_NAME_WORDS + 1):
            for start in range(len(words) - size + 1):
                if self._has(_name_key(words[start : start + size])):
                    return True
        return False

    @classmethod
    def from_folder(cls, folder: Path | str | None) -> NameIndex:
        """The names of a data folder's `customers` table (only its `name` column is read, in
        batches); an empty index when there is no folder or no such column."""
        if folder is None:
            return cls()
        from keepwell.contract.reading import read_folder

        source = read_folder(Path(folder)).sources.get("customers")
        if source is None or "name" not in source.raw.columns:
            return cls()
        batches = source.raw.select("name").to_pyarrow_batches(chunk_size=100_000)
        return cls(name for batch in batches for name in batch.column(0).to_pylist())


def personal_data_in(text: str, names: NameIndex | None = None) -> str | None:
    """The kind of personal data in `text` ("a phone, account or card number", "an e-mail
    address", "a customer's name"), or None when there is none."""
    if has_number(text):
        return "a phone, account or card number"
    if has_email(text):
        return "an e-mail address"
    if names is not None and names.find(text):
        return "a customer's name"
    return None
