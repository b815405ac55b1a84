"""Audit ledger export (supervisors) and the public signed checkpoint."""
from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, Field

from core.errors import NotFound
from evidence import ledger_service as ledger
from web.api import Api
from core.scheduler import schedule
from web.keys import LEDGER_SIGNER, SETTINGS, Principal, db

api = Api("audit")


class EntriesQuery(BaseModel):
    after: int = Field(default=0, ge=0)
    limit: int = Field(default=100, ge=1, le=1000)


class EntryOut(BaseModel):
    seq: int
    at: str
    actor: str
    action: str
    entity: str
    payload_sha256: str
    entry_hash: str


class EntriesOut(BaseModel):
    entries: list[EntryOut]
    next: str | None


class CheckpointOut(BaseModel):
    size: int
    head: str
    root: str
    signature: str = Field(description="base64 Ed25519 signature over canonical JSON of {size, head, root}")
    key_id: str
    public_key: str = Field(description="base64 raw Ed25519 public key")
    algorithm: str


@api.get("/api/v1/audit/entries", summary="Ledger entries in order, for independent re-computation",
         query=EntriesQuery, response=EntriesOut, roles=("supervisor", "admin"))
async def entries(request: web.Request, who: Principal, query: EntriesQuery):
    rows = await ledger.entries_after(db(request), query.after, query.limit)
    out = [ledger.export_entry(r) for r in rows]
    nxt = (f"/api/v1/audit/entries?after={rows[-1].seq}&limit={query.limit}"
           if len(rows) == query.limit else None)
    return EntriesOut(entries=out, next=nxt)


@api.get("/api/v1/audit/checkpoint", summary="The latest signed checkpoint and the platform public key",
         response=CheckpointOut, auth=False, errors=(404,))
async def checkpoint(request: web.Request):
    cp = await ledger.latest_checkpoint(db(request))
    if cp is None:
        raise NotFound("no checkpoint has been signed yet", code="no_checkpoint")
    return ledger.checkpoint_dict(cp, request.app[LEDGER_SIGNER])


@api.post("/api/v1/audit/checkpoint", summary="Sign a checkpoint of the ledger now", response=CheckpointOut,
          status=201, roles=("supervisor", "admin"), errors=(404, 409))
async def make_checkpoint(request: web.Request, who: Principal):
    cp = await ledger.make_checkpoint(db(request), request.app[LEDGER_SIGNER])
    if cp is None:
        raise NotFound("the ledger is empty", code="ledger_empty")
    return ledger.checkpoint_dict(cp, request.app[LEDGER_SIGNER])


def register_jobs(app: web.Application, registry) -> None:
    signer = app[LEDGER_SIGNER]
    interval_s = app[SETTINGS].checkpoint_interval_s

    async def checkpoint(session, payload: dict) -> None:
        """Periodic checkpoint; reschedules itself."""
        await ledger.make_checkpoint(session, signer)
        await schedule(session, "ledger.checkpoint", delay_s=interval_s, dedupe_key="ledger.checkpoint")
    registry.register("ledger.checkpoint", checkpoint)
