"""`keepwell plan` on a mid-month day sees only what the bank knew before that day: the lists
planned from the bank cut to what was known (the contract's rule) are byte-identical."""

from __future__ import annotations

import datetime as dt
import shutil

from serving.planning.job import plan_day
from serving.planning.list_format import rm_lists
from serving.planning.write import check_identical
from tests.fixtures.known import cut_bank, cut_rows
from tests.fixtures.serving import MLFLOW_ENV, restore_env


def test_plan_on_a_mid_month_day_reads_only_what_was_known(serving_setup, tmp_path):
    import os

    ws, config, bank = serving_setup.workspace, serving_setup.config, serving_setup.bank
    day = dt.date(2025, 11, 19)
    cut = cut_bank(bank, day, tmp_path / "cut", config)
    assert cut_rows(bank, cut)["callbacks"] > 0 and cut_rows(bank, cut)["balances"] > 0
    saved = {k: os.environ.get(k) for k in MLFLOW_ENV}
    try:
        full = plan_day(ws, config, day, data_dir=bank)
        first = tmp_path / "from_full_bank"
        shutil.copytree(full.folder, first)
        known = plan_day(ws, config, day, data_dir=cut)
    finally:
        restore_env(saved)
    assert len(rm_lists(first)) > 0 and full.summary["tasks"] > 0
    assert check_identical(first, known.folder) == []
