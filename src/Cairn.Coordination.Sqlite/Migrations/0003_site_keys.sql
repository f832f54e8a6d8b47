-- A site's Ed25519 public key (base64): the gateway checks the site's signed build statements with it (docs/format/provenance.md).
ALTER TABLE sites ADD COLUMN public_key TEXT;
