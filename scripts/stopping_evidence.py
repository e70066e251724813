"""Before/after table of stopping rules for a multi-seed study, from its logs (docs/results.md, "Five systems").

    python scripts/stopping_evidence.py LABEL STUDY [--v01 STUDY_V01 ...] [--baseline lightgcn] [--tuning tuned]

STUDY is a ``python -m llmrec_local.run.multiseed`` output or a recipe workdir (``runs/<system>-seed<k>/`` in both;
``--tuning tuned`` labels the rows of a recipe whose runs were tuned first) trained under the stopping defaults;
every run with a test evaluation (``STUDY/runs/<system>-seed<k>/eval``) is read. v0.1's rule (patience 10 epochs on
the raw curve, no floor, cap 200) is replayed on each run's validation curve (`llmrec_local.train.stopping.replay`;
exact, as training never reads the stopping settings). Where it keeps the same checkpoint the test metrics are the
run's own; where it keeps another one they come from the real v0.1 run of the same seed in STUDY_V01 (trained with
``epochs=200 patience=10 min_epochs=0 smoothing=0 min_delta=0``), and the seed is listed on stderr until it exists
(its epochs are in the row, its test metrics "n/a"). Paired tests of each system against the baseline use the seeds
both have (`run.summary.summarize_runs`: Wilcoxon over users, t over seeds), Holm-adjusted over the systems. Prints
markdown table rows.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from llmrec_local.artifacts.run import read_train_log
from llmrec_local.evaluate.significance import holm
from llmrec_local.run.summary import summarize_runs
from llmrec_local.train.stopping import EarlyStopping, replay

SYSTEMS = ("mf", "lightgcn", "sgl", "simgcl", "llmrec")
V01 = dict(patience=10, min_epochs=0, smoothing=0.0, min_delta=0.0)  # v0.1's rule, cap 200 epochs


def _test(run: Path) -> tuple[float, float]:
    metrics = json.loads((run / "eval" / "metrics.json").read_text())["metrics"]
    return metrics["recall@20"], metrics["ndcg@20"]


def _mean_std(values: list[float | None]) -> str:
    """mean ± std of the values; "n/a (k of n)" when k of them are unknown (a v0.1 run not trained)."""
    missing = sum(v is None for v in values)
    if missing:
        return f"n/a ({missing} of {len(values)} not trained)"
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.fmean(values):.4f} ± {statistics.stdev(values):.4f}" if values else "n/a"


def _paired(pairs: dict[str, tuple[list[Path], list[Path]]]) -> dict[str, tuple[float | None, float | None, float]]:
    """Per system: (reference runs, its runs) on the same seeds -> paired tests of its recall@20 against the
    reference (Wilcoxon over users, t over seeds), both Holm-adjusted over the systems, and Δ over users."""
    raw = {}
    for m, (reference, runs) in pairs.items():
        r20 = summarize_runs({"reference": reference, m: runs}, "reference", ["recall@20"])["systems"][m]["recall@20"]
        raw[m] = (r20["vs_baseline_over_users"]["wilcoxon_p"], r20["vs_baseline_over_seeds"]["t_p"],
                  r20["vs_baseline_over_users"]["mean_diff"])
    p_users = holm([v[0] for v in raw.values()])
    p_seeds = holm([v[1] for v in raw.values()])
    return {m: (pu, ps, v[2]) for (m, v), pu, ps in zip(raw.items(), p_users, p_seeds)}


def _curve(run: Path) -> list[tuple[int, float]]:
    """A run's validation curve: (epoch, recall@20) of each evaluated epoch."""
    return [(r["epoch"], r["val"]["recall@20"]) for r in read_train_log(run) if "val" in r]


def _v01_run(folders: list[Path], name: str, curve: list[tuple[int, float]]) -> Path | None:
    """The v0.1 run `name` among `folders` whose validation curve is a prefix of `curve` (the same training
    stopped earlier: same settings and seed, bit for bit); None when no folder has one."""
    for folder in folders:
        run = folder / "runs" / name
        if (run / "eval" / "_COMPLETE").exists():
            mine = _curve(run)
            if mine == curve[:len(mine)]:
                return run
    return None


