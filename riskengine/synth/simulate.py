"""The monthly simulation: latent risk month by month and the events drawn from it, vectorised over
enterprises (the only Python loop runs over months), then assembled into the contract's tables."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import numpy as np
import polars as pl

from riskengine.synth.assemble import _assemble, _conform
from riskengine.synth.credit import credit_tables
from riskengine.synth.drift import Drift
from riskengine.synth.world import (
    _BASE_LOGIT,
    _COMPLAINT_CATEGORIES,
    _DAY,
    _LICENSE_YEARS,
    _PENALTY_CATEGORIES,
    _RANDOM_RATIO,
    DEFAULT_END,
    DEFAULT_START,
    DISTRICTS,
    SECTOR_KEYS,
    SECTORS,
    _as_date,
    _choice,
    _Events,
    _make_world,
    _month_starts,
    _sigmoid,
)


def simulate_city(
    n_enterprises: int,
    seed: int,
    start: date | str = DEFAULT_START,
    end: date | str = DEFAULT_END,
    *,
    progress: Callable[[float], None] | None = None,
    drift: Drift | None = None,
) -> tuple[dict[str, pl.DataFrame], np.ndarray, np.ndarray, pl.DataFrame]:
    """Run the monthly simulation. Returns (clean tables, ids, truth matrix n x months, inspectors).

    The truth matrix holds p_fail (float32) for each enterprise and month, NaN where the enterprise
    did not exist; ``truth_frame`` turns it into the contract's long format.
    """
    start_d, end_d = _as_date(start, "start"), _as_date(end, "end")
    injected = drift  # the name ``drift`` is the enterprises' random-walk drift below
    rng = np.random.default_rng(seed)
    w = _make_world(n_enterprises, rng, end_d)
    n = w.n
    month0 = np.datetime64(start_d, "M")
    n_months = int((np.datetime64(end_d, "M") - month0).astype(int)) + 1
    m_start = _month_starts(start_d, n_months + 1)
    first_day, last_day = np.datetime64(start_d, "D"), np.datetime64(end_d, "D")

    sector_of = w.sector
    sec_complaints = np.array([s.complaints_per_year for s in SECTORS])[sector_of] / 12.0
    sec_sampling = np.array([s.sampling_per_year for s in SECTORS])[sector_of] / 12.0
    is_pilot = np.isin(sector_of, [SECTOR_KEYS.index(k) for k in ("wire_cable", "fire_products",
                                                                   "food_related")])
    licensed = np.array([s.license_kind is not None for s in SECTORS])[sector_of]

    # Inspectors: a pool per district (about one per 300 enterprises, at least two); strictness is a
    # logit shift of the fail probability, so a strict inspector fails more at the same latent risk.
    d_share = np.array([s for _, s in DISTRICTS.values()])
    pool = np.maximum(2, np.round(d_share * n / 300)).astype(np.int64)
    pool_start = np.concatenate([[0], np.cumsum(pool)[:-1]])
    strictness = rng.normal(0.0, 0.5, int(pool.sum()))
    strictness -= strictness.mean()
    insp_codes = np.array(list(DISTRICTS))[np.repeat(np.arange(len(pool)), pool)]
    insp_ids = np.char.add(np.char.add(np.char.add("INSP-", insp_codes), "-"),
                           np.char.zfill((np.arange(len(insp_codes)) - pool_start[
                               np.repeat(np.arange(len(pool)), pool)] + 1).astype(str), 3))

    est_month = (w.est_day.astype("datetime64[M]") - month0).astype(np.int32)
    none = n_months + 1  # exit month of an enterprise that does not exit within the period
    exit_month = np.full(n, none, dtype=np.int32)
    exit_kind = np.zeros(n, dtype=np.int8)  # 1 deregistered, 2 revoked
    drift = rng.normal(0.0, 0.3, n).astype(np.float32)
    shock = np.zeros(n, dtype=np.float32)
    shock_target = np.zeros(n, dtype=np.float32)
    deter = np.zeros(n, dtype=np.float32)
    never = -10_000
    last_fail = np.full(n, never, dtype=np.int32)
    last_complaint = np.full(n, never, dtype=np.int32)
    # Visits scheduled for a later month (complaint visits, follow-ups, licence renewals, reinstatements).
    scheduled: dict[str, dict[int, list[np.ndarray]]] = {k: {} for k in ("complaint", "follow_up",
                                                                         "license", "reinstate")}

    def schedule(kind: str, e: np.ndarray, months: np.ndarray | int) -> None:
        months = np.broadcast_to(np.asarray(months), e.shape)
        for m in np.unique(months):
            scheduled[kind].setdefault(int(m), []).append(e[months == m])

    def take(kind: str, t: int) -> np.ndarray:
        parts = scheduled[kind].pop(t, [])
        return np.unique(np.concatenate(parts)) if parts else np.array([], dtype=np.int64)

    # Licences: issued 1-3 months after founding, renewed every five years.
    lic_period = 12 * _LICENSE_YEARS
    first_issue = est_month + rng.integers(1, 4, n)
    lic_due = np.where(licensed, first_issue, -1).astype(np.int32)
    before = licensed & (first_issue <= 0)
    lic_due[before] = first_issue[before] + lic_period * ((-first_issue[before]) // lic_period + 1)
    lic_state = np.zeros(n, dtype=np.int8)  # 0 none, 1 valid, 2 suspended, 3 revoked
    lic_changed = np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
    lic_state[before] = 1
    lic_idx = np.nonzero(licensed)[0]
    schedule("license", lic_idx, lic_due[lic_idx])

    # Enterprise-major, so each enterprise's months are contiguous when the truth is written.
    truth = np.empty((n, n_months), dtype=np.float32)
    row = np.empty(n, dtype=np.float32)
    insp, samp, pen, rec, comp, lic = (_Events() for _ in range(6))
    # Licences current at the start (issued before it) are part of the source too.
    idx = np.nonzero(before)[0]
    if len(idx):
        issued = (month0 + (lic_due[idx] - lic_period)).astype("datetime64[D]")
        issued = issued + rng.integers(0, 28, len(idx))
        lic.add(e=idx, issued=issued)

    def day_in(t: int, k: int) -> np.ndarray:
        span = int((m_start[t + 1] - m_start[t]) / _DAY)
        return m_start[t] + rng.integers(0, span, k).astype("timedelta64[D]")

    def inspect(e: np.ndarray, t: int, kind: int, logit: np.ndarray, shift: float = 0.0) -> None:
        k = len(e)
        if k == 0:
            return
        d = w.district[e]
        inspector = pool_start[d] + (rng.random(k) * pool[d]).astype(np.int64)
        x = logit[e] + strictness[inspector] + shift
        u = rng.random(k)
        fail = u < _sigmoid(x)
        cond = ~fail & (u < _sigmoid(x + 1.6))
        outcome = np.where(fail, 2, np.where(cond, 1, 0)).astype(np.int8)
        critical = np.where(fail & (rng.random(k) < 0.1 + 0.4 * _sigmoid(x)), rng.integers(1, 3, k), 0)
        serious = np.where(fail & (critical == 0), 1 + rng.poisson(0.4, k),
                           np.where(fail, rng.poisson(0.5, k), 0))
        minor = np.where(cond, 1 + rng.poisson(0.8, k), np.where(fail, rng.poisson(1.5, k), 0))
        insp.add(e=e, day=day_in(t, k), kind=np.full(k, kind, np.int8), inspector=inspector, outcome=outcome,
                 minor=minor, serious=serious, critical=critical)
        f = e[fail]
        last_fail[f] = t
        # A failure is followed up within 1-3 months (most of the time) and often penalised.
        fu = rng.random(len(f)) < 0.75
        schedule("follow_up", f[fu], t + rng.integers(1, 4, int(fu.sum())))
        crit = critical[fail] > 0
        penalise = rng.random(len(f)) < np.where(crit, 0.85, 0.5)
        sev = np.where(crit, np.where(rng.random(len(f)) < 0.45, 2, 1),
                       _choice(rng, [0.45, 0.5, 0.05], len(f)))
        penalty(f[penalise], t, sev[penalise])

    def penalty(e: np.ndarray, t: int, sev: np.ndarray) -> None:
        k = len(e)
        if k == 0:
            return
        decided = day_in(t, k) + rng.integers(15, 90, k).astype("timedelta64[D]")
        fine = np.round(np.exp(rng.normal(np.array([8.3, 10.3, 12.2])[sev], 0.6)), -2)
        dishonest = (sev == 2) & (rng.random(k) < 0.2)
        pen.add(e=e, decided=decided, sev=sev.astype(np.int8), fine=fine, dishonest=dishonest,
                cat=rng.integers(0, len(_PENALTY_CATEGORIES), k))
        # Deterrence: a penalised enterprise behaves better for a while (decays ~8% a month).
        np.add.at(deter, e, np.array([0.3, 0.7, 1.2], dtype=np.float32)[sev])
        # Serious cases put licences at risk: suspension, or revocation for the dishonest.
        at_risk = (sev == 2) & (lic_state[e] == 1)
        ser, dis, when = e[at_risk], dishonest[at_risk], decided[at_risk]
        u = rng.random(len(ser))
        revoke = u < np.where(dis, 0.5, 0.1)
        suspend = ~revoke & (u < 0.45)
        lic_state[ser[revoke]] = 3
        lic_changed[ser[revoke]] = when[revoke]
        lic_due[ser[revoke]] = -1
        lic_state[ser[suspend]] = 2
        lic_changed[ser[suspend]] = when[suspend]
        schedule("reinstate", ser[suspend], t + rng.integers(3, 9, int(suspend.sum())))
        # A few dishonest enterprises lose their business licence (吊销营业执照).
        lose = e[dishonest & (rng.random(k) < 0.1)]
        lose = lose[exit_month[lose] > t + 2]
        exit_month[lose] = t + 2
        exit_kind[lose] = 2

    # Per-enterprise constants of the monthly loop (float32 keeps the 2M-enterprise city fast).
    scale = np.float32(np.exp(-_BASE_LOGIT))
    # Times exp(1.4 (logit - base)): risky enterprises draw many more complaints than the table says.
    complaint_rate = (0.7 * sec_complaints).astype(np.float32)
    age_decay = np.exp(np.minimum(est_month, n_months) / 24.0).astype(np.float32)
    target_base = (0.0008 + 0.004 * is_pilot).astype(np.float32)
    products = np.nonzero(sec_sampling > 0)[0]
    product_rate = sec_sampling[products].astype(np.float32)
    random_p = np.float32(_RANDOM_RATIO / 12)
    revoke_rate = np.float32(0.0003) * scale
    # An injected drift: the month it starts (months since the start) and the enterprises it moves.
    drift_month = (int((np.datetime64(injected.start, "M") - month0).astype(int)) if injected is not None
                   else n_months + 1)
    drifting = w.sector == SECTOR_KEYS.index(injected.sector) if injected is not None else None
    logit = np.empty(n, dtype=np.float32)
    ex = np.empty(n, dtype=np.float32)

    for t in range(n_months):
        # Latent logit: static effects + young-firm effect (decays over ~2 years) + drift + shocks
        # - deterrence.
        np.multiply(age_decay, np.float32(0.9 * np.exp(-t / 24.0)), out=logit)
        np.minimum(logit, np.float32(0.9), out=logit)
        logit += w.static_logit
        logit += drift
        logit += shock
        logit -= deter
        if drifting is not None and t >= drift_month:
            logit[drifting] += np.float32(injected.shift)  # type: ignore[union-attr]
        np.exp(logit, out=ex)
        np.divide(ex, ex + 1.0, out=row)
        exists = (est_month <= t) & (exit_month >= t)
        row[~exists] = np.nan
        truth[:, t] = row
        alive = (est_month < t) & (exit_month > t)

        # Complaints: Poisson with a rate rising steeply with the risk. u < rate is necessary for at
        # least one complaint (1 - e^-rate <= rate), so the exact test runs on those candidates only.
        lam = complaint_rate * np.exp(np.float32(1.4) * (logit - np.float32(_BASE_LOGIT)))
        u = rng.random(n, dtype=np.float32)
        cand = np.nonzero(alive & (u < lam))[0]
        hit = cand[u[cand] < -np.expm1(-np.minimum(lam[cand], 3.0))]
        k = 1 + rng.poisson(np.minimum(lam[hit], 3.0) / 2)
        e = np.repeat(hit, k)
        subst = rng.random(len(e)) < 0.2 + 0.6 * _sigmoid(logit[e])
        comp.add(e=e, day=day_in(t, len(e)), subst=subst,
                 cat=rng.integers(0, len(_COMPLAINT_CATEGORIES), len(e)))
        last_complaint[e[subst]] = t
        visit = rng.random(len(e)) < np.where(subst, 0.4, 0.08)
        schedule("complaint", np.unique(e[visit]), t + 1)
        minor_pen = np.unique(e[subst & (rng.random(len(e)) < 0.04)])
        penalty(minor_pen, t, np.zeros(len(minor_pen), dtype=np.int64))

        # Inspections: 双随机 draws at a uniform ratio; targeted ones follow earlier failures and
        # complaints and sector campaigns on the pilot sectors (selection bias); then complaint visits,
        # follow-ups of failures and licence inspections.
        u = rng.random(n, dtype=np.float32)
        inspect(np.nonzero(alive & (u < random_p))[0], t, 0, logit)
        cand = np.nonzero(alive & (u >= random_p) & (u < random_p + target_base + 0.04))[0]
        target_p = (random_p + target_base[cand] + 0.03 * (last_fail[cand] >= t - 12)
                    + 0.01 * (last_complaint[cand] >= t - 3))
        inspect(cand[u[cand] < target_p], t, 1, logit)
        e = take("complaint", t)
        inspect(e[alive[e]], t, 2, logit)
        # A follow-up checks rectification, so it finds less than a fresh inspection.
        e = take("follow_up", t)
        inspect(e[alive[e]], t, 3, logit, shift=-0.8)
        e = take("reinstate", t)
        e = e[lic_state[e] == 2]
        lic_state[e] = 1
        lic_changed[e] = day_in(t, len(e))
        due = take("license", t)
        due = due[alive[due] & (lic_due[due] == t)]
        lic.add(e=due, issued=day_in(t, len(due)))
        lic_state[due] = np.where(lic_state[due] == 2, 2, 1)
        lic_due[due] = t + lic_period
        schedule("license", due, t + lic_period)
        inspect(due, t, 4, logit)

        # Supervisory sampling of products (监督抽查).
        u = rng.random(len(products), dtype=np.float32)
        e = products[alive[products] & (u < product_rate)]
        fail = rng.random(len(e)) < _sigmoid(logit[e] - 0.2)
        hazard = np.where(fail, _choice(rng, [0.45, 0.4, 0.15], len(e)), -1)
        samp.add(e=e, day=day_in(t, len(e)), fail=fail, hazard=hazard,
                 product=rng.integers(0, 4, len(e)))
        fe, fh = e[fail], hazard[fail]
        last_fail[fe] = t
        penalise = rng.random(len(fe)) < 0.6
        sev = np.where(fh == 2, 2, np.where(fh == 1, 1, _choice(rng, [0.6, 0.4], len(fe))))
        penalty(fe[penalise], t, sev[penalise])
        ordered = rng.random(len(fe)) < np.array([0.02, 0.1, 0.35])[fh]
        u = rng.random(len(products), dtype=np.float32)
        vol = products[alive[products] & (u < 0.0004 * scale * ex[products])]
        ro = fe[ordered]
        rec.add(e=np.concatenate([ro, vol]), day=day_in(t, len(ro) + len(vol)),
                mode=np.concatenate([np.ones(len(ro), np.int8), np.zeros(len(vol), np.int8)]),
                hazard=np.concatenate([fh[ordered], _choice(rng, [0.5, 0.4, 0.1], len(vol))]))

        # Exits: deregistration (more among young firms) and revocation of risky dormant ones; one
        # uniform draw decides both (deregistration below its rate, revocation just above it).
        u = rng.random(n, dtype=np.float32)
        cand = np.nonzero(alive & (u < 0.005 + revoke_rate * ex))[0]
        cand = cand[exit_month[cand] == none]
        dereg_p = np.where(est_month[cand] > t - 36, 0.005, 0.0025)
        dereg = cand[u[cand] < dereg_p]
        revoke = cand[(u[cand] >= dereg_p) & (u[cand] < dereg_p + revoke_rate * ex[cand])]
        exit_month[dereg] = t
        exit_kind[dereg] = 1
        exit_month[revoke] = t
        exit_kind[revoke] = 2

        # The latent risk moves: slow mean-reverting drift, deterioration shocks, decaying deterrence.
        drift *= np.float32(0.985)
        drift += np.float32(0.05) * rng.standard_normal(n, dtype=np.float32)
        new_shock = np.nonzero(rng.random(n, dtype=np.float32) < 0.002)[0]
        shock_target[new_shock] += rng.uniform(1.0, 2.5, len(new_shock)).astype(np.float32)
        shock += np.float32(0.2) * (shock_target - shock)
        shock_target *= np.float32(0.96)
        deter *= np.float32(0.92)
        if progress is not None:
            progress(1)

    tables = _assemble(w, rng, first_day, last_day, month0, n_months, insp, samp, pen, rec,
                       comp, lic, insp_ids, exit_month, exit_kind, lic_state, lic_changed)
    credit = credit_tables(tables, w.ids, truth, start_d, end_d, seed)
    tables.update({name: _conform(name, frame, first_day, last_day) for name, frame in credit.items()})
    inspectors = pl.DataFrame({"inspector_id": insp_ids.astype(str),
                               "district": insp_codes.astype(str), "strictness": strictness})
    return tables, w.ids, truth, inspectors
