/**
 * The index-heavy world of issue 14 (tests and bench/plain-parallel.ts): a shop schema owned by
 * one role and readable by another, with big tables carrying several indexes each, foreign keys
 * between them (one table referencing itself, two referencing each other's parents), sequences
 * (serial columns and a standalone one moved on by setval), a trigger, a view, a materialized view
 * with an index, comments on tables, columns, indexes and constraints, and grants.
 *
 * `orders` is the row count of the biggest table; the others scale with it.
 */

/** The two roles the world's objects name (cluster-wide: create them on every server the dump is restored to). */
export const INDEX_HEAVY_ROLES = ['ra_shop_owner', 'ra_shop_reader'] as const;

export function indexHeavyRolesSql(): string {
  return INDEX_HEAVY_ROLES.map(
    (r) => `DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${r}') THEN CREATE ROLE ${r} NOLOGIN; END IF; END $$;`,
  ).join('\n');
}

export function indexHeavySql(orders: number): string {
  const customers = Math.max(10, Math.ceil(orders / 8));
  const products = Math.max(10, Math.min(20_000, Math.ceil(orders / 50)));
  return `
CREATE SCHEMA shop AUTHORIZATION ra_shop_owner;
COMMENT ON SCHEMA shop IS 'the shop';
CREATE TABLE shop.customers (
  id bigserial PRIMARY KEY,
  email text NOT NULL UNIQUE,
  name text NOT NULL,
  referred_by bigint REFERENCES shop.customers (id),
  created timestamptz NOT NULL
);
CREATE TABLE shop.products (
  id serial PRIMARY KEY,
  sku text NOT NULL UNIQUE,
  title text NOT NULL,
  price numeric(10, 2) NOT NULL CHECK (price >= 0)
);
CREATE TABLE shop.orders (
  id bigserial PRIMARY KEY,
  customer_id bigint NOT NULL REFERENCES shop.customers (id),
  placed timestamptz NOT NULL,
  status text NOT NULL,
  total numeric(12, 2) NOT NULL,
  note text
);
CREATE TABLE shop.order_items (
  order_id bigint NOT NULL REFERENCES shop.orders (id),
  line int NOT NULL,
  product_id int NOT NULL REFERENCES shop.products (id),
  qty int NOT NULL,
  price numeric(10, 2) NOT NULL,
  PRIMARY KEY (order_id, line)
);
CREATE TABLE shop.audit (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(), what text NOT NULL);
CREATE SEQUENCE shop.invoice_no START 1000;

INSERT INTO shop.customers (email, name, referred_by, created)
  SELECT 'c' || g || '@example.test', 'Customer ' || md5(g::text), CASE WHEN g > 1 AND g % 3 = 0 THEN g - 1 END,
         timestamptz '2025-01-01' + (g || ' minutes')::interval
  FROM generate_series(1, ${customers}) g;
INSERT INTO shop.products (sku, title, price)
  SELECT 'SKU-' || g, 'Product ' || md5((g * 7)::text), (g % 500) + 0.99 FROM generate_series(1, ${products}) g;
INSERT INTO shop.orders (customer_id, placed, status, total, note)
  SELECT 1 + (g::bigint * 7919) % ${customers}, timestamptz '2025-06-01' + (g || ' seconds')::interval,
         (ARRAY['new', 'paid', 'shipped', 'done'])[1 + g % 4], (g % 1000) + 0.5,
         CASE WHEN g % 5 = 0 THEN 'note ' || md5(g::text) END
  FROM generate_series(1, ${orders}) g;
INSERT INTO shop.order_items (order_id, line, product_id, qty, price)
  SELECT o, l, 1 + (o * 31 + l) % ${products}, 1 + (o + l) % 5, ((o + l) % 300) + 0.25
  FROM generate_series(1, ${orders}) o, generate_series(1, 2) l;
SELECT setval('shop.invoice_no', 4242);

CREATE INDEX orders_customer ON shop.orders (customer_id);
CREATE INDEX orders_placed ON shop.orders (placed);
CREATE INDEX orders_status_placed ON shop.orders (status, placed);
CREATE INDEX orders_total ON shop.orders (total) WHERE status <> 'done';
CREATE INDEX order_items_product ON shop.order_items (product_id);
CREATE INDEX order_items_price ON shop.order_items (price, qty);
CREATE INDEX customers_name ON shop.customers (lower(name));
CREATE INDEX customers_created ON shop.customers (created);
CREATE INDEX products_title ON shop.products (title);

CREATE FUNCTION shop.audit_order() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO shop.audit (what) VALUES ('order ' || NEW.id || ' ' || NEW.status);
  RETURN NEW;
END $$;
CREATE TRIGGER orders_audit AFTER UPDATE OF status ON shop.orders FOR EACH ROW EXECUTE FUNCTION shop.audit_order();
UPDATE shop.orders SET status = 'done' WHERE id <= 3;

CREATE VIEW shop.open_orders AS SELECT id, customer_id, placed, total FROM shop.orders WHERE status <> 'done';
CREATE MATERIALIZED VIEW shop.sales_by_product AS
  SELECT product_id, sum(qty) AS qty, sum(qty * price) AS revenue FROM shop.order_items GROUP BY product_id;
CREATE UNIQUE INDEX sales_by_product_id ON shop.sales_by_product (product_id);

COMMENT ON TABLE shop.orders IS 'one row per order';
COMMENT ON COLUMN shop.orders.status IS 'new, paid, shipped or done';
COMMENT ON INDEX shop.orders_placed IS 'by time';
COMMENT ON CONSTRAINT orders_customer_id_fkey ON shop.orders IS 'every order has a customer';
COMMENT ON TRIGGER orders_audit ON shop.orders IS 'status changes are audited';

ALTER TABLE shop.customers OWNER TO ra_shop_owner;
ALTER TABLE shop.products OWNER TO ra_shop_owner;
ALTER TABLE shop.orders OWNER TO ra_shop_owner;
ALTER TABLE shop.order_items OWNER TO ra_shop_owner;
ALTER TABLE shop.audit OWNER TO ra_shop_owner;
ALTER SEQUENCE shop.invoice_no OWNER TO ra_shop_owner;
ALTER VIEW shop.open_orders OWNER TO ra_shop_owner;
ALTER MATERIALIZED VIEW shop.sales_by_product OWNER TO ra_shop_owner;
ALTER FUNCTION shop.audit_order() OWNER TO ra_shop_owner;
GRANT USAGE ON SCHEMA shop TO ra_shop_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA shop TO ra_shop_reader;
GRANT UPDATE (status) ON shop.orders TO ra_shop_reader;
`;
}

