"""The demo bank's causal process: one monthly transition shared by the simulation and the oracle.

Every customer carries a latent *engagement* that drifts month by month (mean reversion to a
personal level, noise, and disengagement episodes that service failures make more likely). What the
bank sees follows it: transactions, log-ins, AUM, product purchases and closures. Each month:

* churn hazard rises with engagement below the customer's own level and a falling trend (the
  early warnings), a little with a low personal level, recent
  complaints and SLA breaches (grievance), unsuitable products and a new relationship, and falls
  while a completed callback protects the customer (weights 1.0, 0.6, 0.3 over the three months
  after it) by the customer's *callback effect* ``tau`` on the log-odds;
* complaint hazard rises with unsuitable products, a badly run branch, a personal propensity to
  complain, low engagement, a recent complaint, and an unobserved service failure (4 % a month);
* complaints breach the 24-hour first response or the 7-working-day resolution more often in badly
  run branches; a breach hurts engagement and starts disengagement episodes;
* policy callbacks (7 days after a purchase, then every 91 days) are randomised into a holdout
  (default 10 %, not made); the others reach the customer with a probability that grows with
  engagement.

Who a callback helps (``callback_tau``): customers who like a human voice (little digital use,
high-net-worth, elderly) and customers with a fresh grievance are *persuadable*; customers who live
in the app are *sleeping dogs* (a call annoys them, tau < 0); the deeply disengaged (engagement 1.0
below their own level) are *lost causes* (tau shrinks to a tenth); customers at low risk are *sure
things* whatever tau says. ``effect_heterogeneity`` h blends each customer's tau with the
population mean: h = 0 gives everyone
the same effect on the log-odds, h = 1 (default) the full mix above.

The oracle replays this transition from each month's true state with Monte Carlo draws of the
future (Rao-Blackwellised: it averages the hazards along each path rather than the 0/1 outcomes).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

RETAIL, HNW, INSTITUTIONAL = 0, 1, 2
PROTECTION = np.array([1.0, 0.6, 0.3], dtype=np.float32)  # weight of a callback over 3 months
QUARTER_DAYS = 91
NO_EVENT = 99  # months since an event that never happened

# Churn hazard (monthly log-odds)
CHURN_BASE = -4.35
CHURN_LOW_ENGAGEMENT = 0.2  # the personal engagement level
CHURN_FALLEN = 0.6  # engagement below the customer's own level
CHURN_DECLINE = 1.8
CHURN_GRIEVANCE = 0.55
CHURN_BREACH = 0.45
CHURN_UNSUITABLE = 0.35
CHURN_NEW = 0.45
CHURN_SEGMENT = np.array([0.0, -0.35, -0.6], dtype=np.float32)
# Complaint hazard (monthly log-odds)
COMPLAINT_BASE = -4.55
COMPLAINT_UNSUITABLE = 1.1
COMPLAINT_BRANCH = 0.7
COMPLAINT_PROPENSITY = 0.35
COMPLAINT_LOW_ENGAGEMENT = 0.3
COMPLAINT_REPEAT = 1.2
COMPLAINT_SEGMENT = np.array([0.0, 0.3, 0.1], dtype=np.float32)
COMPLAINT_ELDERLY = 0.2
SERVICE_FAILURE_RATE = 0.04
SERVICE_FAILURE_LIFT = 2.0
# Engagement
REVERSION = 0.1
ENGAGEMENT_NOISE = 0.22
EPISODE_DRIFT = -0.3
EPISODE_START = 0.02
COMPLAINT_HIT = 0.25
BREACH_HIT = 0.35
LOST_CAUSE_BELOW = -1.0  # engagement this far below the customer's own level
TAU_MEAN = 0.5  # about the population average of tau, used for h = 0


def sigmoid(x: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-x))).astype(np.float32)


@dataclass
class Static:
    """What does not change for a customer (one entry per customer, or per customer x draw)."""

    segment: np.ndarray  # int8
    mu: np.ndarray  # personal engagement level
    frailty: np.ndarray  # unobserved churn proneness
    propensity: np.ndarray  # unobserved complaint proneness
    digital: np.ndarray  # 0..1 share of digital use
    receptive: np.ndarray  # how much a human voice helps (static part of tau)
    elderly: np.ndarray  # bool
    branch_bad: np.ndarray  # branch service quality, positive = worse
    missell: np.ndarray  # probability that a purchase is unsuitable
    opened_day: np.ndarray  # int32 days since epoch

    def take(self, index: np.ndarray) -> Static:
        return Static(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def tile(self, draws: int) -> Static:
        return Static(**{f.name: np.tile(getattr(self, f.name), draws) for f in fields(self)})


@dataclass
class State:
    """What the month-to-month transition carries."""

    e: np.ndarray  # engagement now
    e_hist: np.ndarray  # (n, 3): engagement 1, 2 and 3 months ago
    episode_left: np.ndarray  # months left in a disengagement episode
    since_complaint: np.ndarray  # months since the last complaint
    since_breach: np.ndarray  # months since the last SLA breach
    unsuitable: np.ndarray  # open holdings riskier than the customer's tolerance
    protection: np.ndarray  # (n, 3): callback protection for this and the next two months
    next_quarterly: np.ndarray  # day number of the next quarterly callback

    def take(self, index: np.ndarray) -> State:
        return State(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def tile(self, draws: int) -> State:
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            out[f.name] = np.tile(v, (draws, 1)) if v.ndim == 2 else np.tile(v, draws)
        return State(**out)

    def copy(self) -> State:
        return State(**{f.name: getattr(self, f.name).copy() for f in fields(self)})


@dataclass
class Month:
    """Outcomes of one month's transition for each customer (True/False or counts)."""

    churn_hazard: np.ndarray
    complaint_hazard: np.ndarray  # with the service-failure shock integrated out
    churned: np.ndarray
    complaints: np.ndarray  # 0, 1 or 2
    first_response_breach: np.ndarray
    resolution_breach: np.ndarray
    purchase: np.ndarray
    unsuitable_sale: np.ndarray
    quarterly_due: np.ndarray
    quarterly_due_day: np.ndarray
    quarterly_holdout: np.ndarray
    quarterly_reached: np.ndarray
    post_sale_holdout: np.ndarray
    post_sale_reached: np.ndarray
    complaint_callback_reached: np.ndarray
    tau: np.ndarray


