"""Indexes behind the keyset pagination and the DataLoaders' batch lookups."""

from yoyo import step

from app.db.ddl import portable

__depends__ = {"0001_catalogue_users_orders"}

steps = [
    step(
        portable(
            """
            CREATE INDEX users_created_at_id_idx ON users (created_at, id);
            CREATE INDEX orders_user_created_at_id_idx ON orders (user_id, created_at DESC, id DESC);
            CREATE INDEX orders_created_at_id_idx ON orders (created_at DESC, id DESC);
            CREATE INDEX orders_status_created_at_id_idx ON orders (status, created_at DESC, id DESC);
            CREATE INDEX order_items_product_id_idx ON order_items (product_id)
            """
        ),
        portable(
            """
            DROP INDEX order_items_product_id_idx;
            DROP INDEX orders_status_created_at_id_idx;
            DROP INDEX orders_created_at_id_idx;
            DROP INDEX orders_user_created_at_id_idx;
            DROP INDEX users_created_at_id_idx
            """
        ),
    )
]
