"""The scoring core against the models, the tiers and the policy it is built from."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from features.store import OnlineStore, materialize
from serving.decisions.rules import due_tasks_from_folder, first_task_per_customer
from serving.decisions.tiers import decide_frame, risk_tiers
from serving.decisions.value import ValueTiers, value_scores
from serving.records.keys import Principal
from serving.scoring.model import ServingSetupError
from serving.scoring.scorer import Forbidden, Scorer
from serving.scoring.snapshot import Rows
from training.reasons import explain

CRM = Principal("000000000001", "crm")


@pytest.fixture(scope="module")
def book_frame(serving_setup) -> pd.DataFrame:
    """The stored snapshot as the store returns it (every customer, every column)."""
    path = serving_setup.workspace.path(serving_setup.config.paths.feature_store)
    with OnlineStore(path) as store:
        return store.lookup(store.customer_ids())


@pytest.fixture(scope="module")
def sample_ids(scorer) -> list[str]:
    rng = np.random.default_rng(3)
    return rng.choice(scorer.snapshot.ids, size=300, replace=False).tolist()


def test_probabilities_are_the_fitted_models(scorer, book_frame, sample_ids):
    results = scorer.score_ids(sample_ids, CRM)
    frame = book_frame.set_index("customer_id").loc[sample_ids].reset_index()
    for target in ("churn", "complaint"):
        expected = scorer.models[target].fitted.predict_proba(frame)
        got = np.array([getattr(r, f"{target}_probability") for r in results])
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    assert [r.customer_id for r in results] == sample_ids
    assert all(r.found and r.features_as_of == scorer.as_of for r in results)
    assert all(r.model_versions == scorer.model_versions for r in results)


def test_rows_matrix_encodes_like_fitted_matrix(scorer, book_frame):
    fitted = scorer.models["churn"].fitted
    frame = book_frame.head(50).copy()
    cat = next(iter(fitted.categories))
    frame.loc[0, cat] = "a level never seen in training"
    frame.loc[1, cat] = None
    records = frame.to_dict("records")
    rows = Rows.from_records(
        records, {n: scorer.snapshot.dtypes[n] for n in scorer.snapshot.dtypes}
    )
    ours = rows.matrix(fitted.features, fitted.categories)
    theirs = fitted.booster.predict(fitted.matrix(frame), pred_contrib=True)
    np.testing.assert_array_equal(fitted.booster.predict(ours, pred_contrib=True), theirs)
    assert np.isnan(ours[:2, list(fitted.features).index(cat)]).all()


def test_reasons_come_from_the_higher_risk_target(scorer, book_frame, sample_ids):
    results = scorer.score_ids(sample_ids, CRM)
    frame = book_frame.set_index("customer_id").loc[sample_ids].reset_index()
    cuts = scorer.config.tiers.risk_cut_points
    explained = {}
    for target in ("churn", "complaint"):
        fitted, texts = scorer.models[target].fitted, scorer.models[target].texts
        explained[target] = explain(
            fitted, frame, texts, top_k=3, never_as_reason=scorer.never_as_reason
        )

    def tier(p: float, target: str) -> int:
        return 2 if p >= getattr(cuts.high, target) else int(p >= getattr(cuts.medium, target))

    by_target = {"churn": 0, "complaint": 0}
    for i, r in enumerate(results):
        target = (
            "complaint"
            if tier(r.complaint_probability, "complaint") > tier(r.churn_probability, "churn")
            else "churn"
        )
        by_target[target] += 1
        want = [(x.feature, x.value, x.direction, x.sentence) for x in explained[target][i]]
        assert [(x.feature, x.value, x.direction, x.sentence) for x in r.reasons] == want
        assert len(r.reasons) <= 3
        assert not {x.feature for x in r.reasons} & set(scorer.never_as_reason)
    assert by_target["churn"] > 0 and by_target["complaint"] > 0  # both paths exercised


def test_tiers_and_decisions_follow_serving_tiers(scorer, book_frame, sample_ids):
    results = scorer.score_ids(sample_ids, CRM)
    cfg = scorer.config
    p_churn = np.array([r.churn_probability for r in results])
    p_complaint = np.array([r.complaint_probability for r in results])
    assert [r.risk_tier for r in results] == [
        t.lower() for t in risk_tiers(p_churn, p_complaint, cfg)
    ]
    book_scores = value_scores(book_frame, cfg)
    tiers = ValueTiers.fit(book_scores, cfg)
    frame = book_frame.set_index("customer_id").loc[sample_ids].reset_index()
    value = tiers.tier(value_scores(frame, cfg))
    assert [r.value_tier for r in results] == [t.lower() for t in value]
    decided = decide_frame(
        frame.assign(value_tier=value, risk_tier=[r.risk_tier for r in results]), cfg
    )
    assert [r.action for r in results] == decided["action"].tolist()
    assert [r.channel for r in results] == decided["channel"].tolist()
    assert [r.priority for r in results] == decided["priority"].tolist()
    assert len({r.value_tier for r in results}) == 3


def test_callback_due_is_the_most_urgent_policy_task(scorer, serving_setup):
    tasks = due_tasks_from_folder(serving_setup.bank, scorer.as_of, scorer.config)
    first = first_task_per_customer(tasks)
    ids = first.index[:200].tolist()
    assert ids, "the demo bank has due policy tasks"
    results = scorer.score_ids(ids, CRM)
    for r, (_, task) in zip(results, first.loc[ids].iterrows(), strict=True):
        assert r.callback_due == pd.Timestamp(task["deadline"]).date()
        assert r.callback_rule == task["rule"]
    others = [i for i in scorer.snapshot.ids[:300] if i not in first.index]
    assert all(r.callback_due is None for r in scorer.score_ids(others, CRM))


def test_unknown_ids_are_items_in_request_order(scorer):
    known = scorer.snapshot.ids[:2].tolist()
    ids = ["NOBODY-1", known[0], "NOBODY-2", known[1]]
    results = scorer.score_ids(ids, CRM)
    assert [r.customer_id for r in results] == ids
    assert [r.found for r in results] == [False, True, False, True]
    assert "not in the feature snapshot" in results[0].error
    assert results[0].churn_probability is None and results[0].reasons == []


def test_rm_keys_score_only_their_own_book(scorer, serving_setup):
    keys, customers = serving_setup.keys, serving_setup.customers
    own = customers.loc[customers.rm_id == keys.rm_a_id, "customer_id"].head(5).tolist()
    other = customers.loc[customers.rm_id == keys.rm_b_id, "customer_id"].head(2).tolist()
    rm_a = Principal("00000000000a", f"rm:{keys.rm_a_id}", keys.rm_a_id)
    known_own = [i for i in own if i in set(scorer.snapshot.ids)]
    assert len(scorer.score_ids(known_own, rm_a)) == len(known_own) > 0
    with pytest.raises(Forbidden) as refused:
        scorer.score_ids(known_own + other, rm_a)
    assert refused.value.refused == 2 and "2 of" in str(refused.value)
    with pytest.raises(Forbidden) as unknown:  # an unknown id is refused like another RM's
        scorer.score_ids([*known_own, "NOBODY"], rm_a)
    assert unknown.value.refused == 1
    assert len(scorer.score_ids([*other, "NOBODY"], CRM)) == 3


def test_feature_rows_score_like_the_store(scorer, book_frame):
    ids = scorer.snapshot.ids[:20].tolist()
    frame = book_frame.set_index("customer_id").loc[ids].reset_index()
    records = frame[["customer_id", *scorer.row_features]].to_dict("records")
    records = [{k: (None if pd.isna(v) else v) for k, v in r.items()} for r in records]
    by_rows = scorer.score_rows(records, CRM)
    by_ids = scorer.score_ids(ids, CRM)
    assert [r.model_dump() for r in by_rows] == [r.model_dump() for r in by_ids]
    new = dict(records[0], customer_id="WHATIF-1")
    what_if = scorer.score_rows([new], CRM)[0]
    assert what_if.found and what_if.churn_probability == by_rows[0].churn_probability
    assert what_if.callback_due is None
    rm = Principal("00000000000a", "rm:RM-NONE", "RM-NONE")
    with pytest.raises(Forbidden):
        scorer.score_rows([new], rm)


# -- start-up errors ---------------------------------------------------------------------------
def _copy_workspace(serving_setup, tmp_path, *, store: bool = True):
    from keepwell.workspace import Workspace

    src = serving_setup.workspace.root
    root = tmp_path / "ws"
    root.mkdir()
    shutil.copy(src / "mlflow.db", root / "mlflow.db")
    # a workspace is self-contained: the registry's model files come with it
    artifacts = serving_setup.config.mlflow.artifact_root
    shutil.copytree(src / artifacts, root / artifacts)
    if store:
        shutil.copytree(src / "store", root / "store")
    config = serving_setup.config.model_copy(
        update={
            "mlflow": serving_setup.config.mlflow.model_copy(
                update={"tracking_uri": f"sqlite:///{root}/mlflow.db"}
            )
        }
    )
    return Workspace.open(root, config), config


def test_missing_registry_names_train_and_promote(tmp_path, serving_setup):
    from keepwell.workspace import Workspace

    ws = Workspace.open(
        tmp_path,
        serving_setup.config.model_copy(
            update={"mlflow": serving_setup.config.mlflow.model_copy(update={"tracking_uri": None})}
        ),
    )
    with pytest.raises(ServingSetupError, match=r"keepwell train.*keepwell promote"):
        Scorer.load(ws, ws.config)


def test_missing_champion_alias_names_promote(tmp_path, serving_setup):
    from mlflow import MlflowClient

    ws, config = _copy_workspace(serving_setup, tmp_path)
    uri = f"sqlite:///{ws.root}/mlflow.db"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.delete_registered_model_alias("keepwell-complaint", "champion")
    with pytest.raises(ServingSetupError, match=r"keepwell-complaint.*champion.*keepwell promote"):
        Scorer.load(ws, config)


def test_missing_store_names_materialize(tmp_path, serving_setup):
    ws, config = _copy_workspace(serving_setup, tmp_path, store=False)
    with pytest.raises(ServingSetupError, match="keepwell features materialize"):
        Scorer.load(ws, config)


def test_store_without_a_model_feature_is_named(tmp_path, serving_setup, book_frame, scorer):
    ws, config = _copy_workspace(serving_setup, tmp_path, store=False)
    dropped = scorer.models["churn"].fitted.features[3]
    store = OnlineStore(serving_setup.workspace.path(config.paths.feature_store))
    spec = store.spec_version
    store.close()

    class Spec:  # the same spec version, one column short: the names must be checked too
        version = spec

    materialize(
        book_frame.drop(columns=[dropped, "found"]),
        ws.path(config.paths.feature_store),
        scorer.as_of,
        Spec(),
    )
    with pytest.raises(ServingSetupError, match=rf"lacks feature.*{dropped}"):
        Scorer.load(ws, config)

    class Other:
        version = "0123456789ab"

    materialize(
        book_frame.drop(columns=["found"]),
        ws.path(config.paths.feature_store),
        scorer.as_of,
        Other(),
    )
    with pytest.raises(ServingSetupError, match="feature spec 0123456789ab"):
        Scorer.load(ws, config)
