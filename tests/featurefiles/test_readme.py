"""README's table of feature-file tools: every command in it runs, on golden files laid
out as that tool writes them, and the query finds the clip at its true start."""

from __future__ import annotations

import json
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.featurefiles import golden

README = Path(__file__).resolve().parents[2] / "README.md"
HEADER = "| tool | writes | import | query with a clip's features |"

#: Each row's golden files, by the start of its tool cell (a row without one fails).
GOLDENS = {
    "SlowFast": golden.slowfast,
    "CLIP": golden.clip_npz,
    "ResNet at 1 fps": golden.resnet_npy,
    "ResNet merged": golden.resnet_h5,
    "video_features, frame-wise": golden.vf_framewise,
    "video_features I3D": golden.vf_i3d,
    "video_features R(2+1)D": golden.vf_r21d,
}


@dataclass(frozen=True)
class Row:
    tool: str
    ingest: list[str]  # the command's arguments after `vsearch`; empty: no command (refused)
    query: list[str]
    text: str


def _command(cell: str) -> list[str]:
    found = re.findall(r"`(vsearch [^`]+)`", cell)
    return shlex.split(found[0])[1:] if found else []


def table_rows() -> list[Row]:
    lines = README.read_text().splitlines()
    start = lines.index(HEADER) + 2  # past the header and its rule
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        rows.append(Row(tool=cells[0], ingest=_command(cells[2]), query=_command(cells[3]), text=line))
    return rows


ROWS = table_rows()


def test_the_table_has_a_row_per_tool():
    tools = [row.tool for row in ROWS]
    assert all(any(tool.startswith(key) for tool in tools) for key in GOLDENS), tools
    refused = [row for row in ROWS if not row.ingest]
    assert [row.tool.split(" (")[0] for row in refused] == ["video_features with `on_extraction=save_pickle`"]
    assert "on_extraction=save_numpy" in refused[0].text  # says which option writes NumPy instead


def _option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


@pytest.mark.parametrize("row", [row for row in ROWS if row.ingest], ids=lambda row: row.tool.split(" (")[0])
def test_readme_commands_import_and_find_the_clip_at_its_true_start(row, tmp_path):
    write = next(fn for key, fn in GOLDENS.items() if row.tool.startswith(key))
    if write is golden.resnet_h5:
        pytest.importorskip("h5py")
    truth = write(tmp_path)
    assert row.ingest[0] == "ingest" and row.query[0] == "query"
    ingest = run_cli(*row.ingest, cwd=tmp_path)
    assert ingest.returncode == 0, ingest.stderr
    assert "2 added" in ingest.stdout, ingest.stdout
    query = run_cli(*row.query, "--json", cwd=tmp_path)
    assert query.returncode == 0, query.stderr
    hit = json.loads(query.stdout)["hits"][0]
    videos = tmp_path / _option(row.ingest, "--videos")
    assert os.path.realpath(hit["video"]) == os.path.realpath(videos / f"{truth.video}.mp4")
    assert abs(hit["start"] - truth.start) <= truth.tolerance, (hit, truth)