/**
 * SQL whose output (one text value) fingerprints what a restore must reproduce: row counts and a
 * digest of every table's rows, sequence positions, owners, grants, comments, triggers, indexes and
 * constraints (with their definitions). Run it in the restored database; compare with another restore.
 */
export const FINGERPRINT_SQL = `
SELECT string_agg(x, E'\\n' ORDER BY x) FROM (
  SELECT 'rows ' || c.relname || ' ' ||
         (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM %I.%I', n.nspname, c.relname), false, true, '')))[1]::text || ' ' ||
         (xpath('/row/d/text()', query_to_xml(format('SELECT md5(coalesce(string_agg(t::text, ''|'' ORDER BY t::text), '''')) AS d FROM %I.%I t', n.nspname, c.relname), false, true, '')))[1]::text AS x
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' AND c.relkind IN ('r', 'm')
  UNION ALL
  SELECT 'seq ' || schemaname || '.' || sequencename || ' ' || coalesce(last_value::text, 'null') FROM pg_sequences
  UNION ALL
  SELECT 'owner ' || c.relkind::text || ' ' || c.relname || ' ' || pg_get_userbyid(c.relowner) || ' acl ' || coalesce(c.relacl::text, '-')
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
  UNION ALL
  SELECT 'schema ' || nspname || ' ' || pg_get_userbyid(nspowner) || ' ' || coalesce(nspacl::text, '-') FROM pg_namespace
   WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname NOT LIKE 'pg_toast%'
  UNION ALL
  SELECT 'comment ' || classoid::regclass::text || ' ' || objsubid || ' ' || description FROM pg_description
   WHERE objoid >= 16384
  UNION ALL
  SELECT 'trigger ' || tgrelid::regclass::text || ' ' || pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal
  UNION ALL
  SELECT 'index ' || indexrelid::regclass::text || ' ' || pg_get_indexdef(indexrelid) || ' valid ' || indisvalid FROM pg_index
   WHERE indrelid >= 16384 AND indexrelid::regclass::text NOT LIKE 'pg_toast.%'
  UNION ALL
  SELECT 'constraint ' || conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid) || ' validated ' || convalidated
    FROM pg_constraint WHERE connamespace >= 16384
  UNION ALL
  SELECT 'function ' || p.oid::regprocedure::text || ' ' || pg_get_userbyid(p.proowner) FROM pg_proc p
   WHERE p.pronamespace >= 16384
) f`;
