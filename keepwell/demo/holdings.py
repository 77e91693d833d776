"""The demo bank's product holdings: sold (suitable or not), closed, and valued at the end."""

from __future__ import annotations

import numpy as np

from keepwell.demo.arrow import PRODUCTS
from keepwell.demo.process import HNW, INSTITUTIONAL, RETAIL

PRODUCT_RISK = np.array([1, 3, 2, 4, 2, 5, 2], dtype=np.int8)  # usual risk level of each type
PRODUCT_P = {
    RETAIL: [0.35, 0.2, 0.08, 0.07, 0.12, 0.03, 0.15],
    HNW: [0.15, 0.25, 0.15, 0.2, 0.08, 0.12, 0.05],
    INSTITUTIONAL: [0.3, 0.2, 0.25, 0.1, 0.02, 0.08, 0.05],
}
COLUMNS = ("cust", "type", "risk", "open", "close")


class Holdings:
    """Every product of one chunk of customers, as growing arrays (close is NaN while open)."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.cust = np.zeros(0, np.int32)
        self.type = np.zeros(0, np.int8)
        self.risk = np.zeros(0, np.int8)
        self.open = np.zeros(0, np.float64)
        self.close = np.zeros(0, np.float64)

    def add(self, cust, when, unsuitable, segment, tolerance) -> None:
        """New products for `cust` (their `segment` and risk `tolerance`), opened `when`: an
        unsuitable one carries more risk than the customer tolerates."""
        ptype = np.empty(cust.size, np.int8)
        for s in (RETAIL, HNW, INSTITUTIONAL):
            m = segment == s
            ptype[m] = self.rng.choice(len(PRODUCTS), size=int(m.sum()), p=PRODUCT_P[s])
        tol = tolerance.astype(np.int16)
        usual = PRODUCT_RISK[ptype].astype(np.int16)
        suitable_risk = np.minimum(usual, tol)
        above = tol + 1 + (self.rng.random(cust.size) * np.maximum(5 - tol, 1)).astype(np.int16)
        risk = np.where(unsuitable, np.minimum(above, 5), suitable_risk).astype(np.int8)
        self.cust = np.concatenate([self.cust, cust.astype(np.int32)])
        self.type = np.concatenate([self.type, ptype])
        self.risk = np.concatenate([self.risk, risk])
        self.open = np.concatenate([self.open, when])
        self.close = np.concatenate([self.close, np.full(cust.size, np.nan)])

    def close_all_of(self, gone: np.ndarray, closed: np.ndarray) -> None:
        """The open products of customers who left close with the relationship (`closed[i]`)."""
        open_h = np.isin(self.cust, gone) & np.isnan(self.close)
        self.close[open_h] = closed[self.cust[open_h]]

    def close_some(self, stay, decline, tolerance, day: int, days: int) -> None:
        """Suitable products of staying customers close now and then, more likely while
        engagement falls (`decline` per customer)."""
        open_h = np.isnan(self.close) & np.isin(self.cust, stay)
        suitable = self.risk <= tolerance[self.cust]
        pclose = 0.008 + 0.04 * (decline[self.cust] > 0.3)
        closing = open_h & suitable & (self.rng.random(self.cust.size) < pclose) & (self.open < day)
        self.close[closing] = day + self.rng.random(int(closing.sum())) * days

    def at_end(self, aum: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The holdings by customer and opening, and their balances at the end of the data: the
        customer's assets `aum` split over the open holdings (loans: 30 % of the assets)."""
        order = np.lexsort((self.open, self.cust))
        arrays = (self.cust, self.type, self.risk, self.open, self.close)
        h = {k: a[order] for k, a in zip(COLUMNS, arrays, strict=True)}
        hc, is_open, loan = h["cust"], np.isnan(h["close"]), PRODUCTS[h["type"]] == "loan"
        w = np.where(is_open & ~loan, self.rng.random(hc.size) + 0.2, 0.0)
        total = np.bincount(hc, weights=w, minlength=aum.size)
        assets = aum[hc]
        balance = np.where(w > 0, assets * w / np.maximum(total[hc], 1e-9), 0.0)
        return h, np.where(is_open & loan, assets * 0.3, balance)
