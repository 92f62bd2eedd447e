-- Mesh access for identity-provider subjects (README "Auth"): a token whose `sub` has a row here
-- opens the meshes the row's pattern covers, with the row's access, besides whatever its mesh
-- claim grants. Managed with /sync/admin/grants and `meshbox grants`.
CREATE TABLE grants (
  id           TEXT    PRIMARY KEY,
  subject      TEXT    NOT NULL,         -- the token's `sub`, exactly
  mesh_pattern TEXT    NOT NULL,         -- exact mesh id, '*', or a prefix ending in '*'
  access       TEXT    NOT NULL CHECK (access IN ('full', 'readonly')),
  created_at   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX grants_by_subject ON grants (subject);
