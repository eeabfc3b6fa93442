ALTER TABLE {tenant}.invoices ADD COLUMN note text;
