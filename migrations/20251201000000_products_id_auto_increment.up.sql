-- Lets an operator add a product without choosing its id:
--   INSERT INTO products (name, price) VALUES ('Mouse', 19.99);
-- The primary key is unchanged, so keyset pages keep seeking on it.
ALTER TABLE products MODIFY id BIGINT NOT NULL AUTO_INCREMENT;
