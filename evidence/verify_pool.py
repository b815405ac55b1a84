"""Validating uploaded PDFs off the event loop, in a bounded pool of worker processes.

Anyone may upload a PDF to have its signatures checked, so the work is bounded three ways:
- at most `capacity` uploads in flight (being read, waiting or running); one more is refused at once with 429
  `verify_busy` and a Retry-After, before its body is read, never queued without bound;
- each runs in a worker process whose address space is capped (RLIMIT_AS), next to the per-document cap on
  inflated streams and on signature fields in `evidence.signing`: a hostile file costs one worker a bounded
  amount of memory and never the server's;
- the event loop only waits: pyHanko's validation is pure Python and would otherwise hold the GIL.

The workers get the trust material (the platform root and the current CRL) with each job, so they never read
the keys directory. One pool serves the process (apps built more than once in one process, as tests do, share
it); its workers start on the first upload.
"""
from __future__ import annotations

import asyncio
import atexit
import logging
import threading
from contextlib import asynccontextmanager
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, AsyncIterator

from core.child_pool import child_pool
from core.errors import Conflict, DomainError, PayloadTooLarge, RateLimited, Unprocessable

log = logging.getLogger(__name__)

# The address space of one worker: the interpreter with pyHanko loaded takes ~120 MiB, validating a 62-page
# report with 10 signatures peaks below 120 MiB; the rest is room for an 8 MiB upload's parsed objects and the
# inflation budget.
WORKER_MEMORY_BYTES = 1024 * 1024 * 1024
SECONDS_PER_JOB = 2  # a 10-signature report validates in ~1.7 s on the reference machine


def _init_worker(memory_bytes: int) -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = memory_bytes if hard == resource.RLIM_INFINITY else min(memory_bytes, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    # pyHanko logs every failed path validation with a traceback; a hostile upload must not flood the log
    logging.getLogger("pyhanko").setLevel(logging.CRITICAL)
    logging.getLogger("pyhanko_certvalidator").setLevel(logging.CRITICAL)


def _error(err: DomainError) -> dict[str, Any]:
    return {"status": err.status, "code": err.code, "message": err.message, "details": err.details}


def verify_job(pdf: bytes, root_der: bytes, crl_der: bytes) -> dict[str, Any]:
    """Run in a worker: validate `pdf` against the platform root and CRL; {"report": ...} or {"error": ...}."""
    from asn1crypto import x509 as asn1_x509
    from pyhanko_certvalidator import ValidationContext

    from evidence.signing import verify_pdf

    try:
        trust = ValidationContext(trust_roots=[asn1_x509.Certificate.load(root_der)], crls=[crl_der],
                                  allow_fetching=False, revocation_mode="require")
        report = asyncio.run(verify_pdf(pdf, trust))
        return {"report": report.as_dict()}
    except DomainError as err:
        return {"error": _error(err)}
    except (MemoryError, RecursionError):
        return {"error": _error(_too_complex())}


def _too_complex() -> Unprocessable:
    return Unprocessable("the PDF is too complex to validate within the server's limits", code="pdf_too_complex")


class VerifyPool:
    """Admission and the worker processes for PDF validation."""

    def __init__(self, workers: int, capacity: int) -> None:
        self.workers = max(1, workers)
        self.capacity = max(1, capacity)
        self.in_flight = 0

    def retry_after(self) -> int:
        return max(1, -(-self.in_flight // self.workers) * SECONDS_PER_JOB)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the `capacity` places while the upload is read and validated; 429 verify_busy when
        none is free. Taken before the body is read, so at most `capacity` uploads are ever buffered."""
        if self.in_flight >= self.capacity:
            raise RateLimited("signature validation is busy; try again shortly", code="verify_busy",
                              retry_after=self.retry_after(), details={"in_flight": self.in_flight})
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1

    async def verify(self, pdf: bytes, root_der: bytes, crl_der: bytes) -> dict[str, Any]:
        """The signature report (VerificationReport.as_dict()), validated in a worker; 422 for a file the
        limits refuse. Call it inside `slot()`."""
        result = await _run(self.workers, pdf, root_der, crl_der)
        if "error" in result:
            e = result["error"]
            kind = next((c for c in (Unprocessable, Conflict, PayloadTooLarge) if c.status == e["status"]),
                        Unprocessable)
            raise kind(e["message"], code=e["code"], details=e["details"])
        return result["report"]


# ---- the process-wide executor ------------------------------------------------------------------------------

_lock = threading.Lock()
_executors: dict[int, ProcessPoolExecutor] = {}


def _executor(workers: int) -> ProcessPoolExecutor:
    with _lock:
        pool = _executors.get(workers)
        if pool is None:
            # spawned, at nice 10 (validation must not take the cores from the event loop that answers everyone
            # else), and ending with this process even when it is killed outright
            pool = child_pool(workers, niceness=10, initializer=_init_worker, initargs=(WORKER_MEMORY_BYTES,))
            _executors[workers] = pool
        return pool


def _discard(workers: int, pool: ProcessPoolExecutor) -> None:
    with _lock:
        if _executors.get(workers) is pool:
            del _executors[workers]
    pool.shutdown(wait=False, cancel_futures=True)


async def _run(workers: int, pdf: bytes, root_der: bytes, crl_der: bytes) -> dict[str, Any]:
    pool = _executor(workers)
    try:
        return await asyncio.get_running_loop().run_in_executor(pool, verify_job, pdf, root_der, crl_der)
    except BrokenProcessPool:
        # a worker died (its memory cap, or a crash inside a parser): a fresh pool serves the next upload
        log.warning("a PDF validation worker died; starting a fresh pool")
        _discard(workers, pool)
        return {"error": _error(_too_complex())}


@atexit.register
def _shutdown() -> None:
    with _lock:
        pools = list(_executors.values())
        _executors.clear()
    for pool in pools:
        pool.shutdown(wait=False, cancel_futures=True)
