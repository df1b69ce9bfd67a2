-- souq_distance_km(lat1, lng1, lat2, lng2): great-circle kilometres
-- (haversine), NULL if any input is NULL. SQLite connections register a C
-- function of the same name, so queries read alike on both engines.
CREATE FUNCTION souq_distance_km(lat1 double precision, lng1 double precision,
                                 lat2 double precision, lng2 double precision)
RETURNS double precision LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT 2 * 6371.0088 * asin(least(1.0, sqrt(
    power(sin(radians(lat2 - lat1) / 2), 2) +
    cos(radians(lat1)) * cos(radians(lat2)) * power(sin(radians(lng2 - lng1) / 2), 2))))
$$;
