-- User names are unique without regard to case: `Admin` and `admin` cannot both exist.
CREATE UNIQUE INDEX users_username_lower ON users (lower(username));
UPDATE orca_meta SET value = '2' WHERE key = 'schema_version';
