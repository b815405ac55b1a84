"""HTTP routes for sealed bids: holder keys, key holders, bid upload/replace/withdraw, the opening, results."""
from __future__ import annotations

import asyncio
import logging
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Any, AsyncIterator

from aiohttp import web

from core.child_pool import child_pool
from core.db import advisory_xact_lock
from core.errors import NotFound, PayloadTooLarge, UnsupportedMediaType
from core.identity_models import User
from core.notifications import InAppNotifier
from core.scheduler import schedule
from core.storage import Storage
from evidence import ledger_service as ledger
from trading import bids, keyholding, opening, results, statutory
from trading.access import require_manager
from trading.bundle import BundleLimits
from trading.loaders import get_tender, visible_tender
from trading.models import Tender
from trading.schemas import (AwardsOut, BidStatusOut, CandidatesIn, CandidatesOut, HolderKeyOut, KeyHolderOut,
                             KeyHoldersIn, KeyHoldersOut, ObjectionAnswerIn, ObjectionIn, ObjectionOut, ObjectionsOut,
                             OpenedBidsOut, OpeningOut, PassphraseIn, ReceiptOut)
from trading.schemas import CompleteIn, TenderStatusOut
from web.api import Api
from web.keys import LEDGER_SIGNER, NOTIFIER, READ_SESSIONS, RECORDS, SESSIONS, SETTINGS, Principal, db, principal

log = logging.getLogger(__name__)

api = Api("trading-bids")
SEALING_POOL = web.AppKey("trading.sealing_pool", ProcessPoolExecutor)  # scrypt unwraps at the opening
ENROLMENT_POOL = web.AppKey("trading.enrolment_pool", ProcessPoolExecutor)  # scrypt wraps of new holder keys
KEYRING = web.AppKey("trading.keyring", keyholding.PlatformKeyring)
UPLOAD_GATE = web.AppKey("trading.upload_gate", bids.UploadGate)  # upload slots, one upload per bidder and lot
UPLOAD_CHUNK = 256 * 1024
BID_TYPES = ("application/octet-stream", "application/x-tar", "application/age")
_PLATFORM_KEY_LOCK = 0x7B1D_0007
SWEEP_JOB = "bids.sweep_partial_uploads"
SWEEP_EVERY_S = 3600


def sealing_pool(workers: int = 2) -> ProcessPoolExecutor:
    """The opening's scrypt pool: spawned processes (forking a process that runs an event loop and DB connections
    is not safe), at nice 10 so scrypt does not take the cores from the event loop, yet keeps a share of the CPU
    on a busy machine (an opening must not wait for a quiet moment), each ending when the server process does."""
    return child_pool(workers, niceness=10)


def enrolment_pool(priority: str, workers: int = 2) -> ProcessPoolExecutor:
    """The enrolment's scrypt pool, apart from the opening's: any signed-in agent or supervisor can keep it full
    (bench/hostile_load.py), so at priority "idle" its jobs run only on CPU that nothing else wants (SCHED_IDLE),
    and "low" at nice 10 like the opening's."""
    return child_pool(workers, niceness=10, idle=priority == "idle")


async def cleanup_ctx(app: web.Application) -> AsyncIterator[None]:
    """The scrypt process pools, the master-secret keyring, and the platform holder key."""
    settings = app[SETTINGS]
    pool, enrolments = sealing_pool(), enrolment_pool(settings.enrolment_priority)
    keyring = keyholding.PlatformKeyring.from_keys_dir(settings.keys_dir)
    app[SEALING_POOL] = pool
    app[ENROLMENT_POOL] = enrolments
    app[KEYRING] = keyring
    app[UPLOAD_GATE] = bids.UploadGate(settings.upload_slots)
    async with app[SESSIONS]() as session, session.begin():
        await advisory_xact_lock(session, _PLATFORM_KEY_LOCK)
        await keyholding.ensure_platform_key(session, keyring)
        if settings.run_scheduler:
            await schedule(session, SWEEP_JOB, delay_s=60, dedupe_key=SWEEP_JOB)
    yield
    for each in (pool, enrolments):
        await asyncio.to_thread(each.shutdown, wait=True, cancel_futures=True)


