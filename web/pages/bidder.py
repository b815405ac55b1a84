"""Bidder pages: registration, "my bids" with receipts, registering for a lot, and the sealed submission.

The submission page seals the bid bundle in the browser (npm `age-encryption`, static/js/seal.js) to the
tender's recipient and PUTs only the ciphertext here, where the API's own upload handler
(`trading.routes.bids.put_bid`) checks it is sealed to that recipient and stores it as is. Without the
browser's sealing (the box unticked) the plain bundle goes the same way and the server seals it as it arrives;
without JavaScript the form posts the file and the same bid services receive it."""
from __future__ import annotations

from aiohttp import web
from pydantic import ValidationError

from core import identity_service as svc
from core.errors import DomainError, Unprocessable
from core.identity_schemas import RegisterIn
from core.storage import Storage
from identity import routes as identity_routes
from trading import bids, participation
from trading.loaders import lot_not_found
from trading.routes import bids as bid_routes
from trading.routes import tenders as tender_routes
from web.api import RequestValidationFailed, json_response
from web.keys import LEDGER_SIGNER, SESSIONS, SETTINGS, TOKENS, db
from web.pages.common import start_session
from web.pages.public import status_label
from web.pages.routing import FormError, Pages, see_other

pages = Pages()
REGISTER_FIELDS = ("username", "display_name", "email", "phone", "org_name", "social_credit_code", "region_code")


@pages.get("/register", "register.html")
async def register_form(request: web.Request, who):
    return {"form": {}}


@pages.post("/register")
async def register(request: web.Request, who):
    form = await request.post()
    values = {k: str(form.get(k, "")).strip() for k in REGISTER_FIELDS}
    password = str(form.get("password", ""))
    try:
        try:
            body = RegisterIn.model_validate({
                "username": values["username"], "password": password, "display_name": values["display_name"],
                "email": values["email"] or None, "phone": values["phone"] or None, "role": "bidder",
                "organisation": {"name": values["org_name"], "social_credit_code": values["social_credit_code"],
                                 "region_code": values["region_code"] or None}})
        except ValidationError as err:
            raise RequestValidationFailed("body", err) from err
        # the API's registration handler itself: its checks, its throttle, its ledger entry
        await identity_routes.register(request, body=body)
        tokens = await svc.login(db(request), username=body.username, password=password, totp=None,
                                 issuer=request.app[TOKENS], refresh_ttl_s=request.app[SETTINGS].refresh_token_ttl_s,
                                 client=identity_routes.client_address(request),
                                 vault=identity_routes.totp_vault(request))
    except RequestValidationFailed as err:
        fields = sorted({e["path"].split(".")[-1] for e in err.field_errors()})
        bad = Unprocessable("the request does not match the schema", code="validation_failed",
                            details={"fields": fields})
        raise FormError(bad, "register.html", {"form": values, "bad_fields": fields}) from err
    except DomainError as err:
        raise FormError(err, "register.html", {"form": values, "bad_fields": [err.details.get("field", "")]}) from err
    response = see_other("/me/bids")
    start_session(request, response, tokens.refresh_token)
    return response


@pages.get("/me/bids", "my_bids.html", roles=("bidder",))
async def my_bids(request: web.Request, who):
    return {"lots": await bids.my_lots(db(request), who), "status_label": status_label}


@pages.post("/lots/{lot_id}/register", roles=("bidder",))
async def register_for_lot(request: web.Request, who):
    _, lot, tender = await participation.register_for_lot(db(request), who, request.match_info["lot_id"])
    return see_other(f"/tenders/{tender.code}/lots/{lot.public_id}/bid")


@pages.get("/tenders/{code}/lots/{lot}/bid", "bid.html", roles=("bidder",))
async def bid_page(request: web.Request, who):
    tender = await tender_routes.get_tender(request)
    lot = next((x for x in tender.lots if x.lot_id == request.match_info["lot"]), None)
    if lot is None:
        raise lot_not_found(request.match_info["lot"])
    current = None
    try:
        current = await bids.my_bid(db(request), tender.code, lot.lot_id, who)
    except DomainError:
        current = None
    return {"t": tender, "lot": lot, "current": current, "registered": lot.lot_id in (tender.my_registrations or []),
            "max_bytes": request.app[SETTINGS].max_upload_bytes, "status_label": status_label}


@pages.put("/tenders/{code}/lots/{lot}/bid", roles=("bidder",))
async def put_bid(request: web.Request, who):
    """The browser's upload: the API's handler, so the same checks and the same signed receipt."""
    receipt = await bid_routes.put_bid(request, who=who)
    return json_response(receipt, status=201)


@pages.post("/tenders/{code}/lots/{lot}/bid", "receipt.html", roles=("bidder",))
async def post_bid(request: web.Request, who):
    """Without JavaScript: the multipart form's file goes through the same bid services, sealed here."""
    code, lot = request.match_info["code"], request.match_info["lot"]
    reader = await request.multipart()
    part = None
    async for candidate in reader:
        if candidate.filename is not None:
            part = candidate
            break
    if part is None:
        raise Unprocessable("no file was sent", code="empty_upload")
    settings = request.app[SETTINGS]
    async with request.app[SESSIONS]() as session:
        target = await bids.bid_target(session, code, lot, who)

    async def chunks():
        while chunk := await part.read_chunk(256 * 1024):
            yield chunk
    received = await bids.receive_bid(chunks(), target, Storage(settings.storage_dir),
                                      max_bytes=settings.max_upload_bytes)
    receipt = await bids.record_bid(db(request), target, received, who, signer=request.app[LEDGER_SIGNER])
    return {"receipt": receipt, "code": code, "lot": lot}
