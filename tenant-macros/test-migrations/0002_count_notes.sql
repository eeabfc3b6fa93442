CREATE FUNCTION {tenant}.note_count() RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM {tenant}.notes
$$;
