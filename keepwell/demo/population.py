"""Who is in the demo bank: RMs, branches and customers and their fixed traits."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from keepwell.config import SEGMENTS, Config, DemoConfig
from keepwell.demo.process import HNW, INSTITUTIONAL, RETAIL, Static

FIRST = np.array(
    [
        "Ada",
        "Ben",
        "Cara",
        "Dev",
        "Eli",
        "Fay",
        "Gus",
        "Hana",
        "Ivo",
        "Jia",
        "Kai",
        "Lea",
        "Max",
        "Nia",
        "Oto",
        "Pia",
        "Quin",
        "Rui",
        "Sol",
        "Tao",
        "Uma",
        "Vic",
        "Wen",
        "Xia",
        "Yan",
        "Zoe",
        "Aron",
        "Bela",
        "Cleo",
        "Dara",
    ]
)
LAST = np.array(
    [
        "Abbott",
        "Barros",
        "Chen",
        "Duval",
        "Ekwueme",
        "Fischer",
        "Garcia",
        "Haddad",
        "Ito",
        "Jensen",
        "Kowal",
        "Li",
        "Moreau",
        "Nakamura",
        "Okafor",
        "Petrov",
        "Quispe",
        "Rossi",
        "Silva",
        "Tanaka",
        "Ueda",
        "Varga",
        "Wang",
        "Xu",
        "Yilmaz",
        "Zhou",
    ]
)
DAY = np.timedelta64(1, "D")


@dataclass(frozen=True)
class Rms:
    rm_id: np.ndarray
    branch_id: np.ndarray
    capacity: np.ndarray
    segment: np.ndarray  # the book each RM serves
    branch_bad: np.ndarray  # service quality of the RM's branch (positive = worse)
    missell: np.ndarray  # share of the RM's sales that do not suit the customer


def make_rms(demo: DemoConfig, config: Config, rng: np.random.Generator) -> Rms:
    mix = np.array([demo.segment_mix.get(s, 0.0) for s in SEGMENTS])
    weight = mix * np.array([1.0, 3.0, 6.0])  # richer books get more RMs per customer
    n = max(len(SEGMENTS), round(demo.customers / demo.customers_per_rm))
    per_segment = np.maximum((weight / weight.sum() * n).round().astype(int), (mix > 0).astype(int))
    segment = np.repeat(np.arange(3, dtype=np.int8), per_segment)
    count = len(segment)
    branch = np.arange(count) // demo.rms_per_branch
    n_branches = int(branch.max()) + 1
    branch_quality = rng.normal(0.0, 0.6, n_branches).astype(np.float32)
    capacity_by_segment = np.array([config.capacity.rm_calls_per_day[s] for s in SEGMENTS])
    capacity = np.maximum(1, np.round(capacity_by_segment[segment] * rng.uniform(0.8, 1.2, count)))
    missell = np.where(
        rng.random(count) < 0.15, rng.uniform(0.15, 0.35, count), rng.uniform(0.01, 0.06, count)
    )
    return Rms(
        rm_id=np.array([f"RM{i:05d}" for i in range(count)]),
        branch_id=np.array([f"BR{b:04d}" for b in branch]),
        capacity=capacity.astype(np.int64),
        segment=segment,
        branch_bad=branch_quality[branch],
        missell=missell.astype(np.float32),
    )


@dataclass
class Customers:
    index: np.ndarray  # global customer number
    customer_id: np.ndarray
    rm: np.ndarray  # index into Rms
    kind_corporate: np.ndarray
    birth_day: np.ndarray  # int32 day number (meaningless for corporate customers)
    income_band: np.ndarray  # object, None for corporate
    risk_tolerance: np.ndarray
    disabled: np.ndarray
    name: np.ndarray
    phone: np.ndarray
    static: Static


INCOME_BANDS = np.array(["low", "middle", "high", "very_high"], dtype=object)
INCOME_P = {
    RETAIL: [0.35, 0.45, 0.2, 0.0],
    HNW: [0.0, 0.0, 0.3, 0.7],
    INSTITUTIONAL: [0.0, 0, 0, 1],
}
TOLERANCE_P = {  # risk tolerance 1-5
    RETAIL: [0.15, 0.3, 0.3, 0.18, 0.07],
    HNW: [0.05, 0.15, 0.3, 0.3, 0.2],
    INSTITUTIONAL: [0.1, 0.3, 0.4, 0.15, 0.05],
}


def _income_and_tolerance(segment: np.ndarray, rng: np.random.Generator):
    """Income band and risk tolerance, drawn by segment (companies have no income band)."""
    n = segment.size
    income = np.empty(n, dtype=object)
    tolerance = np.empty(n, dtype=np.int8)
    for s in (RETAIL, HNW, INSTITUTIONAL):
        m = segment == s
        income[m] = rng.choice(INCOME_BANDS, size=int(m.sum()), p=INCOME_P[s])
        tolerance[m] = rng.choice(np.arange(1, 6), size=int(m.sum()), p=TOLERANCE_P[s])
    income[segment == INSTITUTIONAL] = None
    return income, tolerance


def _assign_rms(segment: np.ndarray, rms: Rms, rng: np.random.Generator) -> np.ndarray:
    """Each customer's RM, drawn from the RMs of the customer's segment."""
    rm = np.empty(segment.size, dtype=np.int32)
    for s in (RETAIL, HNW, INSTITUTIONAL):
        m = segment == s
        pool = np.flatnonzero(rms.segment == s)
        rm[m] = pool[rng.integers(0, len(pool), int(m.sum()))]
    return rm


def _opened_days(n: int, start_day: int, end_day: int, rng: np.random.Generator) -> np.ndarray:
    """When each relationship opened: some join during the data, the rest before it."""
    months = (end_day - start_day) / 30.44
    joiner = rng.random(n) < min(0.35, 0.015 * months)
    tenure = 30 + rng.exponential(6 * 365, n)
    return np.where(
        joiner, rng.integers(start_day, end_day - 1, n), start_day - np.minimum(tenure, 30 * 365)
    ).astype(np.int32)


def _names_and_phones(corporate: np.ndarray, rng: np.random.Generator):
    """Made-up names (companies: "<Last> Holdings Ltd") and numbers from the fictional range."""
    n = corporate.size
    first_names = FIRST[rng.integers(0, len(FIRST), n)]
    last_names = LAST[rng.integers(0, len(LAST), n)]
    name = np.where(
        corporate,
        np.char.add(last_names.astype(str), " Holdings Ltd"),
        np.char.add(np.char.add(first_names.astype(str), " "), last_names.astype(str)),
    )
    phone = np.char.add("+44 7700 900", np.char.zfill(rng.integers(0, 1000, n).astype(str), 3))
    return name, phone


def make_customers(
    demo: DemoConfig,
    rms: Rms,
    first: int,
    n: int,
    start_day: int,
    end_day: int,
    rng: np.random.Generator,
) -> Customers:
    index = np.arange(first, first + n)
    mix = np.array([demo.segment_mix.get(s, 0.0) for s in SEGMENTS])
    segment = rng.choice(3, size=n, p=mix).astype(np.int8)
    corporate = segment == INSTITUTIONAL
    elderly = ~corporate & (rng.random(n) < demo.elderly_share)
    age = np.where(elderly, rng.uniform(65, 92, n), rng.uniform(19, 64.9, n))
    birth_day = np.where(corporate, -1, start_day - (age * 365.25).astype(np.int32)).astype(
        np.int32
    )
    disabled = ~corporate & (rng.random(n) < demo.disabled_share)
    income, tolerance = _income_and_tolerance(segment, rng)
    digital_mean = np.clip(0.9 - 0.012 * (age - 22), 0.08, 0.9)
    digital_mean = np.where(corporate, 0.5, digital_mean)
    digital = rng.beta(digital_mean * 4, (1 - digital_mean) * 4).astype(np.float32)
    rm = _assign_rms(segment, rms, rng)
    opened_day = _opened_days(n, start_day, end_day, rng)
    missell = np.where(tolerance >= 5, 0.0, rms.missell[rm]).astype(np.float32)
    static = Static(
        segment=segment,
        mu=rng.normal(0.0, 0.7, n).astype(np.float32),
        frailty=rng.normal(0.0, 0.12, n).astype(np.float32),
        propensity=rng.normal(0.0, 1.0, n).astype(np.float32),
        digital=digital,
        receptive=(
            1.0 - 1.5 * digital + 0.4 * (segment == HNW) + 0.3 * elderly + rng.normal(0, 0.2, n)
        ).astype(np.float32),
        elderly=elderly,
        branch_bad=rms.branch_bad[rm],
        missell=missell,
        opened_day=opened_day,
    )
    name, phone = _names_and_phones(corporate, rng)
    return Customers(
        index=index,
        customer_id=np.char.add("C", np.char.zfill(index.astype(str), 8)),
        rm=rm,
        kind_corporate=corporate,
        birth_day=birth_day,
        income_band=income,
        risk_tolerance=tolerance,
        disabled=disabled,
        name=name,
        phone=phone,
        static=static,
    )
