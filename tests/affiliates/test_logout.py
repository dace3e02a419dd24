"""``/logout/``: a link to it works, and only the form it shows, with its CSRF token, logs out."""

import re

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

TOKEN = re.compile(rb'name="csrfmiddlewaretoken" value="([^"]+)"')


@pytest.fixture
def alices_browser(alice) -> Client:
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice.user)
    return browser


def test_following_a_link_to_logout_asks_and_the_answer_logs_out(alices_browser):
    # when alice follows a link to /logout/
    page = alices_browser.get("/logout/")

    # then she is asked, still logged in, with a form that posts back with its CSRF token
    assert page.status_code == 200
    assert b'<form method="post" action="/logout/">' in page.content
    assert alices_browser.get("/dashboard/").status_code == 200

    # when she sends the form
    token = TOKEN.search(page.content).group(1).decode()
    answer = alices_browser.post("/logout/", {"csrfmiddlewaretoken": token})

    # then she is logged out and sent to the login page
    assert answer.status_code == 302
    assert answer["Location"] == "/login/"
    dashboard = alices_browser.get("/dashboard/")
    assert dashboard.status_code == 302
    assert dashboard["Location"].startswith("/login/")


def test_a_post_from_another_site_without_the_token_logs_nobody_out(alices_browser):
    # when mallory's page makes alice's browser post to /logout/ (it cannot read the token)
    answer = alices_browser.post("/logout/")

    # then CSRF protection refuses it and alice stays logged in
    assert answer.status_code == 403
    assert alices_browser.get("/dashboard/").status_code == 200


def test_logout_when_not_logged_in_goes_to_the_login_page(client):
    answer = client.get("/logout/")

    assert answer.status_code == 302
    assert answer["Location"] == "/login/"
