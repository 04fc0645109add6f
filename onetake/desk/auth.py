"""Who may do what on the desk: users with roles, argon2id password hashes, server-side sessions, CSRF tokens,
and a limit on failed logins."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections import deque
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ..pipeline.config import ROLES
from ..pipeline.errors import ConfigError
from ..pipeline.ledger import Ledger

USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
PASSWORD_MIN = 10
_hasher = PasswordHasher()  # argon2id with the library's current parameters (memory-hard)
# a hash to verify against when the user does not exist, so that a wrong name takes as long as a wrong password
_ABSENT = _hasher.hash(secrets.token_hex(16))


@dataclass(frozen=True)
class User:
    name: str
    role: str
    upload_limit: int = 0

    def may(self, role: str) -> bool:
        """Whether this user has ``role`` or a higher one."""
        return self.role in ROLES and ROLES.index(self.role) >= ROLES.index(role)


ANONYMOUS = User("", "")


def check_user_name(name: str) -> str:
    if not USER_NAME.fullmatch(name):
        raise ConfigError(f"'{name}': a user name is 1-64 letters, digits, '.', '_' or '-', starting with a letter "
                          f"or digit")
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise ConfigError(f"'{role}': a role is one of {', '.join(ROLES)}")
    return role


def hash_password(password: str) -> str:
    if len(password) < PASSWORD_MIN:
        raise ConfigError(f"a password needs at least {PASSWORD_MIN} characters")
    return _hasher.hash(password)


def check_password(ledger: Ledger, name: str, password: str) -> User | None:
    """The user, when ``password`` is theirs; the hash is upgraded when the library's parameters changed."""
    row = ledger.user(name)
    try:
        _hasher.verify(row["password"] if row else _ABSENT, password)
    except (VerificationError, InvalidHashError):
        return None
    if row is None:
        return None
    if _hasher.check_needs_rehash(row["password"]):
        ledger.set_user(name, password_hash=_hasher.hash(password))
    return User(row["name"], row["role"], row["upload_limit"])


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def same(a: str, b: str) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(a.encode(), b.encode())


class LoginLimiter:
    """At most ``attempts`` failed logins per key (a user name, an address) in a sliding ``window_s``."""

    def __init__(self, attempts: int, window_s: float) -> None:
        self.attempts = attempts
        self.window_s = window_s
        self.failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self.failures.setdefault(key, deque())
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times

    def blocked_for(self, keys: list[str]) -> float:
        """Seconds until a login for these keys may be tried again; 0 when it may be now."""
        now = time.monotonic()
        waits = [times[0] + self.window_s - now for key in keys
                 if len(times := self._recent(key, now)) >= self.attempts]
        return max(waits, default=0.0)

    def failed(self, keys: list[str]) -> None:
        now = time.monotonic()
        for key in keys:
            self._recent(key, now).append(now)
        if len(self.failures) > 10_000:  # forget idle keys, so that a scan cannot grow this without bound
            for key in [k for k, v in self.failures.items() if not self._recent(k, now)]:
                del self.failures[key]

    def succeeded(self, keys: list[str]) -> None:
        for key in keys:
            self.failures.pop(key, None)

    def forgive(self, keys: list[str]) -> None:
        """Take back the newest failure counted for each key (an attempt counted before it turned out right)."""
        for key in keys:
            if self.failures.get(key):
                self.failures[key].pop()
