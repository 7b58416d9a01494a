-- The dispatcher that holds a callback delivery's lease: an outcome is recorded only
-- while the lease is still its owner's, so a worker whose lease lapsed during a slow
-- post (and was taken over) records nothing.
ALTER TABLE callback_deliveries ADD COLUMN lease_owner TEXT COLLATE "C";