def register_jobs(app: web.Application, registry: Any) -> None:
    """The hourly sweep of partial uploads (a server killed or a connection dropped mid-upload)."""

    async def sweep(session, payload: dict) -> None:
        found = await asyncio.to_thread(bids.sweep_partial_uploads, Storage(app[SETTINGS].storage_dir))
        if found.removed:
            await ledger.append(session, actor="system", action="bid.partial_uploads_removed", entity="storage:bids",
                                payload={"files": found.removed, "bytes": found.bytes})
            log.info("removed %d partial bid uploads (%d bytes)", found.removed, found.bytes)
        await schedule(session, SWEEP_JOB, delay_s=SWEEP_EVERY_S, dedupe_key=SWEEP_JOB)
    registry.register(SWEEP_JOB, sweep)
    # objections: the agent's reminder before the 3-day answer deadline, the supervisors' alert after it
    for kind, handler in results.job_handlers(app.get(NOTIFIER) or InAppNotifier()).items():
        registry.register(kind, handler)


def _pool(request: web.Request) -> ProcessPoolExecutor:
    return request.app[SEALING_POOL]


def _keyring(request: web.Request) -> keyholding.PlatformKeyring:
    return request.app[KEYRING]


async def _me(request: web.Request, who: Principal) -> User:
    return await db(request).get(User, who.user_id)


async def _tender_for_agent(request: web.Request, who: Principal, code: str, *, lock: bool = False) -> Tender:
    tender = await get_tender(db(request), code, lock="update" if lock else None)
    require_manager(tender, who)
    return tender


# ---- holder keys and key holders ----------------------------------------------------------------------------

@api.post("/api/v1/me/holder-key", summary="Enrol (or re-enrol) as a key holder with a passphrase (agents and "
          "supervisors; 429 with Retry-After while enrolments are busy)",
          body=PassphraseIn, response=HolderKeyOut, status=201, roles=keyholding.KEY_HOLDER_ROLES,
          errors=(403, 422, 429))
async def enrol_holder_key(request: web.Request, who: Principal, body: PassphraseIn):
    # scrypt first (bounded gate, no database work), then the short transaction that stores the key: a burst of
    # enrolments never leaves connections idle in transactions while they wait for the pool
    pool = request.app[ENROLMENT_POOL]
    gate = keyholding.scrypt_gate(pool, request.app[SETTINGS].holder_key_queue)
    recipient, wrapped = await keyholding.wrap_new_holder_key(gate, pool, body.passphrase)
    user = await _me(request, who)
    keyholding.check_may_enrol(user.roles, user.public_id)  # the roles as they stand now, not as in the token
    key = await keyholding.store_holder_key(db(request), user, recipient, wrapped, actor=who.public_id)
    return HolderKeyOut(recipient=key.recipient, enrolled_at=await _created(request, key))


async def _created(request: web.Request, key):
    await db(request).refresh(key, ["created_at"])
    return key.created_at


@api.get("/api/v1/me/holder-key", summary="My current holder key's public recipient", response=HolderKeyOut,
         errors=(404,))
async def my_holder_key(request: web.Request, who: Principal):
    key = await keyholding.current_holder_key(db(request), who.user_id)
    if key is None:
        raise NotFound("you have not enrolled a holder key", code="not_enrolled")
    return HolderKeyOut(recipient=key.recipient, enrolled_at=key.created_at)


@api.put("/api/v1/tenders/{code}/key-holders", summary="Name a draft tender's key holders and threshold k",
         body=KeyHoldersIn, response=KeyHoldersOut, roles=("agent",), errors=(403, 404, 409, 422))
async def put_key_holders(request: web.Request, who: Principal, body: KeyHoldersIn):
    tender = await _tender_for_agent(request, who, request.match_info["code"], lock=True)
    views = await keyholding.set_key_holders(db(request), tender, body.holders, body.threshold,
                                             actor=who.public_id)
    return KeyHoldersOut(holders=[KeyHolderOut(**v.__dict__) for v in views])


@api.get("/api/v1/tenders/{code}/key-holders", summary="A tender's key holders", response=KeyHoldersOut,
         roles=("agent",), errors=(403, 404))
async def get_key_holders(request: web.Request, who: Principal):
    tender = await _tender_for_agent(request, who, request.match_info["code"])
    return KeyHoldersOut(holders=[KeyHolderOut(**v.__dict__) for v in await keyholding.key_holders(db(request), tender)])