def callback_tau(static: Static, state: State, heterogeneity: float) -> np.ndarray:
    """The customer's effect of a completed callback on the churn log-odds (positive = helps)."""
    grievance = (state.since_complaint < 3).astype(np.float32) + 0.8 * (state.since_breach < 3)
    tau = 0.25 + 0.9 * static.receptive + 0.7 * grievance
    tau = np.clip(tau, -0.6, 2.2)
    tau = np.where(state.e - static.mu < LOST_CAUSE_BELOW, 0.1 * tau, tau)
    return (heterogeneity * tau + (1.0 - heterogeneity) * TAU_MEAN).astype(np.float32)


def hazards(static: Static, state: State, month_day: int, heterogeneity: float):
    """Monthly churn hazard, complaint hazard (shock integrated out) and tau, from the state."""
    decline = np.maximum(0.0, state.e_hist[:, 2] - state.e)
    grievance = (state.since_complaint < 3).astype(np.float32)
    breach = (state.since_breach < 3).astype(np.float32)
    new = ((month_day - static.opened_day) < 365).astype(np.float32)
    tau = callback_tau(static, state, heterogeneity)
    churn_logit = (
        CHURN_BASE
        + CHURN_LOW_ENGAGEMENT * -static.mu
        + CHURN_FALLEN * (static.mu - state.e)
        + CHURN_DECLINE * decline
        + CHURN_GRIEVANCE * grievance
        + CHURN_BREACH * breach
        + CHURN_UNSUITABLE * (state.unsuitable > 0)
        + CHURN_NEW * new
        + CHURN_SEGMENT[static.segment]
        + static.frailty
        - tau * state.protection[:, 0]
    )
    complaint_logit = (
        COMPLAINT_BASE
        + COMPLAINT_UNSUITABLE * (state.unsuitable > 0)
        + COMPLAINT_BRANCH * static.branch_bad
        + COMPLAINT_PROPENSITY * static.propensity
        + COMPLAINT_LOW_ENGAGEMENT * -state.e
        + COMPLAINT_REPEAT * grievance
        + COMPLAINT_SEGMENT[static.segment]
        + COMPLAINT_ELDERLY * static.elderly
    )
    base = sigmoid(complaint_logit)
    shocked = sigmoid(complaint_logit + SERVICE_FAILURE_LIFT)
    complaint = (1 - SERVICE_FAILURE_RATE) * base + SERVICE_FAILURE_RATE * shocked
    return sigmoid(churn_logit), base, shocked, complaint.astype(np.float32), tau


