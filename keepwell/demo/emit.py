"""Turn each simulated month into the bank's event tables (what a bank would actually record)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from keepwell.config import SEGMENTS, Config
from keepwell.demo.arrow import _ts
from keepwell.demo.population import Customers, Rms
from keepwell.demo.process import HNW, INSTITUTIONAL, PROTECTION, QUARTER_DAYS, RETAIL, Month, State

PRODUCTS = np.array(["deposit", "fund", "bond", "equity", "insurance", "structured", "loan"])
PRODUCT_RISK = np.array([1, 3, 2, 4, 2, 5, 2], dtype=np.int8)  # usual risk level of each type
PRODUCT_P = {
    RETAIL: [0.35, 0.2, 0.08, 0.07, 0.12, 0.03, 0.15],
    HNW: [0.15, 0.25, 0.15, 0.2, 0.08, 0.12, 0.05],
    INSTITUTIONAL: [0.3, 0.2, 0.25, 0.1, 0.02, 0.08, 0.05],
}
TXN_RATE = np.array([1.6, 2.6, 6.0], dtype=np.float32)  # transactions a month at engagement 0
SESSION_RATE = np.array([5.0, 4.0, 6.0], dtype=np.float32)  # log-ins a month at engagement 0
AUM_LOG_MEAN = np.array([10.0, 14.0, 15.8])
AUM_LOG_SD = np.array([1.0, 0.6, 0.8])
CHANNELS = np.array(["branch", "app", "web", "phone"])
FEE_RATE = np.array([0.004, 0.001, 0.0015, 0.003])
CATEGORIES = np.array(["fees", "service", "product", "digital", "advice", "other"])
SEVERITIES = np.array(["low", "medium", "high"])


class Book:
    """Everything recorded about one chunk of customers, month by month."""

    def __init__(
        self,
        people: Customers,
        rms: Rms,
        start_day: int,
        end_day: int,
        config: Config,
        rng: np.random.Generator,
    ):
        self.p, self.rms, self.rng = people, rms, rng
        self.start_day, self.end_day = start_day, end_day
        self.policy = config.policy
        n = people.index.size
        seg = people.static.segment
        self.aum_log = rng.normal(AUM_LOG_MEAN[seg], AUM_LOG_SD[seg]).astype(np.float64)
        self.closed = np.full(n, np.nan)
        self.buf: dict[str, list[dict[str, np.ndarray]]] = {
            k: [] for k in ("balances", "transactions", "sessions", "complaints", "callbacks")
        }
        # holdings as growing arrays
        self.h_cust = np.zeros(0, np.int32)
        self.h_type = np.zeros(0, np.int8)
        self.h_risk = np.zeros(0, np.int8)
        self.h_open = np.zeros(0, np.float64)
        self.h_close = np.zeros(0, np.float64)
        self.initial_unsuitable = np.zeros(n, np.int16)
        weekmask = [1 if d in self.policy.working_days else 0 for d in range(7)]
        self.busday = dict(
            weekmask=weekmask, holidays=np.array(self.policy.holidays, dtype="datetime64[D]")
        )

    # ---- holdings -------------------------------------------------------------------------
    def _add_holdings(self, cust: np.ndarray, when: np.ndarray, unsuitable: np.ndarray) -> None:
        seg = self.p.static.segment[cust]
        ptype = np.empty(cust.size, np.int8)
        for s in (RETAIL, HNW, INSTITUTIONAL):
            m = seg == s
            ptype[m] = self.rng.choice(len(PRODUCTS), size=int(m.sum()), p=PRODUCT_P[s])
        tol = self.p.risk_tolerance[cust].astype(np.int16)
        usual = PRODUCT_RISK[ptype].astype(np.int16)
        suitable_risk = np.minimum(usual, tol)
        above = tol + 1 + (self.rng.random(cust.size) * np.maximum(5 - tol, 1)).astype(np.int16)
        risk = np.where(unsuitable, np.minimum(above, 5), suitable_risk).astype(np.int8)
        self.h_cust = np.concatenate([self.h_cust, cust.astype(np.int32)])
        self.h_type = np.concatenate([self.h_type, ptype])
        self.h_risk = np.concatenate([self.h_risk, risk])
        self.h_open = np.concatenate([self.h_open, when])
        self.h_close = np.concatenate([self.h_close, np.full(cust.size, np.nan)])

    def initial_holdings(self, static) -> np.ndarray:
        n = static.mu.size
        count = 1 + self.rng.poisson(np.where(static.segment == RETAIL, 1.0, 2.0))
        cust = np.repeat(np.arange(n), count)
        later = np.arange(cust.size) != np.searchsorted(cust, cust)  # not the opening product
        room = np.clip(self.start_day - 1 - static.opened_day[cust], 0, 400)
        opened = static.opened_day[cust] + 0.4 + later * self.rng.random(cust.size) * room
        unsuitable = self.rng.random(cust.size) < static.missell[cust]
        self._add_holdings(cust, opened, unsuitable)
        self.initial_unsuitable = np.bincount(cust, weights=unsuitable, minlength=n).astype(
            np.int16
        )
        return self.initial_unsuitable

    def reset_joiners(self, state: State, static, mask: np.ndarray) -> None:
        k = int(mask.sum())
        e = (static.mu[mask] + self.rng.normal(0, 0.4, k)).astype(np.float32)
        state.e[mask] = e
        state.e_hist[mask] = e[:, None]
        state.episode_left[mask] = 0
        state.since_complaint[mask] = 99
        state.since_breach[mask] = 99
        state.unsuitable[mask] = self.initial_unsuitable[mask]
        opened = static.opened_day[mask].astype(np.float64) + 0.4
        state.next_quarterly[mask] = (
            opened + self.policy.first_callback_days + QUARTER_DAYS
        ).astype(np.int32)
        # the opening sale's first callback
        cust = np.flatnonzero(mask)
        holdout = self.rng.random(k) < self.policy.holdout_share
        reached = ~holdout & (self.rng.random(k) < 0.8)
        state.protection[mask] = np.where(
            reached[:, None], [0.0, PROTECTION[0], PROTECTION[1]], 0.0
        )
        self._callbacks(
            cust, opened, opened + self.policy.first_callback_days, "post_sale", holdout, reached
        )

    # ---- callbacks ------------------------------------------------------------------------
    def _callbacks(self, cust, created, due, reason, holdout, reached, e=None) -> None:
        n = cust.size
        if n == 0:
            return
        r = self.rng.random((4, n))
        late = r[0] < 0.15
        window = np.maximum(due - created, 0.05)
        done = np.where(late, due + 1 + 19 * r[1], due - r[1] * np.minimum(window, 5.0))
        done = np.maximum(done, created + 0.02)
        outcome = np.where(
            holdout,
            "holdout",
            np.where(reached, "reached", np.where(r[2] < 0.7, "no_answer", "declined")),
        )
        # what is not known by the end of the data is still open
        unknown = np.where(reached, done >= self.end_day, due >= self.end_day) & ~holdout
        outcome = np.where(unknown, None, outcome).astype(object)
        is_done = reached & ~unknown
        eng = np.zeros(n) if e is None else e
        # survey answers reveal engagement and the customer's propensity to complain
        grumpy = self.p.static.propensity[cust]
        sat = np.clip(np.round(3.8 + 0.5 * eng - 0.6 * grumpy + self.rng.normal(0, 0.6, n)), 1, 5)
        answered = is_done & (r[3] < 0.6)
        self.buf["callbacks"].append(
            {
                "cust": cust,
                "t": due,
                "reason": np.full(n, reason, dtype=object),
                "due": due,
                "done": np.where(is_done, done, np.nan),
                "outcome": outcome,
                "satisfaction": np.where(answered, sat, np.nan),
            }
        )

    # ---- one month ------------------------------------------------------------------------
    def emit_month(
        self,
        day: int,
        days: int,
        before: State,
        after: State,
        month: Month,
        present: np.ndarray,
    ) -> None:
        rng, p, st = self.rng, self.p, self.p.static
        idx = np.flatnonzero(present)
        if idx.size == 0:
            return
        seg = st.segment[idx]
        e = 0.5 * (before.e[idx] + after.e[idx])  # engagement moves through the month
        lo = np.maximum(float(day), st.opened_day[idx] + 0.4)
        hi = np.full(idx.size, float(day + days))
        churned = month.churned[idx]
        churn_t = lo + rng.random(idx.size) * (hi - lo)
        hi = np.where(churned, churn_t, hi)
        span = np.maximum(hi - lo, 0.0)
        frac = span / days

        # transactions follow engagement; flows turn outward when engagement falls
        k = rng.poisson(TXN_RATE[seg] * np.exp(0.7 * e) * frac)
        cust = np.repeat(idx, k)
        if cust.size:
            pos = np.repeat(np.arange(idx.size), k)
            t = lo[pos] + rng.random(cust.size) * span[pos]
            falling = np.clip(
                before.e_hist[cust, 2] - 0.5 * (before.e[cust] + after.e[cust]), -1, 1
            )
            out = rng.random(cust.size) < 1 / (1 + np.exp(-(0.1 + 1.6 * falling)))
            amount = np.exp(
                np.log(np.exp(self.aum_log[cust]) * 0.03 + 40) + rng.normal(0, 0.8, cust.size)
            )
            channel = self._channels(st.digital[cust])
            fee = amount * FEE_RATE[channel] * (0.5 + rng.random(cust.size))
            self.buf["transactions"].append(
                {
                    "cust": cust,
                    "t": t,
                    "amount": np.round(amount, 2),
                    "out": out,
                    "channel": channel,
                    "fee": np.round(fee, 2),
                }
            )
        # the last transfer out when the relationship closes
        gone = idx[churned]
        if gone.size:
            t = np.maximum(churn_t[churned] - 0.01, lo[churned])
            self.buf["transactions"].append(
                {
                    "cust": gone,
                    "t": t,
                    "amount": np.round(np.exp(self.aum_log[gone]), 2),
                    "out": np.ones(gone.size, bool),
                    "channel": self._channels(st.digital[gone]),
                    "fee": np.zeros(gone.size),
                }
            )
            self.closed[gone] = churn_t[churned]
            open_h = np.isin(self.h_cust, gone) & np.isnan(self.h_close)
            self.h_close[open_h] = self.closed[self.h_cust[open_h]]

        # digital log-ins
        k = rng.poisson(SESSION_RATE[seg] * (0.2 + 0.8 * st.digital[idx]) * np.exp(0.8 * e) * frac)
        cust = np.repeat(idx, k)
        if cust.size:
            pos = np.repeat(np.arange(idx.size), k)
            self.buf["sessions"].append(
                {
                    "cust": cust,
                    "t": lo[pos] + rng.random(cust.size) * span[pos],
                    "app": rng.random(cust.size) < 0.75,
                }
            )

        # AUM follows engagement against the customer's own level (never more than -25 % a month)
        stay = idx[~churned]
        change = 0.003 + 0.6 * (after.e[stay] - before.e[stay]) + rng.normal(0, 0.02, stay.size)
        self.aum_log[stay] += np.maximum(change, np.log(0.75))
        # the month's closing balance, recorded against the month (known from the next month on)
        self.buf["balances"].append(
            {"cust": stay, "t": np.full(stay.size, float(day)), "aum": np.exp(self.aum_log[stay])}
        )

        self._complaints(idx, lo, span, month, before)
        self._purchases(idx, lo, span, month, e)
        self._quarterly(idx, lo, hi, month, e)
        # product closures: more likely while engagement falls
        decline = np.zeros(self.p.index.size)
        decline[stay] = np.maximum(0.0, before.e_hist[stay, 2] - before.e[stay])
        open_h = np.isnan(self.h_close) & np.isin(self.h_cust, stay)
        suitable = self.h_risk <= p.risk_tolerance[self.h_cust]
        pclose = 0.008 + 0.04 * (decline[self.h_cust] > 0.3)
        closing = open_h & suitable & (rng.random(self.h_cust.size) < pclose) & (self.h_open < day)
        self.h_close[closing] = day + rng.random(int(closing.sum())) * days

    def _channels(self, digital: np.ndarray) -> np.ndarray:
        r = self.rng.random(digital.size)
        branch = r < (1 - digital) * 0.6
        phone = ~branch & (r < (1 - digital))
        app = ~branch & ~phone & (r < (1 - digital) + digital * 0.7)
        return np.where(branch, 0, np.where(phone, 3, np.where(app, 1, 2))).astype(np.int8)

    def _complaints(self, idx, lo, span, month: Month, before: State) -> None:
        k = month.complaints[idx]
        if not k.any():
            return
        rng = self.rng
        pos = np.repeat(np.arange(idx.size), k)
        cust = idx[pos]
        first = np.r_[True, pos[1:] != pos[:-1]]
        n = cust.size
        opened = lo[pos] + rng.random(n) * span[pos]
        fr_breach = month.first_response_breach[cust] & first
        res_breach = month.resolution_breach[cust] & first
        response_h = np.where(
            fr_breach, 24.5 + rng.exponential(20, n), 0.5 + 22.5 * rng.beta(1.5, 3, n)
        )
        first_response = opened + response_h / 24
        wd = np.where(
            res_breach, 8 + rng.geometric(0.35, n) - 1, 1 + np.floor(6 * rng.beta(1.3, 2.2, n))
        )
        open_day = np.floor(opened).astype("int64").astype("datetime64[D]")
        resolved_day = np.busday_offset(
            open_day, wd.astype(np.int64), roll="forward", **self.busday
        )
        resolved = resolved_day.astype(np.int64) + 0.375 + 0.35 * rng.random(n)
        resolved = np.maximum(resolved, first_response + 1 / 24)
        unsuitable = before.unsuitable[cust] > 0
        r = rng.random(n)
        category = np.where(
            unsuitable & (r < 0.6),
            np.where(r < 0.35, 4, 2),
            rng.choice(len(CATEGORIES), n, p=[0.3, 0.3, 0.1, 0.15, 0.05, 0.1]),
        )
        severity = np.where(
            fr_breach | res_breach,
            rng.choice(3, n, p=[0.2, 0.4, 0.4]),
            rng.choice(3, n, p=[0.5, 0.35, 0.15]),
        )
        self.buf["complaints"].append(
            {
                "cust": cust,
                "t": opened,
                "first_response": np.where(first_response < self.end_day, first_response, np.nan),
                "resolved": np.where(resolved < self.end_day, resolved, np.nan),
                "category": category,
                "severity": severity,
            }
        )
        # the 48-hour feedback call after a complaint
        reached = month.complaint_callback_reached[cust] & first
        self._callbacks(
            cust,
            opened,
            opened + self.policy.complaint_feedback_hours / 24,
            "complaint",
            np.zeros(n, bool),
            reached,
            before.e[cust],
        )

    def _purchases(self, idx, lo, span, month: Month, e) -> None:
        buy = month.purchase[idx] & (span > 0)
        if not buy.any():
            return
        cust = idx[buy]
        t = lo[buy] + self.rng.random(cust.size) * span[buy]
        self._add_holdings(cust, t, month.unsuitable_sale[cust])
        due = t + self.policy.first_callback_days
        self._callbacks(
            cust,
            t,
            due,
            "post_sale",
            month.post_sale_holdout[cust],
            month.post_sale_reached[cust],
            e[buy],
        )

    def _quarterly(self, idx, lo, hi, month: Month, e) -> None:
        due_day = month.quarterly_due_day[idx] + 0.5
        due = month.quarterly_due[idx] & (due_day < hi)
        if not due.any():
            return
        cust = idx[due]
        t = np.maximum(due_day[due], lo[due])
        self._callbacks(
            cust,
            t - 7,
            t,
            "quarterly",
            month.quarterly_holdout[cust],
            month.quarterly_reached[cust],
            e[due],
        )

    # ---- tables ---------------------------------------------------------------------------
    def _stack(self, name: str) -> dict[str, np.ndarray]:
        parts = self.buf[name]
        if not parts:
            return {}
        cols = {k: np.concatenate([part[k] for part in parts]) for k in parts[0]}
        order = np.lexsort((cols["t"], cols["cust"]))
        return {k: v[order] for k, v in cols.items()}

    def tables(self, oracle_parts) -> dict[str, pa.Table]:
        p, ids = self.p, self.p.customer_id
        chunk_tag = f"{p.index[0]:08d}"
        seg_names = np.array(SEGMENTS)
        st = p.static
        out: dict[str, pa.Table] = {}
        birth_valid = ~p.kind_corporate
        out["customers"] = pa.table(
            {
                "customer_id": pa.array(ids, pa.string()),
                "segment": pa.array(seg_names[st.segment], pa.string()),
                "kind": pa.array(
                    np.where(p.kind_corporate, "corporate", "individual"), pa.string()
                ),
                "birth_date": pa.array(
                    np.where(birth_valid, p.birth_day, 0).astype(np.int32),
                    pa.int32(),
                    mask=~birth_valid,
                ).cast(pa.date32()),
                "income_band": pa.array(p.income_band.tolist(), pa.string()),
                "risk_tolerance": pa.array(p.risk_tolerance, pa.int8()),
                "disabled": pa.array(p.disabled, pa.bool_()),
                "rm_id": pa.array(self.rms.rm_id[p.rm], pa.string()),
                "branch_id": pa.array(self.rms.branch_id[p.rm], pa.string()),
                "opened_at": _ts(st.opened_day + 0.375),
                "closed_at": _ts(self.closed, ~np.isnan(self.closed)),
                "name": pa.array(p.name, pa.string()),
                "phone": pa.array(p.phone, pa.string()),
            }
        )
        # holdings: balances at the end of the data, split over the open holdings
        order = np.lexsort((self.h_open, self.h_cust))
        hc, ht, hr, ho, hx = (
            a[order] for a in (self.h_cust, self.h_type, self.h_risk, self.h_open, self.h_close)
        )
        is_open = np.isnan(hx)
        w = np.where(is_open & (PRODUCTS[ht] != "loan"), self.rng.random(hc.size) + 0.2, 0.0)
        total = np.bincount(hc, weights=w, minlength=ids.size)
        balance = np.where(w > 0, np.exp(self.aum_log[hc]) * w / np.maximum(total[hc], 1e-9), 0.0)
        balance = np.where(
            is_open & (PRODUCTS[ht] == "loan"), np.exp(self.aum_log[hc]) * 0.3, balance
        )
        out["holdings"] = pa.table(
            {
                "customer_id": pa.array(ids[hc], pa.string()),
                "product_id": pa.array(
                    np.char.add(f"P{chunk_tag}-", np.arange(hc.size).astype(str)), pa.string()
                ),
                "product_type": pa.array(PRODUCTS[ht], pa.string()),
                "product_risk": pa.array(hr, pa.int8()),
                "opened_at": _ts(ho),
                "closed_at": _ts(hx, ~is_open),
                "balance": pa.array(np.round(balance, 2), pa.float64()),
            }
        )
        b = self._stack("balances")
        out["balances"] = pa.table(
            {
                "customer_id": pa.array(ids[b["cust"]], pa.string()),
                "month": pa.array(b["t"].astype(np.int32), pa.int32()).cast(pa.date32()),
                "aum": pa.array(np.round(b["aum"], 2), pa.float64()),
            }
        )
        t = self._stack("transactions")
        out["transactions"] = pa.table(
            {
                "customer_id": pa.array(ids[t["cust"]], pa.string()),
                "ts": _ts(t["t"]),
                "amount": pa.array(t["amount"], pa.float64()),
                "direction": pa.array(np.where(t["out"], "out", "in"), pa.string()),
                "channel": pa.array(CHANNELS[t["channel"]], pa.string()),
                "fee": pa.array(t["fee"], pa.float64()),
            }
        )
        s = self._stack("sessions")
        out["sessions"] = pa.table(
            {
                "customer_id": pa.array(ids[s["cust"]], pa.string()),
                "ts": _ts(s["t"]),
                "channel": pa.array(np.where(s["app"], "app", "web"), pa.string()),
            }
        )
        c = self._stack("complaints")
        out["complaints"] = pa.table(
            {
                "complaint_id": pa.array(
                    np.char.add(f"CP{chunk_tag}-", np.arange(c["cust"].size).astype(str)),
                    pa.string(),
                ),
                "customer_id": pa.array(ids[c["cust"]], pa.string()),
                "opened_at": _ts(c["t"]),
                "first_response_at": _ts(c["first_response"], ~np.isnan(c["first_response"])),
                "resolved_at": _ts(c["resolved"], ~np.isnan(c["resolved"])),
                "category": pa.array(CATEGORIES[c["category"]], pa.string()),
                "severity": pa.array(SEVERITIES[c["severity"]], pa.string()),
            }
        )
        k = self._stack("callbacks")
        sat = k["satisfaction"]
        out["callbacks"] = pa.table(
            {
                "callback_id": pa.array(
                    np.char.add(f"CB{chunk_tag}-", np.arange(k["cust"].size).astype(str)),
                    pa.string(),
                ),
                "customer_id": pa.array(ids[k["cust"]], pa.string()),
                "reason": pa.array(k["reason"].tolist(), pa.string()),
                "due_at": _ts(k["due"]),
                "done_at": _ts(k["done"], ~np.isnan(k["done"])),
                "outcome": pa.array(k["outcome"].tolist(), pa.string()),
                "satisfaction": pa.array(
                    np.nan_to_num(sat).astype(np.int8), pa.int8(), mask=np.isnan(sat)
                ),
            }
        )
        if oracle_parts:
            idx, day, pc, pq_, eff = (np.concatenate(x) for x in zip(*oracle_parts, strict=True))
        else:
            idx = day = np.zeros(0, np.int32)
            pc = pq_ = eff = np.zeros(0, np.float32)
        order = np.lexsort((day, idx))
        out["oracle"] = pa.table(
            {
                "customer_id": pa.array(ids[idx[order]], pa.string()),
                "as_of": pa.array(day[order], pa.int32()).cast(pa.date32()),
                "p_churn": pa.array(pc[order].astype(np.float64), pa.float64()),
                "p_complaint": pa.array(pq_[order].astype(np.float64), pa.float64()),
                "callback_effect": pa.array(eff[order].astype(np.float64), pa.float64()),
            }
        )
        return out
