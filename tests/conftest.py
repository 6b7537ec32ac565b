import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path: sys.path.insert(0, str(ROOT))

from msta_core.core import reference_data, FETCH_COMMAND


def data_or_skip(name: str) -> Path:
    "The folder of public third-party data `name`, or skip the test with the command that fetches it."
    p = reference_data(name)
    if p is None:
        pytest.skip(f"needs the public data '{name}' (not redistributed with the project): fetch it with "
                    f"`{FETCH_COMMAND}`, or set MSTA_SHARED to a folder holding data/{name}")
    return p
