"""Without a sign-in, every route but the public ones is refused (401), new routes included:
the list is read from the app's own schema, so a route added later is covered by this test too."""

from __future__ import annotations

import re

import test_api
from test_api import World

world = test_api.world  # the API world of tests/test_api.py

PUBLIC = {("GET", "/api/v1/health"), ("POST", "/api/v1/login")}


def test_every_route_but_the_public_ones_needs_a_sign_in(world: World) -> None:
    schema = world.client.get("/openapi.json").json()
    tried = []
    for path, ops in schema["paths"].items():
        for method in ops:
            if (method.upper(), path) in PUBLIC:
                continue
            url = re.sub(r"\{[^}]+\}", "x1", path)
            r = world.client.request(method.upper(), url)
            assert r.status_code == 401, (method, path, r.status_code, r.text)
            tried.append(f"{method.upper()} {path}")
    assert len(tried) > 40, tried
    # the routes this change added are among them
    for want in ("/api/v1/recordings/reassign", "/api/v1/exports", "/api/v1/audit/range"):
        assert any(t.endswith(" " + want) for t in tried), (want, tried)
