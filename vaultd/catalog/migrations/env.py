"""Alembic environment: vaultd runs migrations on a connection it opened."""

from alembic import context

from vaultd.catalog.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # plain `alembic` command line: use the URL
    from sqlalchemy import create_engine

    engine = create_engine(context.config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
