ALTER TABLE {tenant}.invoices ADD COLUMN paid_at timestamptz;
