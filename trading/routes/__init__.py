"""HTTP endpoints of trading, by area: tenders (drafts to amendments, documents, registration, clarifications),
listing (the public listing, the Atom feed and OCDS) and bids (holder keys, key holders, sealed bids, the
opening and results). Thin: the services decide; these shape requests and JSON."""
