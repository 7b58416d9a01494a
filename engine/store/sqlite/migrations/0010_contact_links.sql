-- One person, one contact: when a phone number and a user id that were two contacts
-- turn out to be the same person (or a customer's new number already was a contact),
-- one contact is merged into the other. The consent ledger only grows, so the merged
-- contact's row stays, with its ledger: merged_into names the contact it became, and
-- its phone number and user id are given up to that contact.
ALTER TABLE contacts ADD COLUMN merged_into INTEGER REFERENCES contacts (id);
CREATE INDEX contacts_merged_into ON contacts (merged_into) WHERE merged_into IS NOT NULL;