def _p(value: float | None) -> str:
    """A p-value as text; "—" where the test is undefined (one seed, or no differences at all)."""
    return "—" if value is None else f"{value:.2g}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("label", help="dataset name for the first column")
    p.add_argument("study", type=Path, help="multi-seed output trained under the stopping defaults")
    p.add_argument("--v01", type=Path, nargs="+", default=[],
                   help="multi-seed outputs of the v0.1-rule runs (same seeds; the one whose run trained the same "
                        "curve is used)")
    p.add_argument("--baseline", default="lightgcn", help="system the others are tested against")
    p.add_argument("--tuning", default="untuned", help="label of the tuning column (e.g. tuned for a tuned recipe)")
    p.add_argument("--untuned", type=Path, default=None,
                   help="the same systems' untuned study (same dataset and seeds): adds each system's paired test of "
                        "STUDY against it (Holm over the systems) to its defaults row")
    args = p.parse_args(argv)
    runs_dir = args.study / "runs"
    done = {m: [s for s in range(100) if (runs_dir / f"{m}-seed{s}" / "eval" / "_COMPLETE").exists()]
            for m in SYSTEMS}
    common = {m: [s for s in done[m] if s in done[args.baseline]] for m in SYSTEMS}
    vs_base = _paired({m: ([runs_dir / f"{args.baseline}-seed{s}" for s in common[m]],
                           [runs_dir / f"{m}-seed{s}" for s in common[m]])
                       for m in SYSTEMS if m != args.baseline and common[m]})
    vs_untuned = {}
    if args.untuned is not None:
        had = {m: [s for s in done[m] if (args.untuned / "runs" / f"{m}-seed{s}" / "eval" / "_COMPLETE").exists()]
               for m in SYSTEMS}
        vs_untuned = _paired({m: ([args.untuned / "runs" / f"{m}-seed{s}" for s in had[m]],
                                  [runs_dir / f"{m}-seed{s}" for s in had[m]]) for m in SYSTEMS if had[m]})
    for m in SYSTEMS:
        new, old = [], []
        for s in done[m]:
            run = runs_dir / f"{m}-seed{s}"
            manifest = json.loads((run / "manifest.json").read_text())
            if "sizing" in manifest:
                raise SystemExit(f"{run}: sized with 'auto' (eval_every 'auto' depends on the patience); "
                                 f"replay needs runs with explicit values")
            recall, ndcg = _test(run)
            new.append((manifest["best_epoch"], manifest["epochs_run"], manifest["stopping"]["still_improving"],
                        recall, ndcg))
            curve = _curve(run)
            rule = replay(curve, EarlyStopping(**V01), epochs=200)
            if not rule.stopped and rule.last_epoch < 200:
                print(f"{m} seed {s}: v0.1's rule had not stopped when the run ended", file=sys.stderr)
            elif rule.best_epoch == manifest["best_epoch"]:
                old.append((rule.best_epoch, rule.last_epoch, not rule.stopped, recall, ndcg))
            elif (v01_run := _v01_run(args.v01, f"{m}-seed{s}", curve)) is not None:
                v01 = json.loads((v01_run / "manifest.json").read_text())
                if (v01["best_epoch"], v01["epochs_run"]) != (rule.best_epoch, rule.last_epoch):
                    raise SystemExit(f"{v01_run}: best/last epoch {v01['best_epoch']}/{v01['epochs_run']}, the "
                                     f"replay says {rule.best_epoch}/{rule.last_epoch}: not the same training")
                old.append((rule.best_epoch, rule.last_epoch, False, *_test(v01_run)))
            else:
                old.append((rule.best_epoch, rule.last_epoch, False, None, None))
                print(f"{m} seed {s}: v0.1 keeps epoch {rule.best_epoch} (stops at {rule.last_epoch}), the defaults "
                      f"{manifest['best_epoch']}: train it with v0.1's rule into --v01", file=sys.stderr)
        for rule_name, rows in (("v0.1", old), ("defaults", new)):
            if not rows:
                continue
            test = "—"
            if rule_name == "defaults":
                test = "baseline" if m == args.baseline else "—"
                if m in vs_base:
                    p_users, p_seeds, diff = vs_base[m]
                    n = len(common[m])
                    test = f"{_p(p_users)} / {_p(p_seeds)}" + (f" ({n} seeds)" if n != len(rows) else "")
                    test += f", Δ {diff:+.4f}"
                if m in vs_untuned:
                    p_users, p_seeds, diff = vs_untuned[m]
                    test += f"; vs untuned: {_p(p_users)} / {_p(p_seeds)}, Δ {diff:+.4f}"
            print(f"| {args.label} | {m} | {args.tuning} | {rule_name} | {len(rows)} | "
                  f"{'/'.join(str(r[0]) for r in rows)} "
                  f"| {'/'.join(str(r[1]) for r in rows)} | {sum(bool(r[2]) for r in rows)} | "
                  f"{_mean_std([r[3] for r in rows])} | {_mean_std([r[4] for r in rows])} | {test} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
