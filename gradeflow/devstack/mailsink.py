"""A local SMTP server for `make run` and the tests (aiosmtpd): it keeps every message it receives,
in a folder (one .eml file each, for a person to open) or in memory (for tests to read)."""

from __future__ import annotations

import email
import email.policy
import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from gradeflow.devstack.infra import free_port, private_dir, private_file


class Memory:
    """Keeps received messages in a list."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 OK"

    def to(self, address_part: str) -> list[EmailMessage]:
        """Messages whose To header contains `address_part`."""
        return [m for m in self.messages if address_part in str(m["To"])]


class Folder:
    """Writes each received message to `folder` as an .eml file only this user can read (they hold
    learners' results)."""

    def __init__(self, folder: Path) -> None:
        self.folder = private_dir(folder)
        self.counter = itertools.count(1)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        path = self.folder / f"{next(self.counter):05d}-{envelope.rcpt_tos[0].replace('/', '_')}.eml"
        private_file(path, envelope.content)
        return "250 OK"


@contextmanager
def running(handler: Memory | Folder) -> Iterator[int]:
    """Run the SMTP server on a free loopback port (port 0 does not work: aiosmtpd connects to itself
    to check it started); yields the port."""
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()
