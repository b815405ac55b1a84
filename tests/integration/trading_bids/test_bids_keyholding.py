"""Key holders and sealing a tender at publish."""
from __future__ import annotations

import pyrage
import pytest
from sqlalchemy import select

from core.errors import Conflict, Unprocessable
from evidence import sealing
from tests.integration.trading_bids.conftest import PASSPHRASES, add_holders, draft_tender, publish
from trading import keyholding
from trading.bid_models import TenderKeyHolder
from trading.models import Tender


async def test_publishing_splits_the_tender_key_among_its_holders_and_keeps_no_identity(
        sessions, client, wrapped_holder_keys):
    info = await draft_tender(sessions, client, bidders=0)
    await add_holders(sessions, client, info, wrapped_holder_keys, k=2)
    recipient = await publish(sessions, info)
    assert recipient.startswith("age1")
    async with sessions() as session:
        rows = list((await session.execute(select(TenderKeyHolder).where(
            TenderKeyHolder.tender_id == info.tender_id).order_by(TenderKeyHolder.position))).scalars())
    assert len(rows) == 3 and all(r.encrypted_share.startswith(sealing.AGE_MAGIC) for r in rows)
    # two of the three holders unlock their personal keys, then their shares
    shares = []
    for row, (_, wrapped), passphrase in list(zip(rows, wrapped_holder_keys, PASSPHRASES))[:2]:
        identity = keyholding.unwrap_holder_identity(wrapped, passphrase)
        shares.append(pyrage.decrypt(row.encrypted_share, [pyrage.x25519.Identity.from_str(identity)]))
    with pytest.raises(Unprocessable):
        sealing.combine_shares(shares[:1], recipient)
    assert sealing.recipient_of(sealing.combine_shares(shares, recipient)) == recipient


async def test_publishing_without_enrolled_holders_is_refused(sessions, client):
    info = await draft_tender(sessions, client, bidders=0)
    async with sessions() as session, session.begin():
        tender = await session.get(Tender, info.tender_id)
        with pytest.raises(Conflict) as caught:
            await keyholding.seal_at_publish(session, tender, actor="system")
    assert caught.value.code == "key_holders_not_ready"
