/// One versioned change of the schema. Applied in one transaction; never edited once released (the
/// migrator refuses to run when an applied migration's checksum changed).
public struct Migration: Sendable, Hashable {
    public var version: Int
    public var name: String
    public var statements: [String]

    public init(version: Int, name: String, statements: [String]) {
        self.version = version
        self.name = name
        self.statements = statements
    }

    /// FNV-1a over the statements: enough to notice an edited migration.
    public var checksum: Int64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for statement in statements {
            for byte in statement.utf8 {
                hash ^= UInt64(byte)
                hash = hash &* 0x100_0000_01b3
            }
            hash ^= 0xff
        }
        return Int64(bitPattern: hash)
    }
}

/// The schema of the media service, oldest migration first.
public enum Schema {
    public static let migrations: [Migration] = [
        Migration(
            version: 1,
            name: "upload sets, media partitioned by kind, renditions, jobs, outbox",
            statements: [
                """
                CREATE TABLE upload_sets (
                    id           uuid PRIMARY KEY,
                    owner_id     text NOT NULL,
                    context      text NOT NULL CHECK (context IN ('post', 'profile', 'community', 'message')),
                    context_id   text NOT NULL,
                    state        text NOT NULL DEFAULT 'draft' CHECK (state IN ('draft', 'committed', 'expired')),
                    created_at   timestamptz NOT NULL DEFAULT now(),
                    expires_at   timestamptz NOT NULL,
                    committed_at timestamptz
                )
                """,
                // the expiry sweep reads drafts by expiry; owners and contexts are looked up by other services
                "CREATE INDEX upload_sets_drafts_by_expiry ON upload_sets (expires_at) WHERE state = 'draft'",
                "CREATE INDEX upload_sets_by_owner ON upload_sets (owner_id, created_at DESC)",
                "CREATE INDEX upload_sets_by_context ON upload_sets (context, context_id)",
                """
                CREATE TABLE media (
                    id             uuid NOT NULL,
                    kind           text NOT NULL CHECK (kind IN ('photo', 'audio', 'video')),
                    owner_id       text NOT NULL,
                    upload_set_id  uuid NOT NULL REFERENCES upload_sets (id),
                    state          text NOT NULL CHECK (state IN ('stored', 'processing', 'ready', 'failed', 'deleted')),
                    size_bytes     bigint NOT NULL CHECK (size_bytes >= 0),
                    sha256         text NOT NULL,
                    mime           text NOT NULL,
                    width          integer,
                    height         integer,
                    duration_ms    bigint,
                    pool           text NOT NULL,
                    object_key     text NOT NULL,
                    metadata       jsonb NOT NULL DEFAULT '{}'::jsonb,
                    failure_reason text,
                    created_at     timestamptz NOT NULL DEFAULT now(),
                    committed_at   timestamptz,
                    deleted_at     timestamptz,
                    PRIMARY KEY (kind, id)
                ) PARTITION BY LIST (kind)
                """,
                "CREATE TABLE media_photo PARTITION OF media FOR VALUES IN ('photo')",
                "CREATE TABLE media_audio PARTITION OF media FOR VALUES IN ('audio')",
                "CREATE TABLE media_video PARTITION OF media FOR VALUES IN ('video')",
                // lookups by id alone probe one small index per partition
                "CREATE INDEX media_by_id ON media (id)",
                // counting a set's live media of one kind under the set's row lock
                "CREATE INDEX media_live_by_set ON media (upload_set_id, kind) WHERE deleted_at IS NULL",
                "CREATE INDEX media_by_owner ON media (owner_id, created_at DESC)",
                // the reconciler asks whether an object has a row
                "CREATE UNIQUE INDEX media_by_object ON media (kind, pool, object_key)",
                """
                CREATE TABLE renditions (
                    media_id   uuid NOT NULL,
                    media_kind text NOT NULL,
                    name       text NOT NULL,
                    mime       text NOT NULL,
                    width      integer,
                    height     integer,
                    size_bytes bigint NOT NULL CHECK (size_bytes >= 0),
                    sha256     text NOT NULL,
                    pool       text NOT NULL,
                    object_key text NOT NULL,
                    created_at timestamptz NOT NULL DEFAULT now(),
                    PRIMARY KEY (media_id, name),
                    FOREIGN KEY (media_kind, media_id) REFERENCES media (kind, id) ON DELETE CASCADE
                )
                """,
                "CREATE UNIQUE INDEX renditions_by_object ON renditions (pool, object_key)",
                """
                CREATE TABLE jobs (
                    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    queue        text NOT NULL,
                    media_id     uuid,
                    media_kind   text,
                    payload      jsonb NOT NULL DEFAULT '{}'::jsonb,
                    state        text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'done', 'dead')),
                    attempts     integer NOT NULL DEFAULT 0,
                    max_attempts integer NOT NULL DEFAULT 5,
                    run_after    timestamptz NOT NULL DEFAULT now(),
                    leased_until timestamptz,
                    last_error   text,
                    created_at   timestamptz NOT NULL DEFAULT now(),
                    updated_at   timestamptz NOT NULL DEFAULT now()
                )
                """,
                // workers take runnable jobs with FOR UPDATE SKIP LOCKED in run_after order (dropped by
                // migration 12: jobs_claim serves the claims of each priority)
                "CREATE INDEX jobs_runnable ON jobs (queue, run_after) WHERE state = 'queued'",
                // expired leases of killed workers are found by lease end
                "CREATE INDEX jobs_leases ON jobs (leased_until) WHERE state = 'running'",
                // at most one live job per media item and queue: re-enqueueing is idempotent
                "CREATE UNIQUE INDEX jobs_live_per_media ON jobs (queue, media_id) WHERE state IN ('queued', 'running')",
                """
                CREATE TABLE outbox (
                    seq           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    event_id      uuid NOT NULL UNIQUE,
                    type          text NOT NULL,
                    media_id      uuid,
                    upload_set_id uuid,
                    payload       jsonb NOT NULL,
                    created_at    timestamptz NOT NULL DEFAULT now()
                )
                """,
                // retention: old events are pruned by age
                "CREATE INDEX outbox_by_age ON outbox (created_at)",
            ]
        ),
        Migration(
            version: 2,
            name: "live counts per set, purge tracking, lookups by object",
            statements: [
                // the live items of each kind, kept under the set's row lock: limits are checked without counting rows
                """
                ALTER TABLE upload_sets
                    ADD COLUMN photo_count integer NOT NULL DEFAULT 0 CHECK (photo_count >= 0),
                    ADD COLUMN audio_count integer NOT NULL DEFAULT 0 CHECK (audio_count >= 0),
                    ADD COLUMN video_count integer NOT NULL DEFAULT 0 CHECK (video_count >= 0)
                """,
                // tombstoned rows whose objects are not removed yet
                "ALTER TABLE media ADD COLUMN purged_at timestamptz",
                "CREATE INDEX media_awaiting_purge ON media (deleted_at) WHERE deleted_at IS NOT NULL AND purged_at IS NULL",
                // the reconciler asks whether an object has a row, knowing only its pool and key
                "CREATE INDEX media_by_location ON media (pool, object_key)",
                "CREATE INDEX media_by_set ON media (upload_set_id, created_at)",
            ]
        ),
        Migration(
            version: 3,
            name: "outbox sequenced after commit",
            statements: [
                // Writers no longer number events: a sequencer gives committed events their seq, in order, so that
                // commits run in parallel while readers still see seq only ever grow.
                "ALTER TABLE outbox ALTER COLUMN seq DROP IDENTITY IF EXISTS",
                "ALTER TABLE outbox DROP CONSTRAINT outbox_pkey",
                "ALTER TABLE outbox ALTER COLUMN seq DROP NOT NULL",
                "ALTER TABLE outbox ADD COLUMN pos bigint GENERATED ALWAYS AS IDENTITY",
                "ALTER TABLE outbox ADD PRIMARY KEY (pos)",
                "CREATE UNIQUE INDEX outbox_by_seq ON outbox (seq) WHERE seq IS NOT NULL",
                "CREATE INDEX outbox_unsequenced ON outbox (pos) WHERE seq IS NULL",
            ]
        ),
        Migration(
            version: 4,
            name: "processing jobs for media stored before processing existed",
            statements: [
                """
                INSERT INTO jobs (queue, media_id, media_kind)
                SELECT 'process', id, kind FROM media WHERE state = 'stored' AND deleted_at IS NULL
                ON CONFLICT DO NOTHING
                """
            ]
        ),
        Migration(
            version: 5,
            name: "private upload sets",
            statements: [
                // a set created private has its media served through signed URLs only, whatever its context
                "ALTER TABLE upload_sets ADD COLUMN is_private boolean NOT NULL DEFAULT false"
            ]
        ),
        Migration(
            version: 6,
            name: "resumable uploads",
            statements: [
                // a file uploaded in pieces (tus, the IETF draft): the bytes are in its object, its state here so
                // that any gateway takes the next piece; one append at a time holds the claim
                """
                CREATE TABLE resumable_uploads (
                    id uuid PRIMARY KEY,
                    upload_set_id uuid NOT NULL REFERENCES upload_sets(id),
                    owner_id text NOT NULL,
                    length bigint CHECK (length >= 0),
                    received bigint NOT NULL DEFAULT 0 CHECK (received >= 0),
                    head bytea NOT NULL DEFAULT '\\x'::bytea,
                    kind text CHECK (kind IN ('photo', 'audio', 'video')),
                    mime text,
                    pool text,
                    object_key text,
                    ledger_slot text,
                    metadata jsonb NOT NULL DEFAULT '{}',
                    created_at timestamptz NOT NULL,
                    expires_at timestamptz NOT NULL,
                    completed boolean NOT NULL DEFAULT false,
                    claim text,
                    claimed_until timestamptz
                )
                """,
                "CREATE INDEX resumable_uploads_by_expiry ON resumable_uploads (expires_at)",
                "CREATE INDEX resumable_uploads_by_set ON resumable_uploads (upload_set_id)",
            ]
        ),
        Migration(
            version: 7,
            name: "processing priorities",
            statements: [
                // a set's media are processed at its priority: people's uploads before ingested media
                "ALTER TABLE upload_sets ADD COLUMN priority text NOT NULL DEFAULT 'interactive' CHECK (priority IN ('interactive', 'bulk'))",
                "ALTER TABLE jobs ADD COLUMN priority text NOT NULL DEFAULT 'interactive' CHECK (priority IN ('interactive', 'bulk'))",
                // a claim takes the oldest due job of one priority in run_after order, skipping other kinds
                "CREATE INDEX jobs_claim ON jobs (queue, priority, run_after) WHERE state = 'queued'",
            ]
        ),
        Migration(
            version: 8,
            name: "outbox consumers",
            statements: [
                // where each consumer of the outbox inside the service (an edge purger) has read up to
                """
                CREATE TABLE outbox_consumers (
                    name       text PRIMARY KEY,
                    after      bigint NOT NULL CHECK (after >= 0),
                    updated_at timestamptz NOT NULL DEFAULT now()
                )
                """
            ]
        ),
        Migration(
            version: 9,
            name: "outbox partitioned by day",
            statements: [
                // Old events go by dropping whole day tables (no DELETE, no bloat). The unpartitioned outbox is
                // copied into day partitions and dropped; its indexes go first, as the new table reuses their names.
                "ALTER TABLE outbox RENAME TO outbox_unpartitioned",
                "DROP INDEX outbox_by_seq, outbox_unsequenced, outbox_by_age",
                "ALTER TABLE outbox_unpartitioned ALTER COLUMN pos DROP IDENTITY",
                // PostgreSQL 15 has no identity columns on partitioned tables: pos comes from a sequence
                "CREATE SEQUENCE outbox_pos",
                "SELECT setval('outbox_pos', coalesce((SELECT max(pos) FROM outbox_unpartitioned), 0) + 1, false)",
                // seq is unique by construction (one sequencer at a time); an index cannot say so across days
                """
                CREATE TABLE outbox (
                    pos           bigint NOT NULL DEFAULT nextval('outbox_pos'),
                    seq           bigint,
                    event_id      uuid NOT NULL,
                    type          text NOT NULL,
                    media_id      uuid,
                    upload_set_id uuid,
                    payload       jsonb NOT NULL,
                    created_at    timestamptz NOT NULL DEFAULT now(),
                    PRIMARY KEY (pos, created_at)
                ) PARTITION BY RANGE (created_at)
                """,
                "ALTER SEQUENCE outbox_pos OWNED BY outbox.pos",
                "CREATE INDEX outbox_by_seq ON outbox (seq) WHERE seq IS NOT NULL",
                "CREATE INDEX outbox_unsequenced ON outbox (pos) WHERE seq IS NULL",
                // the highest seq of the dropped days: a cursor below it has missed events; numbering goes on above it
                """
                CREATE TABLE outbox_horizon (
                    only_row        boolean PRIMARY KEY DEFAULT true CHECK (only_row),
                    dropped_through bigint NOT NULL DEFAULT 0 CHECK (dropped_through >= 0),
                    updated_at      timestamptz NOT NULL DEFAULT now()
                )
                """,
                "INSERT INTO outbox_horizon DEFAULT VALUES",
                // Makes sure a partition outbox_YYYYMMDD holds each UTC day from first_day to last_day. A new day
                // is made as a table of its own and then attached, which locks out no writer (ATTACH takes SHARE
                // UPDATE EXCLUSIVE on the outbox, where CREATE TABLE ... PARTITION OF would take ACCESS EXCLUSIVE).
                // A table left unattached by an interrupted run is attached. Returns how many days were added.
                """
                CREATE FUNCTION outbox_add_days(first_day date, last_day date) RETURNS integer LANGUAGE plpgsql AS $$
                DECLARE
                    day date := first_day;
                    name text;
                    added integer := 0;
                BEGIN
                    -- one maker of this schema's days at a time (migrators of other schemas go on)
                    PERFORM pg_advisory_xact_lock(hashtext(current_schema() || '.outbox_add_days'));
                    WHILE day <= last_day LOOP
                        name := 'outbox_' || to_char(day, 'YYYYMMDD');
                        IF NOT EXISTS (
                            SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                            WHERE i.inhparent = 'outbox'::regclass AND c.relname = name
                        ) THEN
                            IF to_regclass(quote_ident(name)) IS NULL THEN
                                EXECUTE format('CREATE TABLE %I (LIKE outbox INCLUDING DEFAULTS)', name);
                            END IF;
                            EXECUTE format(
                                'ALTER TABLE outbox ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                                name, day::timestamp AT TIME ZONE 'UTC', (day + 1)::timestamp AT TIME ZONE 'UTC'
                            );
                            added := added + 1;
                        END IF;
                        day := day + 1;
                    END LOOP;
                    RETURN added;
                END
                $$
                """,
                """
                SELECT outbox_add_days(
                    least(
                        (SELECT (min(created_at) AT TIME ZONE 'UTC')::date FROM outbox_unpartitioned),
                        (now() AT TIME ZONE 'UTC')::date
                    ),
                    (now() AT TIME ZONE 'UTC')::date + 7
                )
                """,
                """
                INSERT INTO outbox (pos, seq, event_id, type, media_id, upload_set_id, payload, created_at)
                SELECT pos, seq, event_id, type, media_id, upload_set_id, payload, created_at FROM outbox_unpartitioned
                """,
                "DROP TABLE outbox_unpartitioned",
            ]
        ),
        Migration(
            version: 10,
            name: "trace context of jobs",
            statements: [
                // the W3C traceparent of the request that stored the media: the job's span links to its trace
                // (a nullable column without a default: no table rewrite)
                "ALTER TABLE jobs ADD COLUMN trace_parent text"
            ]
        ),
        Migration(
            version: 11,
            name: "correlation of related work, partitioned by day",
            statements: [
                // outbox_add_days (migration 9) for any table partitioned by day into <parent>_YYYYMMDD tables
                """
                CREATE FUNCTION day_partitions_add(parent text, first_day date, last_day date) RETURNS integer LANGUAGE plpgsql AS $$
                DECLARE
                    day date := first_day;
                    name text;
                    added integer := 0;
                BEGIN
                    -- one maker of this table's days at a time (migrators of other schemas go on)
                    PERFORM pg_advisory_xact_lock(hashtext(current_schema() || '.' || parent || '_add_days'));
                    WHILE day <= last_day LOOP
                        name := parent || '_' || to_char(day, 'YYYYMMDD');
                        IF NOT EXISTS (
                            SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                            WHERE i.inhparent = parent::regclass AND c.relname = name
                        ) THEN
                            IF to_regclass(quote_ident(name)) IS NULL THEN
                                EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS)', name, parent);
                            END IF;
                            EXECUTE format(
                                'ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                                parent, name, day::timestamp AT TIME ZONE 'UTC', (day + 1)::timestamp AT TIME ZONE 'UTC'
                            );
                            added := added + 1;
                        END IF;
                        day := day + 1;
                    END LOOP;
                    RETURN added;
                END
                $$
                """,
                """
                CREATE OR REPLACE FUNCTION outbox_add_days(first_day date, last_day date) RETURNS integer LANGUAGE sql AS $$
                    SELECT day_partitions_add('outbox', first_day, last_day)
                $$
                """,
                // An adjacency list of ids (request, trace, set, media, job, event; written kind:id) that one piece
                // of work links: walked both ways when asked (`mediagw correlate`), kept by whole days.
                """
                CREATE TABLE correlation (
                    a           text NOT NULL,
                    b           text NOT NULL,
                    relation    text NOT NULL,
                    at          timestamptz NOT NULL,
                    host        text NOT NULL,
                    state       text,
                    error       text,
                    duration_ms bigint
                ) PARTITION BY RANGE (at)
                """,
                "CREATE INDEX correlation_from ON correlation (a)",
                "CREATE INDEX correlation_to ON correlation (b)",
                "SELECT day_partitions_add('correlation', (now() AT TIME ZONE 'UTC')::date - 1, (now() AT TIME ZONE 'UTC')::date + 7)",
            ]
        ),
        Migration(
            version: 12,
            name: "claims of a priority read only that priority's queue",
            statements: [
                // jobs_claim (migration 7) serves every claim. With jobs_runnable beside it, the planner could walk
                // the queue in run_after order across priorities and filter out the other priority's jobs: seen at
                // 1 M rows, an interactive claim read 5,000 queued bulk jobs to find one, so a bulk backlog would
                // have slowed every live claim down with its size.
                "DROP INDEX IF EXISTS jobs_runnable"
            ]
        ),
        Migration(
            version: 13,
            name: "the hash of a resumable upload's bytes so far",
            statements: [
                // the SHA-256 state after `received` bytes, saved with each landed chunk so that the next append,
                // on any gateway, hashes on from it and the completion needs no read-back (NULL: not known)
                "ALTER TABLE resumable_uploads ADD COLUMN hash_state bytea"
            ]
        ),
    ]
}
