"""The bank's names for the note check: read from the data folder's `customers.name` only, held as
8-byte digests (a million customers take 8 MB)."""

from __future__ import annotations

import pandas as pd

from keepwell.pii import NameIndex, personal_data_in


def test_the_index_holds_every_customers_name_as_eight_bytes(small_bank):
    names = pd.read_parquet(small_bank / "customers.parquet", columns=["name"]).name.dropna()
    index = NameIndex.from_folder(small_bank)
    assert len(index) > 0.9 * names.nunique()
    assert index.nbytes == 8 * len(index)
    one = names.iloc[5]
    assert personal_data_in(f"{one.upper()} prefers evenings", index) == "a customer's name"
    assert personal_data_in("prefers evenings after 18:00", index) is None
    assert len(NameIndex.from_folder(None)) == 0
