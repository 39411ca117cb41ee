"""The skeleton's own contract: health probes and problem+json for unknown routes."""


async def test_healthz(client):
    r = await client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


async def test_readyz_checks_database(client):
    r = await client.get("/readyz")
    assert r.status_code == 200
    assert r.json()["checks"]["database"] == "ok"


async def test_unknown_route_is_problem_json(client):
    r = await client.get("/v1/nope")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["type"].endswith("/not-found")
    assert r.headers["x-request-id"]


async def test_oversized_body_is_413(client):
    r = await client.post("/v1/auth/login", content=b"x" * (1024 * 1024 + 10),
                          headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert r.headers["content-type"].startswith("application/problem+json")
