"""Email for finished jobs, sent by the master's Mailer to a real SMTP server on 127.0.0.1
(aiosmtpd), configured from a real TOML file's [email] table; and that table's checks."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import gevent
import pytest
from aiosmtpd.controller import Controller

from farmhand.master.config import load_config_file
from farmhand.master.webhooks.mail import Mailer
from tests.unit.farmkit import MasterKit

pytestmark = pytest.mark.timeout(30)


class Inbox:
    """aiosmtpd's handler: keeps every message it is given."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            (envelope.mail_from, list(envelope.rcpt_tos), message_from_bytes(envelope.content))
        )
        return "250 OK"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


def test_a_failed_job_is_mailed_through_a_real_smtp_server(
    tmp_path: Path, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    config_file = tmp_path / "master.toml"
    config_file.write_text(
        "heartbeat_s = 5\n"
        "[email]\n"
        'host = "127.0.0.1"\n'
        f"port = {port}\n"
        'from = "farm@example.com"\n'
        'to = ["ops@example.com", "lead@example.com"]\n'
    )
    settings = load_config_file(config_file)
    kit = MasterKit(tmp_path, **settings)
    assert kit.services.config.email is not None
    mailer = Mailer(kit.services.config.email, kit.services.events)
    mailer.start()
    try:
        worker, peer = kit.agent("worker", "w1", info={"slots": 1})
        kit.call("jobs.submit", name="comp", argv=["false"], frames="1", max_attempts=1)
        kit.dispatch()
        (order,) = peer.take()
        kit.call("task.finished", worker, attempt=order["attempt"], exit_code=1)
        kit.call("jobs.submit", name="canceled", argv=["true"], frames="1")
        kit.call("jobs.cancel", job_id=2)  # not an email event
        with gevent.Timeout(10):
            while not mailer.sent:
                gevent.sleep(0.02)
        (sender, recipients, message) = inbox.messages[0]
        assert sender == "farm@example.com"
        assert recipients == ["ops@example.com", "lead@example.com"]
        assert message["Subject"] == "farmhand: job 1 (comp) failed"
        assert "Job 1 (comp) failed." in message.get_payload()
        gevent.sleep(0.2)
        assert len(inbox.messages) == 1 and mailer.failed == 0
    finally:
        mailer.stop()
        kit.close()


@pytest.mark.parametrize(
    ("table", "error"),
    [
        ('host = "h"\nto = "a@b"\n', "[email] needs from"),
        ('host = "h"\nfrom = "a@b"\nto = "a@b"\npassword = "x"\n', "FARMHAND_SMTP_PASSWORD"),
        ('host = "h"\nfrom = "a@b"\nto = "a@b"\nssl = true\nstarttls = true\n', "not both"),
        ('host = "h"\nfrom = "a@b"\nto = []\n', "[email] needs to"),
    ],
)
def test_a_bad_email_table_is_refused_in_one_line(tmp_path: Path, table: str, error: str) -> None:
    path = tmp_path / "master.toml"
    path.write_text("[email]\n" + table)
    with pytest.raises(ValueError, match="config file") as refused:
        load_config_file(path)
    assert error in str(refused.value) and "\n" not in str(refused.value)
