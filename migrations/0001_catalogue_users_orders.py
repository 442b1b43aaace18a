"""Users, profiles, products, orders and order items."""

from yoyo import step

from app.db.ddl import portable

__depends__: set[str] = set()

steps = [
    step(
        portable(
            """
            CREATE TABLE users (
                id {uuid} NOT NULL PRIMARY KEY,
                email TEXT NOT NULL,
                password_hash TEXT NOT NULL,
                role VARCHAR(16) NOT NULL,
                created_at {timestamp} NOT NULL,
                updated_at {timestamp} NOT NULL,
                CONSTRAINT users_email_key UNIQUE (email),
                CONSTRAINT users_email_lower CHECK (email = lower(email)),
                CONSTRAINT users_email_shape CHECK (length(email) BETWEEN 3 AND 254),
                CONSTRAINT users_role CHECK (role IN ('customer', 'admin'))
            );
            CREATE TABLE profiles (
                user_id {uuid} NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
                first_name TEXT,
                last_name TEXT,
                display_name TEXT NOT NULL,
                preferences {json} NOT NULL,
                updated_at {timestamp} NOT NULL,
                CONSTRAINT profiles_display_name CHECK (length(display_name) BETWEEN 1 AND 200)
            );
            CREATE TABLE products (
                id {uuid} NOT NULL PRIMARY KEY,
                sku {bytewise_text} NOT NULL,
                name TEXT NOT NULL,
                description TEXT NOT NULL,
                price_amount BIGINT NOT NULL,
                currency CHAR(3) NOT NULL,
                stock INTEGER NOT NULL,
                version INTEGER NOT NULL,
                created_at {timestamp} NOT NULL,
                updated_at {timestamp} NOT NULL,
                CONSTRAINT products_sku_key UNIQUE (sku),
                CONSTRAINT products_price_amount CHECK (price_amount >= 0),
                CONSTRAINT products_currency CHECK (length(currency) = 3 AND currency = upper(currency)),
                CONSTRAINT products_stock CHECK (stock >= 0),
                CONSTRAINT products_version CHECK (version >= 1)
            );
            CREATE TABLE orders (
                id {uuid} NOT NULL PRIMARY KEY,
                user_id {uuid} NOT NULL REFERENCES users (id),
                status VARCHAR(16) NOT NULL,
                total_amount BIGINT NOT NULL,
                currency CHAR(3) NOT NULL,
                created_at {timestamp} NOT NULL,
                updated_at {timestamp} NOT NULL,
                CONSTRAINT orders_status CHECK (status IN ('PLACED', 'FULFILLED', 'CANCELLED')),
                CONSTRAINT orders_total_amount CHECK (total_amount >= 0),
                CONSTRAINT orders_currency CHECK (length(currency) = 3 AND currency = upper(currency))
            );
            CREATE TABLE order_items (
                id {uuid} NOT NULL PRIMARY KEY,
                order_id {uuid} NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
                product_id {uuid} NOT NULL REFERENCES products (id),
                position INTEGER NOT NULL,
                quantity INTEGER NOT NULL,
                unit_price_amount BIGINT NOT NULL,
                CONSTRAINT order_items_order_position_key UNIQUE (order_id, position),
                CONSTRAINT order_items_quantity CHECK (quantity > 0),
                CONSTRAINT order_items_unit_price_amount CHECK (unit_price_amount >= 0)
            )
            """
        ),
        portable(
            """
            DROP TABLE order_items;
            DROP TABLE orders;
            DROP TABLE products;
            DROP TABLE profiles;
            DROP TABLE users
            """
        ),
    )
]
