-- Tags are searched by substring through a trigram index on lower(tag), not on tag:
-- pg_trgm can answer tag = ANY(...) as well, and a generic plan (an audience by tag,
-- planned before the new contacts are analysed) chose it for every contact, reading
-- the whole index each time. An index on the expression serves only the search.
DROP INDEX contact_tags_trigrams;
CREATE INDEX contact_tags_trigrams ON contact_tags USING gin (lower(tag) gin_trgm_ops);
