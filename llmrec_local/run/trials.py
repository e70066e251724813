"""The runner's API for validation tuning: train one configuration and return its validation metrics.

`llmrec_local.tune` proposes settings; training a proposal is running the train stage, which is the runner's job
(house rule 8), so the tune stage asks this module and nothing else of the runner. The test split is never read:
the trial trains under the standard protocol, which selects on validation, and no evaluation stage runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..artifacts.base import read_manifest
from ..errors import ConfigError, DataError

if TYPE_CHECKING:
    from ..data.arrays import InteractionArrays
    from ..train.config import TrainConfig
    from ..train.side import SideInputs


def trial_identity(base: "TrainConfig", side: "SideInputs | None" = None) -> dict[str, Any]:
    """What a trial's training depends on besides the proposed settings and the dataset: the base config's hash
    (runtime settings excluded) and the content digests of the side input artifacts."""
    from ..train.config import train_config_hash
    from ..train.side import side_digests

    return {"base_config_hash": train_config_hash(base), "side": side_digests(side)}


def train_trial(config: "TrainConfig", dataset: "Path | InteractionArrays", out: Path, *,
                side: "SideInputs | None" = None,
                on_evaluation: Callable[[int, Mapping[str, float]], None] | None = None) -> dict[str, float]:
    """Train `config` into `out` (a scratch folder the caller removes: a trial's run is not kept) and return the
    validation metrics of its selected epoch. Training stops early when `on_evaluation` raises.

    Raises:
        ConfigError: `config` selects on test (protocol "paper"): a trial must never see test data.
        DataError: the run had no validation split to select on.
    """
    from ..train.stage import train

    if config.protocol != "standard":
        raise ConfigError(f"tuning selects on validation: protocol {config.protocol!r} selects on test; use "
                          "protocol = 'standard' for tuned runs")
    manifest = read_manifest(train(config, dataset, Path(out), side=side, force=True, on_evaluation=on_evaluation))
    if manifest.get("selection_split") != "val":
        raise DataError(f"trial run {out} selected on {manifest.get('selection_split')!r}, not on validation; the "
                        "dataset needs a validation split")
    return dict(manifest["val_metrics"])
