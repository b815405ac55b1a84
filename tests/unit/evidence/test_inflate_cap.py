"""The cap on inflated streams holds for memory, not only for the answer: validating a deflate bomb allocates
about the cap, never the bomb's size."""
from __future__ import annotations

import tracemalloc

import pytest

from core.errors import Unprocessable
from evidence.pki import Pki
from evidence.signing import MAX_INFLATED_BYTES, verify_pdf
from tests.hostile import pdfs

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    return Pki.load_or_create(tmp_path_factory.mktemp("pki"), public_url="https://bidroom.example.cn")


@pytest.mark.parametrize("bomb", [pdfs.deflate_bomb, pdfs.object_stream_bomb])
async def test_a_bomb_of_512_mib_is_refused_within_the_cap(pki, bomb):
    data = bomb(512 * MiB)
    tracemalloc.start()
    try:
        with pytest.raises(Unprocessable) as refused:
            await verify_pdf(data, pki)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert refused.value.code == "pdf_inflates_too_much"
    assert peak < 2 * MAX_INFLATED_BYTES + 16 * MiB


async def test_a_lower_cap_refuses_what_the_default_lets_through(pki):
    data = pdfs.deflate_bomb(8 * MiB)
    report = await verify_pdf(data, pki)
    assert report.signed is False
    with pytest.raises(Unprocessable) as refused:
        await verify_pdf(data, pki, max_inflated=4 * MiB)
    assert refused.value.code == "pdf_inflates_too_much"
    assert refused.value.details == {"limit_bytes": 4 * MiB}
