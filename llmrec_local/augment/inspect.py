"""Look at what the LLM said: a side-by-side view of sampled users and label-free agreement statistics.

``python -m llmrec_local.augment inspect --out O`` prints it; the pipeline runner puts a small one (`to_results`)
into ``results["inspection"]`` for the report. `O` is a recipe workdir or an augment ``--out`` folder holding
``dataset/``, ``candidates/`` and ``augment/{pairs,item_attributes,user_profiles}/``; every file is read through
the readers of `llmrec_local.artifacts` (dataset, candidates, augmentation). Any part may be missing (a run with
some jobs only): the view shows what there is and says what is not there.

For each sampled user the view puts the training history (titles, oldest to newest) beside the candidate list
shown to the pairs job (rank, title, which one the LLM liked and disliked, which ones the user went on to interact
with in validation/test), then the generated profile and the generated attributes of the liked and disliked items,
and (``failures=True``) the failed attempts of that user and those items: raw answer and reason.

Agreement needs no labels. With C_u the candidates of user u, H_u the user's validation and test items and
(l_u, d_u) the LLM's liked and disliked items, over the users U that have a pair and at least one candidate:

    liked_rate    = |{u in U : l_u in H_u}| / |U|
    disliked_rate = |{u in U : d_u in H_u}| / |U|
    random_rate   = (1 / |U|) * sum_u |C_u ∩ H_u| / |C_u|      (exact expectation of a uniform pick in C_u)

A liked rate above the random rate (and a disliked rate below it) says the LLM's choices carry the signal the later
interactions hold; the one-sided p-values are tail probabilities of the hit count under uniform random picks (a
Poisson-binomial distribution with success probabilities |C_u ∩ H_u| / |C_u|).

A uniform pick is not the only content-blind picker: the base model ranks the candidates, so the top ranks are
held out more often, and an LLM that always answers "position 1" beats a uniform pick without reading a title. The
position-matched rate is what a picker choosing the LLM's positions but blind to the items would get:

    h[r]                   = fraction of users in U whose rank-r candidate is in H_u
    liked_position_matched = mean over users u in U whose liked item is a candidate of h[rank of l_u in C_u]

(disliked likewise). A liked rate near its position-matched rate means the choice adds nothing beyond its position.
"""

from __future__ import annotations

import math
import textwrap
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..artifacts.augmentation import read_failures, read_records
from ..artifacts.base import is_complete, read_manifest
from ..artifacts.candidates import load_candidates
from ..artifacts.dataset import Dataset
from ..errors import ConfigError
from .stage import ARTIFACTS

if TYPE_CHECKING:
    import polars as pl

#: Columns of a job's records that are bookkeeping, not generated values.
_BOOKKEEPING = ("user", "item", "attempt", "cache_key")
#: Above this many users the p-values use the normal approximation (the exact distribution costs O(users^2)).
EXACT_P_MAX_USERS = 20_000
#: Longest generated value, raw answer and title shown in the text view (longer ones end in "...").
MAX_VALUE_CHARS = 80
MAX_RAW_CHARS = 240
#: Width of the history column of the text view.
LEFT_WIDTH = 46


@dataclass(frozen=True)
class Agreement:
    """How often the LLM's liked (disliked) item is one the user interacted with later, against a random pick.

    users: |U|, users with a pair record and at least one candidate; users_with_heldout: those with H_u non-empty.
    liked_hits, disliked_hits: counts of l_u in H_u, d_u in H_u. liked_rate, disliked_rate, random_rate: see the
    module docstring. liked_p_value: P(X >= liked_hits), disliked_p_value: P(X <= disliked_hits), X the hit count
    of uniform random picks; p_value_method: "exact" (Poisson binomial) or "normal" (approximation, many users).
    *_position_matched_rate: the content-blind picker of the LLM's positions (None: no pick is a candidate).
    """

    users: int
    users_with_heldout: int
    liked_hits: int
    disliked_hits: int
    liked_rate: float
    disliked_rate: float
    random_rate: float
    liked_p_value: float
    disliked_p_value: float
    p_value_method: str
    liked_position_matched_rate: float | None
    disliked_position_matched_rate: float | None


@dataclass(frozen=True)
class FailureView:
    """One failed attempt of a job: the entity (user or item index), the reason, its detail and the raw answer."""

    job: str
    entity: int
    attempt: int
    reason: str
    detail: str
    raw: str


@dataclass(frozen=True)
class ItemView:
    """An item involved in a pair: its title and generated attributes (None: the attributes job has no record)."""

    item: int
    title: str
    attributes: dict[str, str] | None


