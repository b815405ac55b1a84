"""The OCDS record of a tender after its opening, each state reached through the API (copies of the lot states of
conftest.py): the opened record names the bidders, the published candidates appear as pending awards, the award
makes the first candidate the active one and the others unsuccessful, and completing the file keeps that. Each
record validates against OCDS 1.1.5. The opening and failed states are checked in
tests/integration/trading_bids/test_bids_opening.py and test_bids_statutory.py."""
from __future__ import annotations

from tests.ocds_validation import ocds_record

from .conftest import post


async def _candidates(client, code: str) -> list[dict]:
    return (await (await client.get(f"/api/v1/tenders/{code}/candidates")).json())["candidates"]


async def test_the_opened_record_names_every_bidder_and_no_award(client, ready):
    release = await ocds_record(client, ready.info.code)
    assert release["tender"]["statusDetails"] == "opened"
    assert release["tender"]["numberOfTenderers"] == 4 and len(release["tender"]["tenderers"]) == 4
    assert "awards" not in release


async def test_the_evaluating_record_has_no_award_yet(client, started):
    release = await ocds_record(client, started.ready.info.code)
    assert release["tender"]["statusDetails"] == "evaluating"
    assert release["tender"]["numberOfTenderers"] == 4 and "awards" not in release


async def test_published_candidates_are_pending_awards_in_rank_order(client, candidates):
    code = candidates.ready.info.code
    listed = await _candidates(client, code)
    release = await ocds_record(client, code)
    assert release["tender"]["statusDetails"] == "candidates_published"
    assert [a["status"] for a in release["awards"]] == ["pending"] * 3
    assert [a["suppliers"][0]["id"] for a in release["awards"]] == [c["bidder"] for c in listed]


async def test_the_award_makes_the_first_candidate_active_and_completing_the_file_keeps_it(client, awarded):
    info = awarded.ready.info
    listed = await _candidates(client, info.code)
    release = await ocds_record(client, info.code)
    assert release["tender"]["statusDetails"] == "awarded"
    assert [a["status"] for a in release["awards"]] == ["active", "unsuccessful", "unsuccessful"]
    winner = next(p for p in release["parties"] if "supplier" in p["roles"])
    assert winner["id"] == listed[0]["bidder"]
    # 招标投标法 第46条: the contract signed, the agent closes the file
    await post(client, f"/api/v1/tenders/{info.code}/complete", info.agent, {"note": "合同已签订"}, 200)
    completed = await ocds_record(client, info.code)
    assert completed["tender"]["statusDetails"] == "complete"
    assert [a["status"] for a in completed["awards"]] == ["active", "unsuccessful", "unsuccessful"]
