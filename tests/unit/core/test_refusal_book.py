"""Who ignored a Retry-After (core.ratelimit.RefusalBook), and how long a 429 is held for it
(web.middleware.refusal_hold_s): the longer hold for a client that asks again before it was told it could."""
from __future__ import annotations

from core.ratelimit import RefusalBook


def test_a_client_asking_again_before_its_retry_after_has_ignored_it():
    book = RefusalBook()
    book.refused("user:7", due=110.0, now=100.0)
    assert book.ignored("user:7", 105.0)
    assert not book.ignored("user:7", 110.0)  # it waited as told
    assert not book.ignored("addr:203.0.113.5", 105.0)  # never refused


def test_a_new_refusal_moves_the_due_time():
    book = RefusalBook()
    book.refused("addr:203.0.113.5", due=110.0, now=100.0)
    book.refused("addr:203.0.113.5", due=130.0, now=112.0)
    assert book.ignored("addr:203.0.113.5", 120.0)


def test_the_book_is_bounded_dropping_due_entries_then_the_oldest():
    book = RefusalBook(max_keys=4)
    book.refused("a", due=105.0, now=100.0)
    book.refused("b", due=200.0, now=100.0)
    book.refused("c", due=201.0, now=100.0)
    book.refused("d", due=202.0, now=100.0)
    book.refused("e", due=203.0, now=150.0)  # "a" is already due: only it goes
    assert [k for k in "abcde" if book.ignored(k, 150.0)] == ["b", "c", "d", "e"]
    book.refused("f", due=204.0, now=150.0)  # none is due: the oldest half goes
    assert [k for k in "abcdef" if book.ignored(k, 150.0)] == ["d", "e", "f"]


def test_a_first_refusal_is_held_at_most_its_retry_after_and_a_repeat_the_full_repeat_hold():
    """The hold that makes a flood of clients ignoring Retry-After cost one request per hold: a first refusal
    waits up to 1 s and never past its Retry-After; a client that ignored its last one waits the repeat hold
    (10 s by default) even when the new Retry-After is shorter."""
    from core.settings import Settings
    from web.middleware import refusal_hold_s
    settings = Settings()
    assert refusal_hold_s(settings, ignored=False, retry_after=8, jitter=1.0) == settings.rate_limited_hold_s == 1.0
    assert refusal_hold_s(settings, ignored=False, retry_after=8, jitter=0.5) == 0.5
    assert refusal_hold_s(settings.with_(rate_limited_hold_s=5.0), ignored=False, retry_after=2, jitter=1.0) == 2
    assert refusal_hold_s(settings, ignored=True, retry_after=2, jitter=1.0) == 10.0
    assert refusal_hold_s(settings, ignored=True, retry_after=2, jitter=0.5) == 5.0