@dataclass(frozen=True)
class CandidateView:
    """One candidate shown to the pairs job: rank (0 = the base model's best), item, title, whether the user
    interacted with it in validation/test, and the LLM's choice ("liked", "disliked" or None)."""

    rank: int
    item: int
    title: str
    heldout: bool
    choice: str | None


@dataclass(frozen=True)
class UserView:
    """Everything the LLM saw and said about one user.

    history: titles of the last `history` training items, oldest first (history_total: all of them);
    heldout_total: the user's validation + test items; pair: None when the pairs job has no record for the user;
    profile: generated fields (lists joined by ", "), None when the profiles job has no record; failures: the
    failed attempts of this user (pairs, profiles) and of its liked and disliked items (attributes).
    """

    user: int
    user_id: str
    history: list[str]
    history_total: int
    heldout_total: int
    candidates: list[CandidateView]
    liked: ItemView | None
    disliked: ItemView | None
    profile: dict[str, str] | None
    failures: list[FailureView] = field(default_factory=list)


@dataclass(frozen=True)
class JobStatus:
    """One augmentation job folder: present or not, which model answered, records, failures by reason."""

    job: str
    folder: str
    present: bool
    model: str | None = None
    records: int = 0
    failed_entities: int = 0
    failed_attempts: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Inspection:
    """The inspector's result: rendered as text by `render_text`, stored for the report by `to_results`.

    sampled_failures: with ``failures=True``, the failed attempts of a seeded sample of failed entities per job
    (the sampled users rarely fail themselves when few entities do); notes: what is missing and what that means.
    """

    out: str
    seed: int
    n_users: int
    jobs: list[JobStatus]
    users: list[UserView]
    agreement: Agreement | None
    show_failures: bool
    sampled_failures: list[FailureView]
    notes: list[str]


def agreement(pairs: Mapping[int, tuple[int, int]], candidates: Mapping[int, Sequence[int]],
              heldout: Mapping[int, set[int]]) -> Agreement | None:
    """The agreement statistics (module docstring) of `pairs` ``{user: (liked, disliked)}`` against
    `candidates` ``{user: [item, ...]}`` (best rank first) and `heldout` ``{user: {val and test items}}``; None
    when no user has both a pair and a candidate."""
    users = [u for u in sorted(pairs) if candidates.get(u)]
    if not users:
        return None
    depth = max(len(candidates[u]) for u in users)
    shown, held_at = np.zeros(depth), np.zeros(depth)  # users with a rank-r candidate; of those, held out
    for u in users:
        ranked = candidates[u]
        shown[:len(ranked)] += 1
        held_at[:len(ranked)] += [item in heldout.get(u, set()) for item in ranked]
    by_rank = held_at / shown  # h[r]; shown[r] >= 1 for r < depth

    def position_matched(which: int) -> float | None:
        ranks = [candidates[u].index(pairs[u][which]) for u in users if pairs[u][which] in candidates[u]]
        return float(by_rank[ranks].mean()) if ranks else None

    liked = disliked = 0
    probs = np.empty(len(users))
    for i, u in enumerate(users):
        held = heldout.get(u, set())
        cands = set(candidates[u])
        liked += pairs[u][0] in held
        disliked += pairs[u][1] in held
        probs[i] = len(cands & held) / len(cands)
    n = len(users)
    method = "exact" if n <= EXACT_P_MAX_USERS else "normal"
    return Agreement(
        users=n, users_with_heldout=sum(1 for u in users if heldout.get(u)), liked_hits=liked,
        disliked_hits=disliked, liked_rate=liked / n, disliked_rate=disliked / n, random_rate=float(probs.mean()),
        liked_p_value=_tail(probs, liked, upper=True), disliked_p_value=_tail(probs, disliked, upper=False),
        p_value_method=method, liked_position_matched_rate=position_matched(0),
        disliked_position_matched_rate=position_matched(1))


def _tail(probs: np.ndarray, k: int, *, upper: bool) -> float:
    """P(X >= k) (`upper`) or P(X <= k) of X = sum of independent Bernoulli(probs): the exact Poisson-binomial
    distribution by convolution up to `EXACT_P_MAX_USERS` terms, else the normal approximation with a continuity
    correction."""
    if len(probs) <= EXACT_P_MAX_USERS:
        dist = np.ones(1)
        for p in probs:
            dist = np.convolve(dist, [1.0 - p, p])
        tail = dist[k:].sum() if upper else dist[:k + 1].sum()
        return float(min(1.0, tail))
    mean, var = float(probs.sum()), float((probs * (1 - probs)).sum())
    if var == 0:
        return float((k <= mean) if upper else (k >= mean))
    z = ((k - 0.5 - mean) if upper else (k + 0.5 - mean)) / math.sqrt(var)
    # P(N(0,1) >= z) = erfc(z / sqrt 2) / 2
    return 0.5 * math.erfc(z / math.sqrt(2)) if upper else 0.5 * math.erfc(-z / math.sqrt(2))