def step(
    static: Static,
    state: State,
    month_day: int,
    month_days: int,
    rng: np.random.Generator,
    heterogeneity: float,
    holdout_share: float,
    allow_complaints: bool = True,
) -> tuple[State, Month]:
    """One month. All randomness is drawn as uniforms in a fixed order, so two calls with equally
    seeded generators are coupled (common random numbers for counterfactuals)."""
    n = state.e.shape[0]
    u = rng.random((14, n), dtype=np.float32)
    noise = rng.standard_normal(n, dtype=np.float32)
    hazard = hazards(static, state, month_day, heterogeneity)
    month = _month_events(
        static, state, u, hazard, month_day + month_days, holdout_share, allow_complaints
    )
    return _next_state(static, state, month, u[13], noise), month


def _month_events(static, state, u, hazard, month_end, holdout_share, allow_complaints) -> Month:
    """What happens in the month, from the uniforms `u` (rows 0-12) and the month's hazards."""
    h, c_base, c_shocked, c_mix, tau = hazard
    churned = u[0] < h
    failure = u[1] < SERVICE_FAILURE_RATE
    c = np.where(failure, c_shocked, c_base)
    complaint = (u[2] < c) & allow_complaints
    complaints = complaint.astype(np.int8) + (complaint & (u[3] < 0.15))
    buy_logit = -3.5 + 0.6 * state.e + np.where(static.segment == RETAIL, 0.0, 0.5)
    purchase = u[6] < sigmoid(buy_logit)
    reach = sigmoid(1.4 + 0.8 * state.e + 0.4 * (static.segment != RETAIL))
    post_holdout = purchase & (u[8] < holdout_share)
    q_due = state.next_quarterly < month_end
    q_holdout = q_due & (u[10] < holdout_share)
    return Month(
        churn_hazard=h,
        complaint_hazard=c_mix,
        churned=churned,
        complaints=complaints,
        first_response_breach=complaint & (u[4] < sigmoid(-2.3 + 0.9 * static.branch_bad)),
        resolution_breach=complaint & (u[5] < sigmoid(-2.1 + 0.9 * static.branch_bad)),
        purchase=purchase,
        unsuitable_sale=purchase & (u[7] < static.missell),
        quarterly_due=q_due,
        quarterly_due_day=state.next_quarterly.copy(),
        quarterly_holdout=q_holdout,
        quarterly_reached=q_due & ~q_holdout & (u[11] < reach),
        post_sale_holdout=post_holdout,
        post_sale_reached=purchase & ~post_holdout & (u[9] < reach),
        complaint_callback_reached=complaint & (u[12] < 0.85),
        tau=tau,
    )


