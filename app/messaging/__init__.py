"""Events after commit: the in-process bus, the outbox dispatcher and the side-effect handlers."""
