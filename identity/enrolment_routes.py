"""HTTP endpoints of enrolment links: admins create them; the invited person reads one and completes it.

The token travels in the query string or the body, never in the path, so request logs (which record the path)
never hold it.
"""
from __future__ import annotations

from aiohttp import web

from core import identity_service as accounts
from core.identity_schemas import UserOut
from identity import enrolment as svc
from identity.routes import totp_vault, user_out
from identity.schemas import (CompleteEnrolmentIn, EnrolmentLinkOut, EnrolmentOut, EnrolmentQuery, ExpertAccountOut,
                              LinkAccountIn, StaffEnrolmentIn, TokenIn, TotpOfferOut)
from web.api import Api, json_response
from web.keys import SETTINGS, Principal, db

api = Api("identity")
ENROLMENT_PATH = svc.ENROLMENT_PATH


def _no_store(model, status: int = 200) -> web.Response:
    """Links, tokens and TOTP secrets are shown once: no cache keeps them."""
    return json_response(model, status=status, headers={"Cache-Control": "no-store"})


async def _link_out(request: web.Request, link: svc.IssuedLink) -> web.Response:
    enrolment, user = link.enrolment, link.user
    return _no_store(EnrolmentLinkOut(
        enrolment_id=enrolment.public_id, purpose=enrolment.purpose, roles=list(enrolment.roles),
        url=svc.enrolment_url(request.app[SETTINGS].public_url, link.token), token=link.token,
        expires_at=enrolment.expires_at, expert_id=link.expert.public_id if link.expert else None,
        user=user_out(user, await accounts.organisation_of(db(request), user)) if user else None), status=201)


@api.post("/api/v1/admin/experts/{expert_id}/enrolment",
          summary="A one-time link with which an expert of the pool makes a login, linked to the expert",
          response=EnrolmentLinkOut, status=201, roles=("admin",), errors=(404, 409))
async def invite_expert(request: web.Request, who: Principal):
    link = await svc.invite_expert(db(request), who, request.match_info["expert_id"])
    return await _link_out(request, link)


@api.put("/api/v1/admin/experts/{expert_id}/account",
         summary="Link an existing account with the expert role to an expert who has no login",
         body=LinkAccountIn, response=ExpertAccountOut, roles=("admin",), errors=(404, 409, 422))
async def link_account(request: web.Request, who: Principal, body: LinkAccountIn):
    expert_id = request.match_info["expert_id"]
    user = await svc.link_account(db(request), who, expert_id, body.username)
    return ExpertAccountOut(expert_id=expert_id, account=user_out(user, await accounts.organisation_of(db(request),
                                                                                                     user)))


@api.post("/api/v1/admin/enrolments",
          summary="Create a staff account and the one-time link with which its owner sets password and TOTP",
          body=StaffEnrolmentIn, response=EnrolmentLinkOut, status=201, roles=("admin",), errors=(404, 409))
async def invite_staff(request: web.Request, who: Principal, body: StaffEnrolmentIn):
    link = await svc.invite_staff(db(request), who, username=body.username, display_name=body.display_name,
                                  roles=list(body.roles), organisation_public_id=body.organisation_id,
                                  email=body.email, phone=body.phone)
    return await _link_out(request, link)


@api.post("/api/v1/admin/users/{user_id}/enrolment",
          summary="A new link for a staff account whose enrolment was never completed (older links are revoked)",
          response=EnrolmentLinkOut, status=201, roles=("admin",), errors=(404, 409))
async def reinvite_user(request: web.Request, who: Principal):
    link = await svc.reinvite_user(db(request), who, request.match_info["user_id"])
    return await _link_out(request, link)


@api.delete("/api/v1/admin/enrolments/{enrolment_id}", summary="Withdraw an unused enrolment link", status=204,
            roles=("admin",), errors=(404, 409))
async def revoke(request: web.Request, who: Principal):
    await svc.revoke(db(request), who, request.match_info["enrolment_id"])
    return web.Response(status=204)


@api.get(ENROLMENT_PATH, summary="What an enrolment link is for (public: the token is the credential)",
         query=EnrolmentQuery, response=EnrolmentOut, auth=False, errors=(404, 410))
async def read_enrolment(request: web.Request, query: EnrolmentQuery):
    current = await svc.view(db(request), query.token)
    enrolment, user, expert = current.enrolment, current.user, current.expert
    return EnrolmentOut(
        enrolment_id=enrolment.public_id, purpose=enrolment.purpose, roles=list(enrolment.roles),
        username=user.username if user else None, display_name=user.display_name if user else None,
        organisation=current.organisation.name if current.organisation else None,
        expert_id=expert.public_id if expert else None, expert_name=expert.name if expert else None,
        needs_username=current.needs_username, needs_totp=current.needs_totp, expires_at=enrolment.expires_at)


@api.post(f"{ENROLMENT_PATH}/totp", summary="Offer a TOTP secret to scan; the enrolment finishes with a first code",
          body=TokenIn, response=TotpOfferOut, auth=False, errors=(404, 409, 410))
async def offer_totp(request: web.Request, body: TokenIn):
    uri = await svc.offer_totp(db(request), body.token, vault=totp_vault(request))
    return _no_store(TotpOfferOut(totp_provisioning_uri=uri))


@api.post(f"{ENROLMENT_PATH}/complete", summary="Use an enrolment link: set the password (and TOTP); then sign in",
          body=CompleteEnrolmentIn, response=UserOut, auth=False, errors=(404, 409, 410))
async def complete(request: web.Request, body: CompleteEnrolmentIn):
    user = await svc.complete(db(request), body.token, password=body.password, username=body.username,
                              totp=body.totp, vault=totp_vault(request))
    return user_out(user, await accounts.organisation_of(db(request), user))

