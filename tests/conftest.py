import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path: sys.path.insert(0, str(ROOT))

from msta_core.core import reference_data, FETCH_COMMAND


def needs(name: str):
    "Skip the test unless the public third-party data `name` is here; the reason names the command that fetches it."
    return pytest.mark.skipif(reference_data(name) is None,
                              reason=f"needs the public data '{name}' (not redistributed with the project): fetch it "
                                     f"with `{FETCH_COMMAND}`, or set MSTA_SHARED to a folder holding data/{name}")
