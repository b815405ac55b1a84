"""The OCDS 1.1.5 package schemas of tests/ocds_schema, as validators, and a package's errors as strings."""
from __future__ import annotations

import functools
import json
from decimal import Decimal
from pathlib import Path

from jsonschema import Draft4Validator
from referencing import Registry, Resource

SCHEMAS = Path(__file__).resolve().parent / "ocds_schema"
RELEASE_SCHEMA_URL = "https://standard.open-contracting.org/schema/1__1__5/release-schema.json"


def _load(name: str) -> dict:
    return json.loads((SCHEMAS / name).read_text(encoding="utf-8"))


@functools.cache
def package_validators() -> dict[str, Draft4Validator]:
    """{"record": ..., "release": ...}: the record and release package schemas, the release schema resolved."""
    registry = Registry().with_resource(RELEASE_SCHEMA_URL, Resource.from_contents(_load("release-schema.json")))
    return {name: Draft4Validator(_load(f"{name}-package-schema.json"), registry=registry)
            for name in ("record", "release")}


def schema_errors(validator: Draft4Validator, instance) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(instance)]


async def ocds_record(client, code: str) -> dict:
    """GET a tender's OCDS record package (public), decimals kept as Decimal; asserts it validates."""
    resp = await client.get(f"/api/v1/tenders/{code}/ocds")
    assert resp.status == 200, await resp.text()
    package = json.loads(await resp.text(), parse_float=Decimal)
    assert schema_errors(package_validators()["record"], package) == []
    return package["records"][0]["compiledRelease"]
