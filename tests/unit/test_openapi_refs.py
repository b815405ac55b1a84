"""The OpenAPI document the API reference page renders: every $ref points at a schema that is there."""
from web.app import route_modules
from web.openapi import build_openapi


def _refs(node, found):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                found.add(value)
            else:
                _refs(value, found)
    elif isinstance(node, list):
        for item in node:
            _refs(item, found)
    return found


def test_every_ref_of_the_openapi_document_resolves():
    apis = [m.api for m in route_modules()]
    spec = build_openapi([s for api in apis for s in api.specs], title="bidroom API", version="1",
                         server_url="http://127.0.0.1:8080")
    refs = _refs(spec, set())
    assert len(refs) > 50
    schemas = spec["components"]["schemas"]
    for ref in refs:
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.rsplit("/", 1)[-1] in schemas, ref
    operations = [op for ops in spec["paths"].values() for op in ops.values()]
    assert len(operations) > 100 and all(op.get("responses") for op in operations)
