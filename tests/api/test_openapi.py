"""The OpenAPI document: every issue-5 endpoint, the bearer scheme, the one error model."""

from __future__ import annotations

ISSUE_5 = {
    ("get", "/api/subscriptions/plans"), ("post", "/api/pricing/estimate"), ("post", "/api/orders"),
    ("get", "/api/orders"), ("get", "/api/orders/{order_id}"), ("post", "/api/orders/{order_id}/abort"),
    ("get", "/api/orders/{order_id}/events"), ("get", "/api/orders/{order_id}/images"),
    ("get", "/api/images/{image_id}.jpg"), ("get", "/api/images/{image_id}/fits"), ("get", "/api/credits"),
    ("get", "/api/credits/transactions"), ("get", "/api/support/orders"),
    ("post", "/api/support/orders/{order_id}/abort"), ("post", "/api/support/customers/{customer_id}/credits"),
    ("post", "/api/admin/customers"), ("post", "/api/keys/rotate"), ("get", "/health"),
}
HEALTH = {"/health", "/health/live", "/health/ready"}
PUBLIC = {*HEALTH, "/api/subscriptions/plans", "/api/credit-packs", "/api/stripe/webhook", "/api/telescopes", "/api/telescopes/{slug}"}


async def test_openapi_describes_every_endpoint_error_and_the_bearer_scheme(api):
    r = await api.client.get("/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    ops = {(m, p): op for p, item in doc["paths"].items() for m, op in item.items()}
    assert ISSUE_5 <= set(ops)
    scheme = doc["components"]["securitySchemes"]["HTTPBearer"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    error = doc["components"]["schemas"]["ErrorResponse"]
    assert error["properties"]["error"]["$ref"].endswith("/ErrorDetail")
    assert set(doc["components"]["schemas"]["ErrorDetail"]["properties"]) == {"code", "message", "fields"}
    for (method, path), op in ops.items():
        assert op.get("summary"), (method, path)
        if path not in PUBLIC:
            assert op.get("security") == [{"HTTPBearer": []}], (method, path)
            assert "401" in op["responses"], (method, path)
        for code, resp in op["responses"].items():
            if code.startswith(("4", "5")) and path not in HEALTH:
                schema = resp["content"]["application/json"]["schema"]
                assert schema["$ref"].endswith("/ErrorResponse"), (method, path, code)
        if "requestBody" in op:
            assert {"400", "413", "415", "422"} <= set(op["responses"]), (method, path)
        if method == "get":
            assert not {"400", "413", "415"} & set(op["responses"]), (method, path)
    create = ops[("post", "/api/orders")]
    assert {"201", "200", "402", "403", "422", "503"} <= set(create["responses"])
    assert any(p["name"] == "idempotency-key" and p["in"] == "header" for p in create["parameters"])
    shot = doc["components"]["schemas"]["ShotIn"]["properties"]
    assert shot["exposure"]["exclusiveMinimum"] == 0 and shot["exposure"]["maximum"] == 3600
    assert "text/event-stream" in ops[("get", "/api/orders/{order_id}/events")]["responses"]["200"]["content"]
