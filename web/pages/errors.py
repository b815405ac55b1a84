"""What a refusal says to a person, in their language: the API's stable error codes mapped to catalogue
messages. A code without an entry shows a generic sentence with the code, so nothing is ever untranslated."""
from __future__ import annotations

from core.errors import DomainError
from web.pages.i18n import N_, gettext

MESSAGES = {
    "csrf_failed": N_("This form has expired or did not come from this site. Reload the page and try again."),
    "not_found": N_("There is no such page."),
    "method_not_allowed": N_("This page cannot be used that way."),
    "validation_failed": N_("Some of the values given are not valid. Check the form and try again."),
    "authentication_required": N_("Please sign in first."),
    "role_forbidden": N_("Your role may not do this."),
    "invalid_credentials": N_("Wrong username or password."),
    "account_disabled": N_("This account is disabled."),
    "totp_required": N_("This account needs a one-time code from its authenticator app."),
    "totp_invalid": N_("The one-time code is wrong or expired."),
    "totp_reused": N_("This one-time code was already used; wait for the next one."),
    "totp_not_enrolled": N_("This account has no second factor yet; ask an administrator."),
    "login_throttled": N_("Too many attempts. Wait a little before trying again."),
    "rate_limited": N_("Too many attempts. Wait a little before trying again."),
    "registration_throttled": N_("Too many attempts. Wait a little before trying again."),
    "weak_password": N_("The password is too weak: use at least 10 characters, mixing letters with digits or symbols."),
    "invalid_social_credit_code": N_("The unified social credit code is not valid."),
    "tender_not_found": N_("There is no such tender, or it is not public."),
    "lot_not_found": N_("There is no such lot."),
    "status_not_public": N_("No tender is listed under this status."),
    "unknown_status": N_("No tender is listed under this status."),
    "invalid_cursor": N_("This page link is out of date; start again from the first page."),
    "not_registered": N_("Your organisation has not registered for this lot."),
    "organisation_already_registered": N_("Your organisation is already registered for this lot."),
    "not_accepting_bids": N_("This tender does not accept bids now."),
    "bid_deadline_passed": N_("The bid deadline has passed."),
    "invalid_bid_bundle": N_("The file is not a bid bundle: a tar file whose first member is form.json."),
    "not_sealed_to_tender": N_("The file is sealed, but not to this tender's recipient."),
    "malformed_age": N_("The file is not a readable sealed age file."),
    "armored_not_accepted": N_("Send the sealed file in binary age format, not armored text."),
    "unsupported_seal": N_("The file is sealed in a way the platform does not accept."),
    "empty_upload": N_("The file is empty."),
    "upload_too_large": N_("The file is larger than the limit."),
    "payload_too_large": N_("The file is larger than the limit."),
    "unsupported_media_type": N_("This kind of file is not accepted here."),
    "no_bid": N_("Your organisation has no live bid for this lot."),
    "not_a_pdf": N_("The file is not a PDF."),
    "malformed_pdf": N_("The PDF cannot be read."),
    "record_restricted": N_("This record is not public now."),
    "record_not_found": N_("There is no such record."),
    "no_checkpoint": N_("No checkpoint has been signed yet."),
    "invalid_record": N_("The text is not a draw record: paste the JSON of a published draw record."),
    "document_not_found": N_("There is no such document."),
    # evaluation sessions (the role pages)
    "check_in_not_open": N_("Check-in is not open for this session."),
    "already_checked_in": N_("You have already checked in."),
    "commitment_required": N_("The integrity commitment must be signed to sit on the committee."),
    "identity_mismatch": N_("The last four characters do not match the ID card on record."),
    "member_unplaced": N_("You have no place yet; ask the agent."),
    "not_a_member": N_("Only members of the committee act in this session."),
    "already_voted": N_("You have already voted for the chair."),
    "chair_elected": N_("The chair is already elected."),
    "not_the_chair": N_("Only the chair may do this."),
    "review_closed": N_("The review is closed."),
    "review_incomplete": N_("Not every member has cast every ballot yet."),
    "reason_required": N_("A fail needs a reason."),
    "review_not_closed": N_("Scoring starts once the review is closed."),
    "session_not_in_progress": N_("The evaluation is not in progress."),
    "score_out_of_range": N_("A score is outside its criterion's range."),
    "invalid_scoring_input": N_("A score is not a valid number."),
    "number_too_precise": N_("A score has more decimals than the method allows."),
    "sheet_locked": N_("This sheet is submitted and locked; the chair may return it."),
    "sheet_incomplete": N_("A submitted sheet scores every criterion."),
    "sheets_incomplete": N_("Not every sheet has been submitted yet."),
    "flags_open": N_("Some flagged scores still need a justification."),
    "invalid_suspension": N_("The session cannot be suspended or resumed now."),
    "illegal_transition": N_("The session cannot move that way from where it is."),
    "session_not_found": N_("There is no such evaluation session."),
    "session_forbidden": N_("You do not follow this evaluation session."),
    "entropy_already_supplied": N_("The entropy of this draw has already been supplied."),
    "draw_not_found": N_("There is no such draw."),
}


def error_message(err: DomainError) -> str:
    known = MESSAGES.get(err.code)
    if known is not None:
        return gettext(known)
    return gettext("The request was refused (%(code)s): %(message)s", code=err.code, message=err.message)
