"""An announcement's email, end to end: the web side writes the notice and publishes the task on
commit, a real Celery worker process sends it through a real SMTP server (aiosmtpd) started here,
and the message that arrives has its text and HTML parts and a working unsubscribe link."""

import email
import email.policy
import re
import threading
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller

from affiliates import notify
from affiliates.models import Announcement, NoticeOptOut
from tests.processes import celery_worker, free_port, process_env, purge_queue, wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


class Inbox:
    """An aiosmtpd handler that keeps every message it is given."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append((list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server():
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def test_a_worker_emails_an_announcement_through_a_real_smtp_server(
    smtp_server, alice, manager, client, tmp_path
):
    inbox, port = smtp_server
    alice.user.email = "alice@example.com"
    alice.user.save()
    env = process_env(
        EMAIL_URL=f"smtp://127.0.0.1:{port}",
        PORTAL_URL="https://portal.example",
        DEFAULT_FROM_EMAIL="program@portal.example",
    )
    purge_queue(env)
    with celery_worker(tmp_path, concurrency=1, env=env):
        # when: a manager's announcement is posted (the task is published on commit)
        announcement = Announcement.objects.create(
            title="Double CPA in December", body="All month, every campaign.", author=manager
        )
        assert notify.announcement_send(announcement=announcement) == 1

        # then: the worker delivers it to alice through the SMTP server
        assert wait_until(lambda: inbox.messages, timeout=60), "no email arrived"
    ((recipients, message),) = inbox.messages
    assert recipients == ["alice@example.com"]
    assert message["Subject"] == "Double CPA in December"
    assert message["From"] == "program@portal.example"
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    assert "All month, every campaign." in text and "All month, every campaign." in html
    link = re.search(r"https://portal\.example(/notifications/unsubscribe/\S+/)", text)
    assert link and link.group(0) in html
    assert str(message["List-Unsubscribe"]).strip() == f"<{link.group(0)}>"

    # and: the link works for the affiliate, signed out
    client.post(link.group(1))
    assert NoticeOptOut.objects.filter(user=alice.user, kind="announcement").exists()
