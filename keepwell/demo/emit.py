"""Turn each simulated month into the bank's event tables (what a bank would actually record)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from keepwell.config import Config
from keepwell.demo import arrow
from keepwell.demo.holdings import Holdings
from keepwell.demo.population import Customers, Rms
from keepwell.demo.process import PROTECTION, QUARTER_DAYS, RETAIL, Month, State

TXN_RATE = np.array([1.6, 2.6, 6.0], dtype=np.float32)  # transactions a month at engagement 0
SESSION_RATE = np.array([5.0, 4.0, 6.0], dtype=np.float32)  # log-ins a month at engagement 0
AUM_LOG_MEAN = np.array([10.0, 14.0, 15.8])
AUM_LOG_SD = np.array([1.0, 0.6, 0.8])
FEE_RATE = np.array([0.004, 0.001, 0.0015, 0.003])
CATEGORY_P = [0.3, 0.3, 0.1, 0.15, 0.05, 0.1]  # complaint categories, in arrow.CATEGORIES order


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
        self.holdings = Holdings(rng)
        self.initial_unsuitable = np.zeros(n, np.int16)
        weekmask = [1 if d in self.policy.working_days else 0 for d in range(7)]
        self.busday = dict(
            weekmask=weekmask, holidays=np.array(self.policy.holidays, dtype="datetime64[D]")
        )

    # ---- holdings -------------------------------------------------------------------------
    def _add_holdings(self, cust: np.ndarray, when: np.ndarray, unsuitable: np.ndarray) -> None:
        self.holdings.add(
            cust, when, unsuitable, self.p.static.segment[cust], self.p.risk_tolerance[cust]
        )

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
        rng, st = self.rng, self.p.static
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

        self._transactions(idx, lo, span, rng.poisson(TXN_RATE[seg] * np.exp(0.7 * e) * frac),
                           before, after)  # fmt: skip
        self._closing(idx[churned], churn_t[churned], lo[churned])
        rate = SESSION_RATE[seg] * (0.2 + 0.8 * st.digital[idx]) * np.exp(0.8 * e) * frac
        self._sessions(idx, lo, span, rng.poisson(rate))
        stay = idx[~churned]
        self._balances(stay, day, before, after)
        self._complaints(idx, lo, span, month, before)
        self._purchases(idx, lo, span, month, e)
        self._quarterly(idx, lo, hi, month, e)
        self._product_closures(stay, day, days, before)

    def _transactions(self, idx, lo, span, k, before: State, after: State) -> None:
        """Transactions follow engagement; flows turn outward when engagement falls."""
        rng, st = self.rng, self.p.static
        cust = np.repeat(idx, k)
        if not cust.size:
            return
        pos = np.repeat(np.arange(idx.size), k)
        t = lo[pos] + rng.random(cust.size) * span[pos]
        falling = np.clip(before.e_hist[cust, 2] - 0.5 * (before.e[cust] + after.e[cust]), -1, 1)
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

    def _closing(self, gone: np.ndarray, churn_t: np.ndarray, lo: np.ndarray) -> None:
        """The last transfer out when the relationship closes; its open products close with it."""
        if not gone.size:
            return
        self.buf["transactions"].append(
            {
                "cust": gone,
                "t": np.maximum(churn_t - 0.01, lo),
                "amount": np.round(np.exp(self.aum_log[gone]), 2),
                "out": np.ones(gone.size, bool),
                "channel": self._channels(self.p.static.digital[gone]),
                "fee": np.zeros(gone.size),
            }
        )
        self.closed[gone] = churn_t
        self.holdings.close_all_of(gone, self.closed)

    def _sessions(self, idx, lo, span, k) -> None:
        """Digital log-ins."""
        cust = np.repeat(idx, k)
        if not cust.size:
            return
        pos = np.repeat(np.arange(idx.size), k)
        rng = self.rng
        self.buf["sessions"].append(
            {
                "cust": cust,
                "t": lo[pos] + rng.random(cust.size) * span[pos],
                "app": rng.random(cust.size) < 0.75,
            }
        )

    def _balances(self, stay: np.ndarray, day: int, before: State, after: State) -> None:
        """AUM follows engagement against the customer's own level (never -25 % a month or
        worse); the month's closing balance is recorded against the month (known from the next
        month on)."""
        change = (
            0.003 + 0.6 * (after.e[stay] - before.e[stay]) + self.rng.normal(0, 0.02, stay.size)
        )
        self.aum_log[stay] += np.maximum(change, np.log(0.75))
        self.buf["balances"].append(
            {"cust": stay, "t": np.full(stay.size, float(day)), "aum": np.exp(self.aum_log[stay])}
        )

    def _product_closures(self, stay: np.ndarray, day: int, days: int, before: State) -> None:
        decline = np.zeros(self.p.index.size)
        decline[stay] = np.maximum(0.0, before.e_hist[stay, 2] - before.e[stay])
        self.holdings.close_some(stay, decline, self.p.risk_tolerance, day, days)

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
            rng.choice(len(arrow.CATEGORIES), n, p=CATEGORY_P),
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
        ids, tag = self.p.customer_id, f"{self.p.index[0]:08d}"
        held, balance = self.holdings.at_end(np.exp(self.aum_log))
        callbacks = self._stack("callbacks")
        _no_reach_after_closing(callbacks, self.closed)
        return {
            "customers": arrow.customers_table(self.p, self.rms, self.closed),
            "holdings": arrow.holdings_table(ids, held, balance, tag),
            "balances": arrow.balances_table(ids, self._stack("balances")),
            "transactions": arrow.transactions_table(ids, self._stack("transactions")),
            "sessions": arrow.sessions_table(ids, self._stack("sessions")),
            "complaints": arrow.complaints_table(ids, self._stack("complaints"), tag),
            "callbacks": arrow.callbacks_table(ids, callbacks, tag),
            "oracle": arrow.oracle_table(ids, oracle_parts),
        }


def _no_reach_after_closing(k: dict[str, np.ndarray], closed: np.ndarray) -> None:
    """A call planned to reach the customer after the relationship closed found no one."""
    if not k:
        return
    gone = closed[k["cust"]]
    after = ~np.isnan(k["done"]) & ~np.isnan(gone) & (k["done"] >= gone)
    if after.any():
        k["done"] = np.where(after, np.nan, k["done"])
        k["satisfaction"] = np.where(after, np.nan, k["satisfaction"])
        k["outcome"] = np.where(after, "no_answer", k["outcome"]).astype(object)
