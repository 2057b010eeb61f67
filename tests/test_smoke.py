"""The factory builds an app and a first session works end to end."""

from tests.conftest import assert_problem


def test_create_app_registers_every_resource(app):
    rules = {rule.rule for rule in app.url_map.iter_rules()}
    assert "/api/v1/survivors" in rules
    assert "/api/v1/auth/login" in rules
    assert "/healthz" in rules


def test_first_session_register_login_create_survivor(client, make):
    response = client.post(
        "/api/v1/auth/register", json={"username": "Ada", "password": "correct-battery-horse-42"}
    )
    assert response.status_code == 201
    assert response.get_json()["role"] == "survivor"
    tokens = make.login("ada")
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    created = client.post("/api/v1/survivors", json=make.survivor_body(), headers=headers)
    assert created.status_code == 201
    assert created.headers["Location"].endswith(created.get_json()["id"])


def test_unknown_path_is_problem_json(client):
    assert_problem(client.get("/api/v1/nope"), 404)
