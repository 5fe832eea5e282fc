"""Faults of background work: whether trying again may help, and what to tell a person."""

from __future__ import annotations

import logging
import os
import signal

from shared.errors import AppError


class Fault(Exception):
    """A failure of background work with a message a person can act on. The adapters raise theirs
    (``shared.adapters.errors.StorageFault`` for storage) in these terms, so nothing here needs to
    know an SDK's exceptions."""

    transient = False

    def __init__(self, message: str, *, transient: bool | None = None) -> None:
        super().__init__(message)
        if transient is not None:
            self.transient = transient


def is_transient(error: BaseException) -> bool:
    """May the same work succeed if it is simply tried again?"""
    if isinstance(error, Fault):
        return error.transient
    if isinstance(error, AppError):
        return False
    return isinstance(error, OSError)


def describe(error: BaseException) -> str:
    if isinstance(error, AppError):
        return error.detail
    if isinstance(error, Fault):
        return str(error)
    return f"Unexpected error: {type(error).__name__}"


# -- crash points -------------------------------------------------------------------------------
# Named places in long work where the fault tests kill the process for real (SIGKILL, no clean-up),
# to prove that the work resumes from its checkpoint and nothing is left half-done. Armed only by the
# app setting APPBACKUPS_CRASH_POINTS (comma-separated names), which nothing sets outside the tests.
_armed: frozenset[str] = frozenset()


def arm_crash_points(names: frozenset[str]) -> None:
    global _armed
    _armed = names


def crash_point(name: str) -> None:
    if name in _armed:
        logging.getLogger("appbackups.faults").warning("crash point %s reached: killing the process", name)
        for handler in logging.getLogger().handlers:
            handler.flush()
        os.kill(os.getpid(), signal.SIGKILL)
