"""The fake fediverse: canned remote servers on loopback for tests (in the spirit of
GoToSocial's testrig). They stand in for the far internet only; our own nodes are
always real (tests/conftest.py).

- ``LoopbackServer``: an aiohttp server on one loopback address that records every
  request (method, raw path, headers, body, the route it matched, the status it got),
  answers from per-path canned responses or handlers, and can hold requests until a
  test releases them.
- ``RawServer``: a socket server for what aiohttp would hide or refuse to do: the
  request-target exactly as it arrived, a server that never answers, a body that
  lies about its length.
- ``FakeRemote`` and ``FakeActor``: another fediverse host with actors whose keys
  the test holds (actor documents, WebFinger, inboxes), and ``signed_post`` to speak
  as them.
- ``InboxSink`` and ``SinkFarm``: inboxes for delivery tests that verify signatures,
  count what they accept per (activity, inbox) and answer as scripted.
"""

from tests.fediverse.remote import (
    FakeActor,
    FakeRemote,
    Received,
    activity,
    new_actor,
    sign_headers,
    signed_post,
)
from tests.fediverse.servers import (
    AS_JSON,
    Handler,
    Hold,
    LoopbackServer,
    RawRequest,
    RawRespond,
    RawServer,
    Request,
)
from tests.fediverse.sinks import (
    InboxSink,
    Respond,
    SinkFarm,
    accept,
    signature_problem,
    signature_scheme,
)

__all__ = [
    "AS_JSON", "FakeActor", "FakeRemote", "Handler", "Hold", "InboxSink", "LoopbackServer",
    "RawRequest", "RawRespond", "RawServer", "Received", "Request", "Respond", "SinkFarm",
    "accept", "activity", "new_actor", "sign_headers", "signature_problem", "signature_scheme",
    "signed_post",
]
