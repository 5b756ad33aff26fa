"""The collector settings of ``serve`` and ``worker``, in a fresh interpreter (freezing the
test process's own objects would outlive the test)."""

from __future__ import annotations

import subprocess
import sys

from tests.support.proc import subprocess_env

SCRIPT = """
import gc
from fieldreport.gc_tuning import YOUNG_THRESHOLD, settle_after_startup
before = gc.get_threshold()
settle_after_startup()
after = gc.get_threshold()
assert after == (YOUNG_THRESHOLD, before[1], before[2]), (before, after)
assert gc.get_freeze_count() > 0
print("ok")
"""


def test_settle_after_startup_freezes_and_raises_the_young_threshold() -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=subprocess_env(), capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
