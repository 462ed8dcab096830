"""Checks of settings, made when a config or transform is built so that a bad value fails at
once, naming the setting, rather than later on a worker."""

from __future__ import annotations

import re


def check_queue(
    queue_url: object, queue_name: object, owner_account_id: object, *, functions: bool
) -> None:
    """Exactly one of `queue_url` and `queue_name`: a non-empty str (or, with `functions`, a
    function of the record); an owner account (12 digits) only with a name."""
    if (queue_url is None) == (queue_name is None):
        raise ValueError("give exactly one of queue_url and queue_name")
    for name, value in (("queue_url", queue_url), ("queue_name", queue_name)):
        if value is None or (functions and callable(value)):
            continue
        if not isinstance(value, str) or not value:
            kinds = (
                "a non-empty str or a function of the record" if functions else "a non-empty str"
            )
            raise ValueError(f"{name} must be {kinds}, got {value!r}")
    if owner_account_id is None:
        return
    if not isinstance(owner_account_id, str) or not re.fullmatch(r"[0-9]{12}", owner_account_id):
        raise ValueError(
            f"queue_owner_account_id must be a 12-digit AWS account id, got {owner_account_id!r}"
        )
    if queue_url is not None:
        raise ValueError(
            "queue_owner_account_id goes with queue_name; a queue URL names its account already"
        )


def check_number(
    name: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    above: float | None = None,
    integer: bool = False,
) -> None:
    """The one number check of every setting: `value` is a number (an int with `integer`),
    never a bool or NaN, at least `low`, greater than `above`, at most `high`. A wrong type
    raises `TypeError`, a number out of range `ValueError`; both name the setting."""
    kinds = int if integer else int | float
    if isinstance(value, bool) or not isinstance(value, kinds) or value != value:
        kind = "an int" if integer else "a number"
        raise TypeError(f"{name} must be {kind}, got {value!r}")
    bounds = [
        f">= {_shown(low)}" if low is not None else "",
        f"> {_shown(above)}" if above is not None else "",
        f"<= {_shown(high)}" if high is not None else "",
    ]
    if (
        (low is not None and value < low)
        or (above is not None and value <= above)
        or (high is not None and value > high)
    ):
        raise ValueError(f"{name} must be {' and '.join(b for b in bounds if b)}, got {value!r}")


def _shown(bound: float) -> str:
    """A bound as a person reads it: 1048576, not 1.04858e+06."""
    return str(int(bound)) if float(bound).is_integer() else f"{bound:g}"
