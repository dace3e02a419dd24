"""/healthz says whether this node can serve (database and broker); /livez that it runs."""

import pytest


@pytest.mark.django_db
def test_healthz_checks_the_database_and_the_broker(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}


@pytest.mark.django_db
def test_healthz_is_a_503_when_the_broker_is_away(client, settings, monkeypatch):
    from portal import health

    monkeypatch.setattr(health, "_broker_checked", [0.0])
    if settings.EMBEDDED_BROKER:
        monkeypatch.setattr(settings, "CELERY_QUEUE_DIR", settings.VAR_DIR / "no-such-folder")
    else:
        from kombu import Connection

        # A broker address nothing listens on: a real refused connection.
        monkeypatch.setattr(
            health.current_app,
            "connection_for_write",
            lambda: Connection("redis://127.0.0.1:1/0", connect_timeout=1),
        )

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["database"] == "ok"
    assert response.json()["broker"].startswith("unavailable")


def test_livez_asks_nothing_of_anyone(client):
    assert client.get("/livez").json() == {"status": "ok"}
