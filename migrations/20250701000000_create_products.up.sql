-- The catalogue Service B serves. Prices are DECIMAL(12,2) so cents are
-- exact end to end; domain.Money enforces the same bounds in Go. IF NOT EXISTS
-- lets a replica that died between running this and recording it try again:
-- MySQL commits DDL at once, so the two cannot share a transaction. The CHECK
-- is enforced by MySQL 8.0.16+ and MariaDB 10.2+; older servers parse it and
-- ignore it.
CREATE TABLE IF NOT EXISTS products (
    id    BIGINT        NOT NULL,
    name  VARCHAR(255)  NOT NULL,
    price DECIMAL(12,2) NOT NULL,
    PRIMARY KEY (id),
    CONSTRAINT products_price_not_negative CHECK (price >= 0)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
