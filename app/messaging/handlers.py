"""The shipped side effects: a welcome email on sign-up, a confirmation for every order.

Each handler is keyed by event ID in the dispatcher's bookkeeping, so it runs once per event;
the email's Message-ID comes from the event ID too, so should a crash between sending and
recording make it run again, the repeat is recognisably the same message.
"""

from __future__ import annotations

from uuid import UUID

from app.db.engine import Database
from app.domain.events import Event, EventType
from app.domain.text import unprintable
from app.email import Email, EmailSender
from app.messaging.bus import EventBus, Handler, Unsubscribe
from app.repositories import users as users_repo

WELCOME = "welcome_email"
ORDER_CONFIRMATION = "order_confirmation_email"


QUOTED_NAME_LENGTH = 40


def quoted_name(name: str) -> str:
    """A user-given name for an email: one printable line, shortened, in quotes ("" if none).

    Names are checked when they are set (app.domain.text), but events stored before that check
    may still hold anything, so the email does its own part.
    """
    text = " ".join("".join(c if unprintable(c) is None else " " for c in name).split())
    if not text:
        return ""
    if len(text) > QUOTED_NAME_LENGTH:
        text = text[: QUOTED_NAME_LENGTH - 1].rstrip() + "…"
    return f'"{text}"'


def _message_id(event: Event, kind: str) -> str:
    return f"<{kind}.{event.id}@ordergraph>"


def welcome_email(sender: EmailSender) -> Handler:
    async def handle(event: Event) -> None:
        address = str(event.payload["email"])
        name = quoted_name(str(event.payload.get("displayName") or ""))
        # Anyone may sign up with anyone's address, so the name is the signer's text, not ours:
        # it comes after the message, labelled and quoted, never as its opening words.
        body = (
            "Welcome to ordergraph: an account was created with this email address.\n\n"
            + (f"The name given was {name}.\n\n" if name else "")
            + "If you did not sign up, ignore this email: nothing else will be sent.\n"
        )
        await sender.send(
            Email(
                to=address,
                subject="Welcome to ordergraph",
                body=body,
                message_id=_message_id(event, "welcome"),
            )
        )

    return handle


def order_confirmation(db: Database, sender: EmailSender) -> Handler:
    async def handle(event: Event) -> None:
        user_id = UUID(str(event.payload["userId"]))
        async with db.read() as conn:
            user = (await users_repo.get_by_ids(conn, [user_id])).get(user_id)
        if user is None:
            return  # the account is gone; there is nobody to tell
        total = event.payload["total"]
        lines = "\n".join(
            f"  {item['quantity']} x {item['productId']} at "
            f"{item['unitPrice']['amount']} {item['unitPrice']['currency']}"
            for item in event.payload["items"]
        )
        await sender.send(
            Email(
                to=user.email,
                subject=f"Your order {event.stream_id}",
                body=(
                    f"Thank you for your order.\n\n{lines}\n\n"
                    f"Total: {total['amount']} {total['currency']}\n"
                ),
                message_id=_message_id(event, "order"),
            )
        )

    return handle


def register(bus: EventBus, db: Database, sender: EmailSender) -> list[Unsubscribe]:
    return [
        bus.subscribe(EventType.USER_REGISTERED, welcome_email(sender), name=WELCOME),
        bus.subscribe(
            EventType.ORDER_CREATED, order_confirmation(db, sender), name=ORDER_CONFIRMATION
        ),
    ]
