-- Nonces already used in an OIDC sign-in: an ID token cannot be replayed.
CREATE TABLE oidc_nonces (
  issuer TEXT NOT NULL,
  nonce TEXT NOT NULL,
  used_at TEXT NOT NULL,
  PRIMARY KEY (issuer, nonce)
);
