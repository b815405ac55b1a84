"""The media plane (issue 11): every evaluation place on camera, recorded and relayed without transcoding.

- passthrough: aiortc's receiver hands encoded frames on as av.Packets (no decoding); pinned to aiortc 1.16,
  with codec call counting.
- recorder: per publication, Matroska/WebM segments muxed from the packets, closed on a key frame, stored through
  core.storage under <data_dir>/media, each in media_segment and the ledger.
- relay: the selective forwarding unit; viewers' tracks yield the same packets, aiortc only packetizes.
- health: per-place stats, "place video lost"/"restored" events, a long loss reported as a venue fault.
- grants: who publishes, watches or confers; the chair's mute.
- hub: the MediaHub owned by the app (evaluation.media.routes.MEDIA_HUB).
- signaling and routes: the WebSockets /api/v1/media/sessions/{id}/places/{place}/publish, /watch, /conference
  and GET /api/v1/media/sessions/{id}/health.
- config: settings (the typed media_* fields of core.settings.Settings, BIDROOM_MEDIA_* in the environment).
"""
