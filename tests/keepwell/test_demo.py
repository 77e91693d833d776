"""The demo bank: deterministic, valid under the contract, realistic base rates, a real signal."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import numpy as np
import pytest
from rich.console import Console
from sklearn.metrics import roc_auc_score

from keepwell.contract import validate_folder
from keepwell.demo import TABLES, generate


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _db(folder: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for t in TABLES:
        con.execute(f"create view {t} as select * from read_parquet('{folder}/{t}.parquet')")
    return con


@pytest.fixture(scope="module")
def outcomes(small_bank):
    """Oracle rows whose 90-day horizon lies inside the data, with the realised outcomes and a
    one-feature early warning computed straight from the tables (no Keepwell feature code)."""
    con = _db(small_bank)
    return con.execute(
        """
        with o as (
            select * from oracle
            where as_of >= date '2024-07-01'
              and as_of + interval 90 day <= (select max(as_of) + interval 1 month from oracle)
        ),
        t as (
            select o.customer_id, o.as_of,
                   count(*) filter (where x.ts >= o.as_of - interval 30 day) as txn_30d,
                   count(*) filter (where x.ts >= o.as_of - interval 90 day) as txn_90d
            from o join transactions x
              on x.customer_id = o.customer_id
             and x.ts < o.as_of and x.ts >= o.as_of - interval 90 day
            group by all
        ),
        k as (
            select o.customer_id, o.as_of, count(*) as complaints
            from o join complaints k
              on k.customer_id = o.customer_id
             and k.opened_at >= o.as_of and k.opened_at < o.as_of + interval 90 day
            group by all
        )
        select o.*, c.segment,
               coalesce(c.closed_at >= o.as_of and c.closed_at < o.as_of + interval 90 day,
                        false)::int as churned,
               (coalesce(k.complaints, 0) > 0)::int as complained,
               coalesce(t.txn_30d, 0) as txn_30d, coalesce(t.txn_90d, 0) as txn_90d
        from o join customers c using (customer_id)
        left join t using (customer_id, as_of)
        left join k using (customer_id, as_of)
        """
    ).df()


def test_same_seed_same_bytes_and_another_seed_differs(tmp_path, config):
    demo = config.demo.model_copy(
        update={"customers": 400, "months": 6, "seed": 3, "chunk_customers": 150}
    )
    quiet = Console(quiet=True)
    generate(demo, config, tmp_path / "a", console=quiet)
    generate(demo, config, tmp_path / "b", console=quiet)
    generate(demo.model_copy(update={"seed": 4}), config, tmp_path / "c", console=quiet)
    a, b, c = _digest(tmp_path / "a"), _digest(tmp_path / "b"), _digest(tmp_path / "c")
    assert set(a) == {f"{t}.parquet" for t in TABLES} | {"demo.json"}
    assert a == b
    assert a["transactions.parquet"] != c["transactions.parquet"]


def test_output_passes_the_contract(small_bank):
    report = validate_folder(small_bank)
    assert report.ok, str(report)
    assert report.rows["customers"] == 3000


def test_base_rates_fall_in_the_promised_ranges(outcomes):
    # both the oracle's probabilities and what actually happened
    assert 0.05 <= outcomes.p_churn.mean() <= 0.15
    assert 0.05 <= outcomes.churned.mean() <= 0.15
    assert 0.03 <= outcomes.p_complaint.mean() <= 0.10
    assert 0.03 <= outcomes.complained.mean() <= 0.10


def test_oracle_is_calibrated(outcomes):
    decile = np.minimum((outcomes.p_churn.rank(pct=True) * 5).astype(int), 4)
    by = outcomes.groupby(decile)[["p_churn", "churned"]].mean()
    # each fifth of the oracle's scale sees about the churn it predicts
    assert np.allclose(by.p_churn, by.churned, atol=0.025), by


def test_oracle_beats_a_one_feature_rule(outcomes, record_property):
    oracle_auc = roc_auc_score(outcomes.churned, outcomes.p_churn)
    # the seed rule's early warning: 30-day transaction frequency below the 90-day monthly average
    falling = (outcomes.txn_30d + 0.5) / (outcomes.txn_90d / 3 + 0.5)
    rule_auc = roc_auc_score(outcomes.churned, -falling)
    complaint_auc = roc_auc_score(outcomes.complained, outcomes.p_complaint)
    record_property("oracle_churn_auc", round(oracle_auc, 4))
    record_property("frequency_rule_churn_auc", round(rule_auc, 4))
    print(
        f"oracle churn ROC-AUC {oracle_auc:.3f}, frequency-decline rule {rule_auc:.3f}, "
        f"oracle complaint ROC-AUC {complaint_auc:.3f}"
    )
    assert oracle_auc > 0.68
    assert complaint_auc > 0.64
    assert rule_auc > 0.5  # the warning is real ...
    assert rule_auc < oracle_auc - 0.1  # ... but one feature is far from the truth


def test_population_has_what_the_product_needs(small_bank):
    con = _db(small_bank)
    seg = dict(con.execute("select segment, count(*) from customers group by 1").fetchall())
    assert set(seg) == {"retail", "hnw", "institutional"}
    elderly, disabled, corporate_births = con.execute(
        """select avg((date_diff('year', birth_date, date '2024-01-01') >= 65)::int)
                      filter (where kind = 'individual'),
                  avg(disabled::int), count(birth_date) filter (where kind = 'corporate')
           from customers"""
    ).fetchone()
    assert 0.15 < elderly < 0.3 and 0.02 < disabled < 0.07 and corporate_births == 0
    names = con.execute(
        """select count(distinct name), count(*) filter (where phone like '+44 7700 900%')
           from customers"""
    ).fetchone()
    assert names[0] > 100 and names[1] == 3000
    every_rm_used = con.execute(
        "select count(*) from rms where rm_id not in (select rm_id from customers)"
    ).fetchone()[0]
    assert every_rm_used == 0


def test_complaint_slas_are_sometimes_breached(small_bank):
    con = _db(small_bank)
    late_response, open_at_end, n = con.execute(
        """select avg((first_response_at - opened_at > interval 24 hour)::int),
                  avg((resolved_at is null)::int), count(*) from complaints"""
    ).fetchone()
    assert n > 300
    assert 0.04 < late_response < 0.3
    assert open_at_end < 0.1


def test_no_callback_reaches_a_customer_after_the_relationship_closed(small_bank):
    con = _db(small_bank)
    reached_after, reached, closed_with_calls = con.execute(
        """select count(*) filter (where b.done_at >= c.closed_at),
                  count(*) filter (where b.outcome = 'reached'),
                  count(distinct c.customer_id) filter (where c.closed_at is not null)
           from callbacks b join customers c using (customer_id)"""
    ).fetchone()
    assert reached > 5000 and closed_with_calls > 500
    assert reached_after == 0


def test_policy_callbacks_follow_the_rules_with_a_randomised_holdout(small_bank, config):
    con = _db(small_bank)
    rows = dict(
        con.execute(
            """select reason, avg((outcome = 'holdout')::int) from callbacks
               where outcome is not null group by 1"""
        ).fetchall()
    )
    share = config.policy.holdout_share
    assert abs(rows["quarterly"] - share) < 0.02 and abs(rows["post_sale"] - share) < 0.03
    assert rows["complaint"] == 0
    # a post-sale callback falls due 7 days after the purchase it follows
    gap = con.execute(
        """select max(abs(date_diff('second', h.opened_at, c.due_at) / 86400.0 - 7))
           from callbacks c join holdings h
             on h.customer_id = c.customer_id
            and c.due_at = h.opened_at + interval 7 day
           where c.reason = 'post_sale'"""
    ).fetchone()[0]
    assert gap is not None and gap < 1e-6
    # quarterly callbacks of a customer are 91 days apart
    spacing = con.execute(
        """select min(d), max(d) from (
             select date_diff('day', lag(due_at) over (partition by customer_id order by due_at),
                              due_at) as d
             from callbacks where reason = 'quarterly') where d is not null"""
    ).fetchone()
    assert spacing == (91, 91)
    sat = con.execute("select min(satisfaction), max(satisfaction) from callbacks").fetchone()
    assert sat == (1, 5)


def test_callback_effect_differs_between_customers(outcomes):
    effect = outcomes.callback_effect
    assert effect.quantile(0.95) > 0.01  # persuadable
    assert (effect < 0).mean() > 0.02  # sleeping dogs exist
    assert effect.abs().max() < 0.6


def test_no_effect_heterogeneity_means_the_same_effect_on_the_log_odds(config):
    from keepwell.demo.generate import _initial_state
    from keepwell.demo.population import make_customers, make_rms
    from keepwell.demo.process import TAU_MEAN, callback_tau

    rng = np.random.default_rng(0)
    demo = config.demo
    rms = make_rms(demo, config, rng)
    people = make_customers(demo, rms, 0, 500, 19723, 20454, rng)
    state = _initial_state(people.static, 19723, rng)
    flat = callback_tau(people.static, state, 0.0)
    varied = callback_tau(people.static, state, 1.0)
    assert np.allclose(flat, TAU_MEAN)
    assert varied.std() > 0.3


def test_cli_writes_the_demo_bank_into_the_workspace(tmp_path):
    from typer.testing import CliRunner

    from cli.app import app

    ws = tmp_path / "ws"
    args = ["--workspace", str(ws), "demo-data", "--customers", "300", "--months", "4"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (ws / "data" / "demo" / "customers.parquet").exists()
    assert "transactions" in result.output
    # nothing half-written is left beside it
    assert [p.name for p in (ws / "data").iterdir()] == ["demo"]
    check = CliRunner().invoke(app, ["--workspace", str(ws), "validate", str(ws / "data" / "demo")])
    assert check.exit_code == 0, check.output
