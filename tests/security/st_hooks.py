"""schemathesis hooks (SCHEMATHESIS_HOOKS=tests.security.st_hooks): bodies for the non-JSON uploads.

The uploads are documented as binary strings of their media type; schemathesis needs a strategy to make them.
They are small, so that the size limits are not what every case runs into."""
from hypothesis import strategies as st

import schemathesis

PDF_HEAD = st.sampled_from([b"%PDF-1.7\n", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", b""])
schemathesis.openapi.media_type("application/pdf", st.builds(lambda h, b: h + b, PDF_HEAD, st.binary(max_size=512)))
schemathesis.openapi.media_type("text/csv", st.text(max_size=512).map(lambda s: s.encode("utf-8")))
schemathesis.openapi.media_type("application/octet-stream", st.binary(max_size=1024))
