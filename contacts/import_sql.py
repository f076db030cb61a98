"""The SQL of a contacts import chunk (contacts.imports writes with it): a session temp table the
rows are COPYed into, and one upsert statement that also writes the consent-ledger rows."""

from __future__ import annotations

STAGE = "contact_import_stage"
CREATE_STAGE = f"""
CREATE TEMP TABLE IF NOT EXISTS {STAGE} (
    row_no bigint, user_id text, email text, properties text, unsubscribe boolean,
    unsubscribed_at timestamptz, opt_outs text[], opt_ins text[]
) ON COMMIT DELETE ROWS
"""
# Contacts who unsubscribed and whose row says "subscribed": they stay unsubscribed; counted so
# the report can say so.
KEPT_UNSUBSCRIBED = f"""
SELECT count(*) FROM (SELECT DISTINCT ON (user_id) user_id, unsubscribe FROM {STAGE}
                      ORDER BY user_id, row_no DESC) s
JOIN contacts_contact c ON c.user_id = s.user_id
WHERE s.unsubscribe IS FALSE AND c.unsubscribed_at IS NOT NULL
"""
# One statement per chunk. The last row of a user id in the chunk wins (a later row is a later
# fact). For an existing contact: a non-empty email replaces the old one, properties merge (new
# keys win), an unsubscribe keeps its first date, opt-outs are added (and clear a matching opt-in);
# opt-ins and resubscribes are never applied. The WHERE skips rows that would change nothing, so
# a re-run writes nothing and updated_at stays put.
UPSERT = f"""
WITH staged AS (SELECT DISTINCT ON (user_id) * FROM {STAGE} ORDER BY user_id, row_no DESC),
-- Every part of one statement reads the same snapshot: `before` is the consent the upsert replaces.
before AS (
    SELECT c.id, c.unsubscribed_at, c.category_opt_outs, c.category_opt_ins
    FROM contacts_contact c JOIN staged s ON s.user_id = c.user_id
), upserted AS (
    INSERT INTO contacts_contact AS c
        (id, user_id, email, properties, unsubscribed_at, category_opt_outs, category_opt_ins,
         created_at, updated_at)
    SELECT gen_random_uuid(), user_id, email, properties::jsonb,
           CASE WHEN unsubscribe THEN coalesce(unsubscribed_at, now()) END,
           opt_outs, opt_ins, now(), now()
    FROM staged
    ON CONFLICT (user_id) DO UPDATE SET
        email = CASE WHEN EXCLUDED.email <> '' THEN EXCLUDED.email ELSE c.email END,
        properties = c.properties || EXCLUDED.properties,
        unsubscribed_at = coalesce(c.unsubscribed_at, EXCLUDED.unsubscribed_at),
        category_opt_outs = c.category_opt_outs
            || ARRAY(SELECT x FROM unnest(EXCLUDED.category_opt_outs) x WHERE x <> ALL(c.category_opt_outs)),
        category_opt_ins = ARRAY(SELECT x FROM unnest(c.category_opt_ins) x
                                 WHERE x <> ALL(EXCLUDED.category_opt_outs)),
        updated_at = now()
    WHERE c.erased_at IS NULL AND (
        (EXCLUDED.email <> '' AND EXCLUDED.email <> c.email)
        OR (c.properties || EXCLUDED.properties) <> c.properties
        OR (c.unsubscribed_at IS NULL AND EXCLUDED.unsubscribed_at IS NOT NULL)
        OR NOT (c.category_opt_outs @> EXCLUDED.category_opt_outs)
        OR (c.category_opt_ins && EXCLUDED.category_opt_outs))
    RETURNING c.id, c.email, c.unsubscribed_at, c.category_opt_outs, c.category_opt_ins, (xmax = 0) AS inserted
), ledger AS (
    -- The consent ledger: a row for each contact whose consent this import set or changed.
    INSERT INTO contacts_consentchange
        (contact_id, email, kind, category, source, actor, user_agent, token_sha256, detail, occurred_at)
    SELECT u.id, lower(u.email), 'imported', '', 'import', '', '', '',
           jsonb_build_object('file', %s::text, 'subscribed', u.unsubscribed_at IS NULL,
                              'category_opt_outs', to_jsonb(u.category_opt_outs),
                              'category_opt_ins', to_jsonb(u.category_opt_ins)),
           now()
    FROM upserted u LEFT JOIN before b ON b.id = u.id
    WHERE u.inserted
       OR b.unsubscribed_at IS DISTINCT FROM u.unsubscribed_at
       OR b.category_opt_outs IS DISTINCT FROM u.category_opt_outs
       OR b.category_opt_ins IS DISTINCT FROM u.category_opt_ins
)
SELECT inserted FROM upserted
"""
