"""Worker for the kill -9 test: runs the attributes job with a FakeBackend that sleeps per batch and logs the cache
key of every request it answered, so the test can SIGKILL it mid-run. Usage: DATASET OUT LOG SLEEP_S."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path

from testkit.fakes import FakeBackend, valid_text

from llmrec_local.augment import AugmentConfig, augment
from llmrec_local.augment.prompts import TEMPLATE_VERSIONS
from llmrec_local.llm.base import GenRequest, GenResult

CONFIG = AugmentConfig(model="fake", jobs=("attributes",), batch_size=3)


class SlowLoggingBackend(FakeBackend):
    def __init__(self, log: Path, sleep_s: float) -> None:
        super().__init__(valid_text)
        self.log, self.sleep_s = log, sleep_s

    def generate(self, requests: Sequence[GenRequest]) -> list[GenResult]:
        time.sleep(self.sleep_s)
        out = super().generate(requests)
        with open(self.log, "a") as f:
            for r in requests:
                f.write(r.cache_key(self.model_id, TEMPLATE_VERSIONS["attributes"]) + "\n")
        return out


if __name__ == "__main__":
    dataset, out, log, sleep_s = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), float(sys.argv[4])
    augment(CONFIG, dataset, out, backend=SlowLoggingBackend(log, sleep_s), progress=False)
