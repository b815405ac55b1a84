"""OCDS export validates against the official 1.1.5 schemas in every tender state."""
import json
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from jsonschema import Draft4Validator
from referencing import Registry, Resource

from trading.lifecycle import TenderStatus, Timeline
from trading.ocds import (LOTS_EXTENSION, AwardSnapshot, DocumentSnapshot, LotSnapshot, OrgRef, TenderSnapshot,
                          record_package, release, release_package, to_json)

SCHEMAS = Path(__file__).resolve().parents[2] / "ocds_schema"
RELEASE_SCHEMA_URL = "https://standard.open-contracting.org/schema/1__1__5/release-schema.json"
PREFIX = "ocds-zs2026"
CST = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=CST)

TENDERER = OrgRef("O-TENDER1", "中山市交通运输局", "11442000MB2C12345X")
AGENT = OrgRef("O-AGENT01", "广东某某招标代理有限公司", "91442000MA4W00001A")
BIDDERS = [OrgRef("O-BID0001", "中山建设集团有限公司", "91442000MA4W00002B"),
           OrgRef("O-BID0002", "珠海路桥工程有限公司", "91440400MA4W00003C"),
           OrgRef("O-BID0003", "广州市政工程有限公司")]
ORDER = list(TenderStatus)


def load(name):
    return json.loads((SCHEMAS / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def release_validator():
    return Draft4Validator(load("dereferenced-release-schema.json"))


@pytest.fixture(scope="module")
def registry():
    resource = Resource.from_contents(load("release-schema.json"))
    return Registry().with_resource(RELEASE_SCHEMA_URL, resource)


def errors_of(validator, instance):
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(instance)]


def as_published(obj):
    """What a consumer reads: our JSON text parsed back with exact decimals."""
    return json.loads(to_json(obj), parse_float=Decimal)


def snapshot(status, **changes):
    awarded = status in (TenderStatus.AWARDED, TenderStatus.COMPLETE)
    base = dict(
        id="T-7Q4M2K", code="ZS-2026-FJSZ-00042", title="中山市火炬开发区道路改造工程施工",
        description="道路改造及配套管网", status=status, method="open", family="FJSZ", subtype="FJSZ-SG",
        budget=Decimal("12345678.90"), tenderer=TENDERER, agent=AGENT,
        lots=[LotSnapshot("L1", "第一标段 道路", Decimal("8000000.00")),
              LotSnapshot("L2", "第二标段 管网", Decimal("4345678.90"))],
        timeline=Timeline(T0, T0 + timedelta(days=17), T0 + timedelta(days=20), T0 + timedelta(days=20)),
        bidders=BIDDERS,
        awards=[AwardSnapshot("A1", BIDDERS[0], Decimal("7890000.00"), T0 + timedelta(days=30),
                              status="awarded" if awarded else "candidate", lot_id="L1", rank=1),
                AwardSnapshot("A2", BIDDERS[1], Decimal("7950000.00"), T0 + timedelta(days=30),
                              status="unsuccessful" if awarded else "candidate", lot_id="L1", rank=2)],
        documents=[DocumentSnapshot("D1", "招标公告", "https://bidroom.example/docs/D1", "tenderNotice", T0,
                                    "application/pdf")],
        published_at=None if status is TenderStatus.DRAFT else T0,
        updated_at=T0 + timedelta(days=ORDER.index(status), hours=1),
    )
    base.update(changes)
    return TenderSnapshot(**base)


@pytest.mark.parametrize("status", list(TenderStatus))
def test_a_release_validates_against_the_official_schema_in_every_state(status, release_validator):
    published = as_published(release(snapshot(status), PREFIX))
    assert errors_of(release_validator, published) == []
    assert published["tender"]["statusDetails"] == status.value


@pytest.mark.parametrize("status, ocds_status, tag", [
    ("draft", "planning", "planning"), ("published", "active", "tender"), ("evaluating", "active", "tenderUpdate"),
    ("candidates_published", "active", "award"), ("awarded", "complete", "award"),
    ("cancelled", "cancelled", "tenderCancellation"), ("failed", "unsuccessful", "tenderUpdate"),
])
def test_local_states_map_to_ocds_tender_status_and_release_tag(status, ocds_status, tag):
    r = release(snapshot(TenderStatus(status)), PREFIX)
    assert r["tender"]["status"] == ocds_status
    assert r["tag"] == [tag]


@pytest.mark.parametrize("method, ocds, zh", [
    ("open", "open", "公开招标"), ("invitational", "selective", "邀请招标"),
    ("competitive_negotiation", "limited", "竞争性谈判"), ("inquiry", "limited", "询价"),
    ("single_source", "direct", "单一来源采购"),
])
def test_procurement_methods_map_to_ocds_with_the_chinese_name_in_details(method, ocds, zh):
    tender = release(snapshot(TenderStatus.PUBLISHED, method=method), PREFIX)["tender"]
    assert (tender["procurementMethod"], tender["procurementMethodDetails"]) == (ocds, zh)


def test_bidders_stay_secret_until_the_opening():
    for status in (TenderStatus.PUBLISHED, TenderStatus.CLOSED, TenderStatus.OPENING):
        r = release(snapshot(status), PREFIX)
        assert "tenderers" not in r["tender"]
        assert all("tenderer" not in p["roles"] for p in r["parties"])
    opened = release(snapshot(TenderStatus.OPENED), PREFIX)
    assert [t["id"] for t in opened["tender"]["tenderers"]] == [b.id for b in BIDDERS]
    assert opened["tender"]["numberOfTenderers"] == 3


def test_a_tender_that_failed_before_opening_does_not_reveal_its_bidders_but_one_that_failed_after_does():
    assert "tenderers" not in release(snapshot(TenderStatus.FAILED), PREFIX)["tender"]
    after = release(snapshot(TenderStatus.FAILED, opened_at=T0 + timedelta(days=20)), PREFIX)
    assert after["tender"]["numberOfTenderers"] == 3


def test_a_lot_failed_unopened_gives_the_count_of_its_bids_and_no_bidder():
    """实施条例 第44条: fewer than 3 bids are never opened; the failed-tender record, and so OCDS, gives the count."""
    failed = release(snapshot(TenderStatus.FAILED, opened_at=T0 + timedelta(days=20), bidders=(), tenderer_count=2),
                     PREFIX)
    assert "tenderers" not in failed["tender"] and failed["tender"]["numberOfTenderers"] == 2
    assert all("tenderer" not in p["roles"] for p in failed["parties"])


def test_award_candidates_stay_secret_until_their_publicity_notice_and_then_show_as_pending():
    assert "awards" not in release(snapshot(TenderStatus.EVALUATING), PREFIX)
    r = release(snapshot(TenderStatus.CANDIDATES_PUBLISHED), PREFIX)
    assert [(a["status"], a["title"]) for a in r["awards"]] == [("pending", "第一中标候选人"),
                                                                ("pending", "第二中标候选人")]
    assert all("supplier" not in p["roles"] for p in r["parties"])


def test_the_winner_of_an_active_award_becomes_a_supplier_party():
    r = release(snapshot(TenderStatus.AWARDED), PREFIX)
    winner = next(p for p in r["parties"] if p["id"] == BIDDERS[0].id)
    assert winner["roles"] == ["tenderer", "supplier"]
    assert r["awards"][0]["relatedLots"] == ["L1"]
    assert r["awards"][0]["suppliers"] == [{"id": BIDDERS[0].id, "name": BIDDERS[0].name}]


def test_tenderer_is_buyer_and_agent_is_procuring_entity_with_social_credit_codes():
    r = release(snapshot(TenderStatus.PUBLISHED), PREFIX)
    parties = {p["id"]: p for p in r["parties"]}
    assert parties[TENDERER.id]["roles"] == ["buyer"]
    assert parties[AGENT.id]["roles"] == ["procuringEntity"]
    assert parties[AGENT.id]["identifier"]["id"] == AGENT.social_credit_code
    assert r["buyer"] == {"id": TENDERER.id, "name": TENDERER.name}
    assert r["tender"]["procuringEntity"]["id"] == AGENT.id


def test_without_an_agent_the_tenderer_is_both_buyer_and_procuring_entity():
    r = release(snapshot(TenderStatus.PUBLISHED, agent=None), PREFIX)
    assert r["parties"][0]["roles"] == ["buyer", "procuringEntity"]


def test_money_keeps_every_cent_in_the_published_json():
    big = Decimal("1234567890123456.78")
    text = to_json(release(snapshot(TenderStatus.PUBLISHED, budget=big), PREFIX))
    assert '"amount":1234567890123456.78' in text
    assert json.loads(text, parse_float=Decimal)["tender"]["value"] == {"amount": big, "currency": "CNY"}
    assert float(big) != big  # the same figure through a float would have lost its cents


def test_json_output_refuses_floats_so_none_slip_in_unnoticed():
    with pytest.raises(TypeError):
        to_json({"amount": 1.5})


def test_dates_are_utc_with_a_z_suffix():
    r = release(snapshot(TenderStatus.PUBLISHED), PREFIX)
    assert r["tender"]["tenderPeriod"] == {"startDate": "2026-03-02T01:00:00Z", "endDate": "2026-03-22T01:00:00Z"}
    for value in (r["date"], r["tender"]["enquiryPeriod"]["endDate"], r["tender"]["documents"][0]["datePublished"]):
        assert value.endswith("Z") and datetime.fromisoformat(value).utcoffset() == timedelta(0)


def test_category_becomes_the_main_procurement_category_and_an_item_classification_per_lot():
    tender = release(snapshot(TenderStatus.PUBLISHED), PREFIX)["tender"]
    assert tender["mainProcurementCategory"] == "works"
    assert [(i["relatedLot"], i["classification"]["id"]) for i in tender["items"]] == [("L1", "FJSZ-SG"),
                                                                                       ("L2", "FJSZ-SG")]
    land = release(snapshot(TenderStatus.PUBLISHED, family="TDKY", subtype="TDKY-GP", lots=[]), PREFIX)["tender"]
    assert "mainProcurementCategory" not in land
    assert land["items"][0]["classification"]["id"] == "TDKY-GP"


def test_every_state_gets_its_own_release_id_under_one_ocid():
    releases = [release(snapshot(s), PREFIX) for s in TenderStatus]
    assert {r["ocid"] for r in releases} == {f"{PREFIX}-T-7Q4M2K"}
    assert len({r["id"] for r in releases}) == len(releases)


def test_a_release_package_validates_and_declares_the_lots_extension(registry):
    releases = [as_published(release(snapshot(s), PREFIX)) for s in TenderStatus]
    package = as_published(release_package(releases, "https://bidroom.example/ocds/releases/2026-03",
                                           T0 + timedelta(days=40), "中山市公共资源交易中心",
                                           license_url="https://creativecommons.org/licenses/by/4.0/"))
    validator = Draft4Validator(load("release-package-schema.json"), registry=registry)
    assert errors_of(validator, package) == []
    assert package["extensions"] == [LOTS_EXTENSION]
    assert package["version"] == "1.1"


def test_a_package_without_lots_names_no_extension(registry):
    r = as_published(release(snapshot(TenderStatus.PUBLISHED, lots=[]), PREFIX))
    package = release_package([r], "https://bidroom.example/ocds/p1", T0, {"name": "中山市公共资源交易中心"})
    assert "extensions" not in package


def test_a_record_package_validates_with_every_state_and_compiles_to_the_newest(registry):
    history = [release(snapshot(s), PREFIX) for s in
               (TenderStatus.DRAFT, TenderStatus.PUBLISHED, TenderStatus.OPENED, TenderStatus.AWARDED)]
    other = [release(snapshot(TenderStatus.CANCELLED, id="T-OTHER1"), PREFIX)]
    package = as_published(record_package([list(reversed(history)), other], "https://bidroom.example/ocds/records",
                                          T0 + timedelta(days=40), "中山市公共资源交易中心"))
    validator = Draft4Validator(load("record-package-schema.json"), registry=registry)
    assert errors_of(validator, package) == []
    record = package["records"][0]
    assert [r["tender"]["statusDetails"] for r in record["releases"]] == ["draft", "published", "opened", "awarded"]
    assert record["compiledRelease"]["tag"] == ["compiled"]
    assert record["compiledRelease"]["tender"]["statusDetails"] == "awarded"


def test_a_record_refuses_releases_of_two_tenders_mixed_together():
    mixed = [release(snapshot(TenderStatus.PUBLISHED), PREFIX),
             release(snapshot(TenderStatus.PUBLISHED, id="T-OTHER1"), PREFIX)]
    with pytest.raises(ValueError):
        record_package([mixed], "https://bidroom.example/ocds/records", T0, "中心")


def test_the_schema_check_itself_catches_a_wrong_status(release_validator):
    bad = as_published(release(snapshot(TenderStatus.PUBLISHED), PREFIX))
    bad["tender"]["status"] = "published"
    assert errors_of(release_validator, bad) != []