# ---- bids -------------------------------------------------------------------------------------------------

@api.put("/api/v1/tenders/{code}/lots/{lot}/bid",
         summary="Submit or replace my organisation's sealed bid: a bid bundle (tar) sealed here, or an age file "
                 "sealed to the tender's recipient",
         response=ReceiptOut, status=201, request_content_type="application/octet-stream",
         errors=(403, 404, 408, 409, 413, 415, 422, 507))
async def put_bid(request: web.Request, who: Principal):
    if request.content_type not in BID_TYPES:
        raise UnsupportedMediaType("send the bid as application/octet-stream", code="unsupported_media_type")
    settings = request.app[SETTINGS]
    limit = settings.max_upload_bytes
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"the upload is larger than {limit} bytes", code="upload_too_large",
                              details={"max_bytes": limit})
    code, lot = request.match_info["code"], request.match_info["lot"]
    # A short read of its own: the bid is recorded in a transaction started only after the upload, so that its
    # now() is the moment the bid was complete.
    async with request.app[SESSIONS]() as session:
        target = await bids.bid_target(session, code, lot, who)
    storage = Storage(settings.storage_dir)
    bids.check_disk_space(storage, reserve_bytes=settings.min_free_disk_mb * 1024 * 1024,
                          incoming=request.content_length or 0)
    gate = request.app[UPLOAD_GATE]
    with gate.claim(target):
        async with gate.slot():  # nothing of the body is read before a slot is free: TCP holds the client back
            chunks = bids.timed_chunks(request.content.iter_chunked(UPLOAD_CHUNK),
                                       idle_timeout_s=settings.upload_idle_timeout_s,
                                       timeout_s=settings.upload_timeout_s)
            received = await bids.receive_bid(chunks, target, storage, max_bytes=limit,
                                              limits=bundle_limits(settings))
        async with request.app[SESSIONS]() as session:
            async with session.begin():
                recorded = await bids.record_bid(session, target, received, who, signer=request.app[LEDGER_SIGNER])
    # committed: the ciphertext it replaces goes now (its SHA-256 stays in the ledger)
    await bids.delete_superseded(storage, recorded.superseded)
    return recorded.receipt


def bundle_limits(settings) -> BundleLimits:
    """The bid bundle limits the settings give (BIDROOM_BUNDLE_MAX_MEMBERS, BIDROOM_BUNDLE_MAX_BYTES)."""
    return BundleLimits(max_members=settings.bundle_max_members, max_bytes=settings.bundle_max_bytes)


@api.get("/api/v1/tenders/{code}/lots/{lot}/bid", summary="My organisation's live bid (metadata only)",
         response=BidStatusOut, errors=(403, 404))
async def get_bid(request: web.Request, who: Principal):
    return await bids.my_bid(db(request), request.match_info["code"], request.match_info["lot"], who)


@api.delete("/api/v1/tenders/{code}/lots/{lot}/bid", summary="Withdraw (撤回) my organisation's bid before the "
            "deadline", response=BidStatusOut, errors=(403, 404, 409))
async def delete_bid(request: web.Request, who: Principal):
    return await bids.withdraw_bid(db(request), request.match_info["code"], request.match_info["lot"], who)


# ---- opening ----------------------------------------------------------------------------------------------

@api.post("/api/v1/tenders/{code}/opening", summary="Start the opening (after the bid deadline)",
          response=OpeningOut, roles=("agent",), errors=(403, 404, 409))
async def start_opening(request: web.Request, who: Principal):
    return await opening.start_opening(db(request), request.match_info["code"], who, keyring=_keyring(request),
                                       records=request.app[RECORDS])


@api.get("/api/v1/tenders/{code}/opening", summary="Progress of the opening", response=OpeningOut, auth=False,
         errors=(404,))
async def get_opening(request: web.Request):
    await visible_tender(db(request), request.match_info["code"], principal(request))  # a draft: its agent only
    return await opening.opening_status(db(request), request.match_info["code"])


@api.post("/api/v1/tenders/{code}/opening/shares", summary="Unlock my key share with my passphrase",
          body=PassphraseIn, response=OpeningOut, errors=(403, 404, 409, 422))