def _value(v: Any) -> str:
    """A generated value as one line: lists joined by ", ", None as "null"."""
    if v is None:
        return "null"
    if isinstance(v, (list, tuple)):
        return ", ".join(_value(x) for x in v)
    return str(v)


def _fields(frame: pl.DataFrame, key: str) -> dict[int, dict[str, str]]:
    """``{entity: {field: value}}`` of a job's records (every generated column)."""
    cols = [c for c in frame.columns if c not in _BOOKKEEPING]
    return {int(row[key]): {c: _value(row[c]) for c in cols} for row in frame.iter_rows(named=True)}


def _failure_views(job: str, frame: pl.DataFrame) -> list[FailureView]:
    return [FailureView(job, int(r["entity"]), int(r["attempt"]), str(r["reason"]), str(r["detail"] or ""),
                        str(r["raw"] or "")) for r in frame.iter_rows(named=True)]


def _title(items: pl.DataFrame, item: int) -> str:
    title, year = items["title"][item], items["year"][item]
    name = title if title else f"item {items['item_id'][item]} (no title)"
    return f"{name} ({year})" if year is not None else name


def inspect_augmentations(out: str | Path, *, users: int = 20, seed: int = 0, failures: bool = False,
                          history: int = 10) -> Inspection:
    """Inspect the augmentations under `out` (a recipe workdir or an augment --out folder).

    Args:
        users: how many users to sample (without replacement, from all users of the dataset; seeded by `seed`, so
            the same arguments show the same users).
        failures: also collect failed attempts (raw answer, reason) of the sampled users and their items, and of a
            seeded sample of `users` failed entities per job.
        history: training titles shown per user (the most recent ones).
    Raises:
        ConfigError when `out` holds no dataset/ (nothing can be shown without it).
    """
    import polars as pl

    out = Path(out)
    if users < 0 or history < 0:
        raise ConfigError(f"users={users}, history={history}: both must be >= 0")
    # The folder names of the layout every augment run writes (`stage.artifact_path`, the runner's Layout).
    if not is_complete(out / "dataset"):
        raise ConfigError(f"{out} holds no complete dataset/ folder: pass a recipe workdir or the --out folder of "
                          "`python -m llmrec_local.augment` (it holds dataset/, candidates/, augment/)")
    ds = Dataset.load(out / "dataset")
    items = ds.items()
    notes: list[str] = []

    jobs: list[JobStatus] = []
    records: dict[str, pl.DataFrame] = {}
    fails: dict[str, pl.DataFrame] = {}
    for job, name in ARTIFACTS.items():
        folder = out / "augment" / name
        if not is_complete(folder):
            jobs.append(JobStatus(job, str(folder), present=False))
            notes.append(f"no {name}: {folder} is {'incomplete' if folder.is_dir() else 'missing'} (run it with "
                         f"`python -m llmrec_local.augment --jobs {job} --out {out}`); its part of the view is empty")
            continue
        fails[job] = read_failures(folder)
        key = "item" if job == "attributes" else "user"
        records[job] = read_records(folder, key=key, n=ds.n_items if key == "item" else ds.n_users)
        model = read_manifest(folder).get("model") or {}
        failed = fails[job]
        jobs.append(JobStatus(
            job, str(folder), present=True, model=model.get("model_id") or model.get("alias"),
            records=records[job].height,
            failed_entities=int(failed.filter(~pl.col("entity").is_in(records[job][key].implode()))["entity"]
                                .n_unique()),
            failed_attempts=failed.height, reasons=dict(Counter(failed["reason"].to_list()).most_common())))

    cand_path = out / "candidates"
    candidates: dict[int, list[tuple[int, int]]] = {}
    if is_complete(cand_path):
        frame, _ = load_candidates(cand_path)
        for row in frame.iter_rows(named=True):
            candidates.setdefault(int(row["user"]), []).append((int(row["rank"]), int(row["item"])))
    else:
        notes.append(f"no candidates: {cand_path} is missing or incomplete; the candidate lists and the random "
                     "baseline of the agreement statistics cannot be shown")

    arrays = ds.arrays()
    heldout: dict[int, set[int]] = {}
    for u, i in np.concatenate([arrays.val, arrays.test]).tolist():
        heldout.setdefault(u, set()).add(i)

    pairs: dict[int, tuple[int, int]] = {}
    if "pairs" in records:
        frame = records["pairs"].drop_nulls(["pos_item", "neg_item"])
        pairs = {int(u): (int(p), int(n)) for u, p, n in frame.select("user", "pos_item", "neg_item").iter_rows()}
    stats = agreement(pairs, {u: [i for _, i in c] for u, c in candidates.items()}, heldout)
    if stats is None and pairs and candidates:
        notes.append("no user has both a pair record and candidates: agreement statistics cannot be computed")
    elif stats is not None and stats.users_with_heldout == 0:
        notes.append("no paired user has validation/test interactions: every agreement rate is 0")

    attributes = _fields(records["attributes"], "item") if "attributes" in records else None
    profiles = _fields(records["profiles"], "user") if "profiles" in records else None
    rng = np.random.default_rng(seed)
    sampled = sorted(int(u) for u in rng.choice(ds.n_users, size=min(users, ds.n_users), replace=False))
    history_frame = ds.train_history()
    history_items = {u: [int(i) for i in history_frame.filter(pl.col("user") == u)["item"].to_list()]
                     for u in sampled}
    user_ids = ds.users()["user_id"]

    def item_view(item: int) -> ItemView:
        attrs = attributes.get(item) if attributes is not None else None
        return ItemView(item, _title(items, item), attrs)

    views = []
    for u in sampled:
        held = heldout.get(u, set())
        liked, disliked = pairs.get(u, (None, None))
        cands = [CandidateView(rank, item, _title(items, item), item in held,
                               "liked" if item == liked else "disliked" if item == disliked else None)
                 for rank, item in sorted(candidates.get(u, []))]
        own: list[FailureView] = []
        if failures:
            involved = {i for i in (liked, disliked) if i is not None}
            for job, frame in fails.items():
                ids = involved if job == "attributes" else {u}
                own += _failure_views(job, frame.filter(pl.col("entity").is_in(sorted(ids))))
        hist = history_items[u]
        views.append(UserView(
            user=u, user_id=str(user_ids[u]), history=[_title(items, i) for i in hist[max(0, len(hist) - history):]],
            history_total=len(hist), heldout_total=len(held), candidates=cands,
            liked=item_view(liked) if liked is not None else None,
            disliked=item_view(disliked) if disliked is not None else None,
            profile=profiles.get(u) if profiles is not None else None, failures=own))

    sampled_failures: list[FailureView] = []
    if failures:
        for job, frame in fails.items():
            entities = frame["entity"].unique().sort().to_numpy()
            if entities.size:
                pick = np.random.default_rng(seed).choice(entities, size=min(users, entities.size), replace=False)
                sampled_failures += _failure_views(job, frame.filter(pl.col("entity").is_in(sorted(pick.tolist()))))
    return Inspection(out=str(out), seed=seed, n_users=ds.n_users, jobs=jobs, users=views, agreement=stats,
                      show_failures=failures, sampled_failures=sampled_failures, notes=notes)


