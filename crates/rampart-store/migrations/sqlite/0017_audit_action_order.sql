-- The audit query's action filter in time order (issue 24, "cost growth with data"). A filter
-- on `auth.login` means that action and every `auth.login.…` one; answered as one OR over the
-- whole table it either walked every event newest first (slow for a rare action: the whole
-- table read to find none) or read every match of a common one and sorted them. Now the store
-- finds which actions the filter names (one index seek per distinct action, in the byte range
-- [`auth.login`, `auth.login/`)) and reads the newest events of each (action, outcome) straight
-- from this index, merging them: a page costs about its size times the number of branches,
-- however many events there are.
-- The index on `action` alone is its prefix, so it goes.

CREATE INDEX audit_events_action_outcome_seq ON audit_events (action, outcome, seq);
DROP INDEX audit_events_action;
