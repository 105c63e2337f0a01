"""Time bounds for every Postgres connection the provider opens (execution records, result loads).

Without them a Postgres that accepts TCP and never answers, or a table held by ``LOCK ... ACCESS
EXCLUSIVE``, stalls a sensor or a load for ever. Defaults (each can be set in the Postgres
connection's extra; an extra always wins):

* ``connect_timeout`` (libpq, seconds): :data:`CONNECT_TIMEOUT`;
* ``lock_timeout`` (ms, sent as ``options=-c lock_timeout=...``): :data:`LOCK_TIMEOUT_MS`;
* ``statement_timeout`` (ms): :data:`RECORD_STATEMENT_TIMEOUT_MS` for execution-record
  statements; none for result loads, whose ``COPY`` lasts as long as the download it streams
  (each download chunk has its own deadline, the ``amc`` connection's ``timeout``).

Put ``connect_timeout``, ``lock_timeout`` or ``statement_timeout`` in the extra to change one; an
``options`` extra that mentions ``lock_timeout``/``statement_timeout`` is left as it is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from airflow.providers.postgres.hooks.postgres import PostgresHook

CONNECT_TIMEOUT: Final = 10
LOCK_TIMEOUT_MS: Final = 30_000
RECORD_STATEMENT_TIMEOUT_MS: Final = 60_000
#: Extras read here (PostgresHook would pass them to libpq, which does not know the last two).
BOUND_EXTRAS: Final = ("lock_timeout", "statement_timeout")


def bounded_args(conn_args: dict[str, Any], statement_timeout_ms: int | None) -> dict[str, Any]:
    """``conn_args`` (from PostgresHook) with the default bounds added where the extra set none."""
    args = dict(conn_args)
    args.setdefault("connect_timeout", CONNECT_TIMEOUT)
    wanted = {"lock_timeout": args.pop("lock_timeout", LOCK_TIMEOUT_MS)}
    statement = args.pop("statement_timeout", statement_timeout_ms)
    if statement is not None:
        wanted["statement_timeout"] = statement
    options = str(args.get("options") or "")
    for name, value in wanted.items():
        if name not in options:
            options = f"{options} -c {name}={int(value)}".strip()
    args["options"] = options
    return args


def bounded_hook(postgres_conn_id: str, *, statement_timeout_ms: int | None = None) -> PostgresHook:
    """A PostgresHook whose connections carry the bounds above."""
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    class BoundedPostgresHook(PostgresHook):
        def _create_connection(self, conn_args: dict[str, Any]) -> Any:
            return super()._create_connection(bounded_args(conn_args, statement_timeout_ms))

    return BoundedPostgresHook(postgres_conn_id=postgres_conn_id)
