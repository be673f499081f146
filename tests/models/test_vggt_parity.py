"""onepass ``vggt-1b`` against the official VGGT code on identical weights.

The reference is not on PyPI and onepass does not ship it, so the parity test runs where a checkout of
github.com/facebookresearch/vggt is available: ``ONEPASS_VGGT_SRC=/path/to/vggt make test`` (the reference
also imports ``huggingface_hub`` and ``einops``; needs ~6 GB of RAM and about a minute on two cores).
docs/MODEL.md records the last run.
"""

from __future__ import annotations

import os

import pytest

from models.eval.vggt_parity import import_reference, run

VGGT_SRC = os.environ.get("ONEPASS_VGGT_SRC")


def test_a_folder_without_the_reference_is_refused_by_name(tmp_path):
    with pytest.raises(ImportError, match=str(tmp_path)):
        import_reference(tmp_path)


@pytest.mark.skipif(
    not VGGT_SRC,
    reason="ONEPASS_VGGT_SRC is not set: the official VGGT code is not installable from PyPI",
)
def test_vggt_1b_matches_the_reference_implementation():
    result = run(VGGT_SRC, views=2, height=112, width=154, threads=os.cpu_count())
    for name, row in result["outputs"].items():
        assert row["ref_shape"] == row["onepass_shape"], name
        assert row["finite"], name
        assert row["rel_max"] <= 1e-3, (name, row)