async def post_share(request: web.Request, who: Principal, body: PassphraseIn):
    # the holder key is unwrapped (scrypt, in the pool) before the request's transaction begins: no connection
    # and no lock on the tender is held while it waits for the CPU
    unlocked = await opening.unlock_share(request.app[READ_SESSIONS], request.match_info["code"], who,
                                          body.passphrase, pool=_pool(request))
    return await opening.record_share(db(request), request.match_info["code"], who, unlocked,
                                      keyring=_keyring(request), records=request.app[RECORDS],
                                      storage_dir=request.app[SETTINGS].storage_dir,
                                      limits=bundle_limits(request.app[SETTINGS]))


@api.get("/api/v1/tenders/{code}/opened-bids", summary="The bids as read out at the opening (public)",
         response=OpenedBidsOut, auth=False, errors=(404, 409))
async def get_opened_bids(request: web.Request):
    await visible_tender(db(request), request.match_info["code"], principal(request))
    return OpenedBidsOut(bids=await opening.opened_bids(db(request), request.match_info["code"]))


# ---- results ----------------------------------------------------------------------------------------------

@api.post("/api/v1/tenders/{code}/candidates",
          summary="Publish candidates entered by hand (中标候选人公示): single source only; with an evaluation "
                  "committee they come from its sealed report",
          body=CandidatesIn, response=CandidatesOut, status=201, roles=("agent",),
          errors=(403, 404, 409, 422))
async def post_candidates(request: web.Request, who: Principal, body: CandidatesIn):
    # Kept only for single-source procurement, which has no evaluation committee; under every other method the
    # candidates come from the committee's sealed report (409 committee_report_required, trading.results).
    await _tender_for_agent(request, who, request.match_info["code"])
    return CandidatesOut(candidates=await results.publish_candidates(
        db(request), request.match_info["code"], body.candidates, actor=who.public_id,
        publicity_days=body.publicity_days, periods=statutory.Periods(request.app[SETTINGS].statutory_periods)))


@api.get("/api/v1/tenders/{code}/candidates", summary="Published candidates", response=CandidatesOut,
         auth=False, errors=(404,))
async def get_candidates(request: web.Request):
    await visible_tender(db(request), request.match_info["code"], principal(request))
    return CandidatesOut(candidates=await results.list_candidates(db(request), request.match_info["code"]))


@api.post("/api/v1/tenders/{code}/objections", summary="Object (异议) to the candidates during the publicity",
          body=ObjectionIn, response=ObjectionOut, status=201, errors=(403, 404, 409))
async def post_objection(request: web.Request, who: Principal, body: ObjectionIn):
    return await results.file_objection(db(request), request.match_info["code"], who, body.body)


@api.get("/api/v1/tenders/{code}/objections", summary="Objections and answers", response=ObjectionsOut,
         auth=False, errors=(404,))
async def get_objections(request: web.Request):
    await visible_tender(db(request), request.match_info["code"], principal(request))
    return ObjectionsOut(objections=await results.list_objections(db(request), request.match_info["code"],
                                                                 principal(request)))


@api.post("/api/v1/objections/{objection}/answer",
          summary="Answer an objection (the tender's agent); an upheld one sends the lot back to its committee",
          body=ObjectionAnswerIn, response=ObjectionOut, roles=("agent",), errors=(403, 404, 409, 422))
async def post_answer(request: web.Request, who: Principal, body: ObjectionAnswerIn):
    return await results.answer_objection(db(request), request.match_info["objection"], who, body.answer,
                                          upheld=body.upheld, lot=body.lot)


@api.post("/api/v1/tenders/{code}/award", summary="Award each lot after the publicity, with a 中标通知书",
          response=AwardsOut, status=201, roles=("agent",), errors=(403, 404, 409))
async def post_award(request: web.Request, who: Principal):
    return AwardsOut(awards=await results.award(db(request), request.app[RECORDS],
                                                request.match_info["code"], who))


@api.post("/api/v1/tenders/{code}/complete",
          summary="Complete an awarded tender once the written contract is signed (招标投标法 第46条)",
          body=CompleteIn, response=TenderStatusOut, roles=("agent",), errors=(403, 404, 409, 422))
async def post_complete(request: web.Request, who: Principal, body: CompleteIn):
    tender = await results.complete(db(request), request.match_info["code"], who, note=body.note)
    return TenderStatusOut(code=tender.code, status=tender.status)
