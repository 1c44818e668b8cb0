"""Without the ray extra: one line naming it; the single-machine path never imports Ray."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("command", ["ingest", "query"])
def test_without_the_extra_ray_options_name_it(media, tmp_path, command):
    script = ("import sys; sys.modules['ray'] = None; sys.argv = ['vsearch', *sys.argv[1:]]; "
              "from vsearch.cli import run; run()")
    args = [command, str(media["lib11"]), "--index", str(tmp_path / "ix"), "--ray"]
    proc = subprocess.run([sys.executable, "-c", script, *args], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.strip() == 'vsearch: error: --ray needs the \'ray\' extra: pip install "vsearch[ray]"'
    assert not (tmp_path / "ix").exists()


def test_the_core_does_not_import_ray():
    core = ("import sys, vsearch.cli, vsearch.library.index, vsearch.search.pipeline, vsearch.library.sharded, vsearch.ingest.readers, vsearch.cluster; "
            "assert 'ray' not in sys.modules, 'ray'")
    assert subprocess.run([sys.executable, "-c", core], cwd=ROOT).returncode == 0