def to_results(result: Inspection) -> dict[str, Any]:
    """The JSON-ready form stored in the pipeline's results (``results["inspection"]``): every field of `result`
    plus ``"text"``, the `render_text` view (the report shows it as is: it may not import this stage)."""
    return {**asdict(result), "text": render_text(result)}


def _clip(text: str, width: int) -> str:
    """`text` on one line of at most `width` characters (control characters and newlines shown as spaces)."""
    line = "".join(ch if ch.isprintable() else " " for ch in text)
    return line if len(line) <= width else line[:max(0, width - 3)] + "..."


def _side_by_side(left: Sequence[str], right: Sequence[str], width: int = LEFT_WIDTH) -> list[str]:
    rows = max(len(left), len(right))
    return [f"{_clip(left[i], width) if i < len(left) else '':<{width}} | "
            f"{right[i] if i < len(right) else ''}".rstrip() for i in range(rows)]


def _rate_line(label: str, rate: float, hits: int | None, n: int, random_rate: float, p: float | None) -> str:
    ratio = f"{rate / random_rate:5.2f}x random" if random_rate > 0 else "   n/a random"
    counts = f"({hits}/{n})" if hits is not None else ""
    p_text = f"p = {p:.3g}" if p is not None else ""
    return f"  {label:<46} {rate:7.4f} {counts:<12} {ratio}  {p_text}".rstrip()


