"""Sending email: a port with three adapters — the log (default), SMTP, and memory for tests."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from app.config import ConfigError

log = logging.getLogger("app.email")


@dataclass(frozen=True, slots=True)
class Email:
    to: str
    subject: str
    body: str
    # Derived from the event that caused it, so a mail server or reader can spot a repeat.
    message_id: str


class EmailSender(Protocol):
    async def send(self, email: Email) -> None: ...


class ConsoleEmailSender:
    """Writes each email to the log: the default, so `make run` needs no mail server. One line
    names it at INFO; the body, which may hold personal data, is logged only at DEBUG."""

    async def send(self, email: Email) -> None:
        log.info("email to %s: %s (body at DEBUG)", email.to, email.subject)
        log.debug("email body to %s: %s", email.to, email.body)


@dataclass
class InMemoryEmailSender:
    """Keeps what was sent; `fail_next` makes the next sends raise, as a broken server would."""

    sent: list[Email] = field(default_factory=list)
    fail_next: int = 0

    async def send(self, email: Email) -> None:
        if self.fail_next > 0:
            self.fail_next -= 1
            raise ConnectionError("the mail server is unreachable")
        self.sent.append(email)


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    username: str | None
    password: str | None
    use_tls: bool  # implicit TLS (smtps://)
    start_tls: bool

    @classmethod
    def parse(cls, url: str) -> SmtpSettings:
        """`smtp://user:pass@host:587?starttls=true` or `smtps://user:pass@host:465`."""
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ConfigError("SMTP_URL must look like smtp://user:password@host:587")
        query = parse_qs(parts.query)
        start_tls = query.get("starttls", ["false"])[0].lower() in ("1", "true", "yes")
        try:
            port = parts.port or (465 if parts.scheme == "smtps" else 25)
        except ValueError:
            raise ConfigError("SMTP_URL has an invalid port") from None
        return cls(
            host=parts.hostname,
            port=port,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            use_tls=parts.scheme == "smtps",
            start_tls=start_tls,
        )


class SmtpEmailSender:
    def __init__(self, settings: SmtpSettings, sender: str, timeout: float = 20.0) -> None:
        self._settings = settings
        self._sender = sender
        self._timeout = timeout

    async def send(self, email: Email) -> None:
        message = EmailMessage()
        message["From"] = self._sender
        message["To"] = email.to
        message["Subject"] = email.subject
        message["Message-ID"] = email.message_id
        message.set_content(email.body)
        s = self._settings
        await aiosmtplib.send(
            message,
            hostname=s.host,
            port=s.port,
            username=s.username,
            password=s.password,
            use_tls=s.use_tls,
            start_tls=s.start_tls,
            timeout=self._timeout,
        )


def sender_from(smtp_url: str | None, email_from: str) -> EmailSender:
    if not smtp_url:
        return ConsoleEmailSender()
    return SmtpEmailSender(SmtpSettings.parse(smtp_url), email_from)
