"""Alembic environment: migrations run on the connection that ``Database.upgrade`` opened."""

from alembic import context
from sqlalchemy import create_engine

from forgeml.store._schema import metadata

config = context.config
connection = config.attributes.get("connection")


def _run(conn) -> None:
    context.configure(
        connection=conn,
        target_metadata=metadata,
        render_as_batch=True,  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if connection is not None:
    _run(connection)
else:  # the alembic command line, for writing a new revision: -x url=sqlite:///...
    url = context.get_x_argument(as_dictionary=True).get("url", "sqlite:///:memory:")
    with create_engine(url).connect() as conn:
        _run(conn)
        conn.commit()