def render_agreement(stats: Agreement | None) -> list[str]:
    """The agreement statistics as text lines."""
    if stats is None:
        return ["Agreement with later interactions: not available (needs pair records and candidates)"]
    n = stats.users
    return [f"Agreement with later interactions (validation + test; no labels needed): {n} users with a pair and "
            f"candidates, {stats.users_with_heldout} of them with held-out items",
            _rate_line("LLM-liked item interacted with later", stats.liked_rate, stats.liked_hits, n,
                       stats.random_rate, stats.liked_p_value),
            _rate_line("random candidate (exact expectation)", stats.random_rate, None, n, stats.random_rate, None),
            _rate_line("LLM-disliked item interacted with later", stats.disliked_rate, stats.disliked_hits, n,
                       stats.random_rate, stats.disliked_p_value),
            *[_rate_line(f"content-blind pick at LLM's {name} positions", rate, None, n, stats.random_rate, None)
              for name, rate in (("liked", stats.liked_position_matched_rate),
                                 ("disliked", stats.disliked_position_matched_rate)) if rate is not None],
            f"  (p: one-sided, {stats.p_value_method}, under uniform random picks among each user's candidates; "
            "liked should be above random, disliked below; a rate near its content-blind rate means the choice "
            "adds nothing beyond its position in the base model's ranking)"]


def _render_user(view: UserView, show_failures: bool) -> list[str]:
    lines = [f"== user {view.user} (id {view.user_id}): {view.history_total} training items, {view.heldout_total} "
             "held out (validation + test) =="]
    shown = len(view.history)
    left = [f"history (train, oldest first, last {shown} of {view.history_total})"] + [f"  {t}" for t in view.history]
    if not view.history:
        left.append("  (no training items)")
    marks = {"liked": "  <- LIKED", "disliked": "  <- DISLIKED"}
    right = ["candidates (rank, * = interacted with later)"]
    right += [f"{c.rank:>3}{'*' if c.heldout else ' '} {_clip(c.title, MAX_VALUE_CHARS - 10)}{marks.get(c.choice, '')}"
              for c in view.candidates]
    if not view.candidates:
        right.append("  (no candidates)")
    lines += _side_by_side(left, right)
    if view.liked is None:
        lines.append("pair: no record (the pairs job did not run, did not reach this user or failed for it)")
    else:
        for label, item in (("liked", view.liked), ("disliked", view.disliked)):
            assert item is not None  # a pair record holds both items
            attrs = ("no attribute record" if item.attributes is None else
                     "; ".join(f"{k}: {_clip(v, MAX_VALUE_CHARS)}" for k, v in item.attributes.items()))
            lines.append(f"{label + ':':<10}{_clip(item.title, MAX_VALUE_CHARS)} [{attrs}]")
    if view.profile is None:
        lines.append("profile: no record")
    else:
        text = view.profile.get("profile_text") or "; ".join(f"{k}: {v}" for k, v in view.profile.items())
        lines += textwrap.wrap(_clip(text, 4 * MAX_VALUE_CHARS), width=110, initial_indent="profile: ",
                               subsequent_indent="         ")
    if show_failures:
        lines += [f"failures: {'none' if not view.failures else len(view.failures)}"]
        lines += _render_failures(view.failures)
    return lines


def _render_failures(failures: Sequence[FailureView]) -> list[str]:
    return [f"  [{f.job} {'user' if f.job != 'attributes' else 'item'} {f.entity}, attempt {f.attempt}] {f.reason}: "
            f"{_clip(f.detail, MAX_VALUE_CHARS)}\n      raw: {_clip(f.raw, MAX_RAW_CHARS)}" for f in failures]


def render_text(result: Inspection) -> str:
    """The inspection as plain text: jobs, agreement statistics, then one side-by-side block per sampled user."""
    lines = [f"Inspection of {result.out}: {len(result.users)} of {result.n_users} users sampled (seed {result.seed})"]
    for job in result.jobs:
        if not job.present:
            lines.append(f"  {job.job:<10} missing")
            continue
        reasons = ", ".join(f"{k} {v}" for k, v in job.reasons.items()) or "none"
        lines.append(f"  {job.job:<10} {job.records} records by {job.model}; {job.failed_entities} entities without "
                     f"a record after failing; {job.failed_attempts} failed attempts ({reasons})")
    lines += [f"note: {n}" for n in result.notes]
    lines += ["", *render_agreement(result.agreement)]
    for view in result.users:
        lines += ["", *_render_user(view, result.show_failures)]
    if result.show_failures:
        lines += ["", "Failed attempts of a sample of failed entities per job"
                  + ("" if result.sampled_failures else ": none (no job recorded a failure)")]
        lines += _render_failures(result.sampled_failures)
    return "\n".join(lines) + "\n"