def _next_state(static: Static, state: State, month: Month, u13, noise) -> State:
    """The state after the month: protection from the calls that reached the customer, an
    episode of drifting engagement (started by `u13`), engagement hit by complaints and breaches."""
    complaint = month.complaints > 0
    breach = month.first_response_breach | month.resolution_breach
    reached = month.post_sale_reached | month.quarterly_reached | month.complaint_callback_reached
    protection = np.empty_like(state.protection)
    protection[:, 0] = np.maximum(state.protection[:, 1], PROTECTION[0] * reached)
    protection[:, 1] = np.maximum(state.protection[:, 2], PROTECTION[1] * reached)
    protection[:, 2] = PROTECTION[2] * reached
    start_episode = u13 < (EPISODE_START + 0.1 * breach + 0.04 * complaint)
    episode_left = np.where(
        start_episode, 3 + (u13 * 1000 % 6).astype(np.int8), np.maximum(state.episode_left - 1, 0)
    ).astype(np.int8)
    drift = np.where(state.episode_left > 0, EPISODE_DRIFT, 0.0)
    e_new = (
        state.e
        + REVERSION * (static.mu - state.e)
        + drift
        + ENGAGEMENT_NOISE * noise
        - COMPLAINT_HIT * complaint
        - BREACH_HIT * breach
    ).astype(np.float32)
    e_hist = np.empty_like(state.e_hist)
    e_hist[:, 0] = state.e
    e_hist[:, 1:] = state.e_hist[:, :2]
    return State(
        e=e_new,
        e_hist=e_hist,
        episode_left=episode_left,
        since_complaint=np.where(
            complaint, 0, np.minimum(state.since_complaint + 1, NO_EVENT)
        ).astype(np.int16),
        since_breach=np.where(breach, 0, np.minimum(state.since_breach + 1, NO_EVENT)).astype(
            np.int16
        ),
        unsuitable=(state.unsuitable + month.unsuitable_sale).astype(np.int16),
        protection=protection,
        next_quarterly=np.where(
            month.quarterly_due, state.next_quarterly + QUARTER_DAYS, state.next_quarterly
        ).astype(np.int32),
    )


def oracle(
    static: Static,
    state: State,
    month_days: list[tuple[int, int]],
    horizon_days: int,
    draws: int,
    seed: np.random.SeedSequence,
    heterogeneity: float,
    holdout_share: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True P(churn), P(complaint) over the horizon from this state, and the effect on P(churn) of a
    callback completed on the first day of the horizon.

    month_days: (first day, number of days) of the months the horizon spans.
    """
    n = state.e.shape[0]
    st, sst = static.tile(draws), state.tile(draws)
    called = sst.copy()
    called.protection = np.maximum(called.protection, PROTECTION[None, :])
    start = month_days[0][0]
    weights = [
        np.clip((start + horizon_days - day) / days, 0.0, 1.0) for day, days in month_days
    ]  # share of each month inside the horizon (churn and complaint days are uniform in a month)

    def survival(s: State, allow_complaints: bool, pick: str) -> np.ndarray:
        surv = np.ones(n * draws, dtype=np.float64)
        rng = np.random.Generator(np.random.PCG64(seed))
        spans = [(d, w) for d, w in zip(month_days, weights, strict=True) if w > 0]
        for j, ((day, days), w) in enumerate(spans):
            if j == len(spans) - 1:  # the last month needs the hazards only, not the next state
                churn, _, _, complaint, _ = hazards(st, s, day, heterogeneity)
            else:
                s, month = step(
                    st, s, day, days, rng, heterogeneity, holdout_share, allow_complaints
                )
                churn, complaint = month.churn_hazard, month.complaint_hazard
            surv *= 1.0 - w * (churn if pick == "churn" else complaint)
        return surv.reshape(draws, n).mean(axis=0)

    p_churn = 1.0 - survival(sst, True, "churn")
    p_churn_called = 1.0 - survival(called, True, "churn")
    p_complaint = 1.0 - survival(sst, False, "complaint")  # step never mutates its input
    return (
        p_churn.astype(np.float32),
        p_complaint.astype(np.float32),
        (p_churn - p_churn_called).astype(np.float32),
    )
