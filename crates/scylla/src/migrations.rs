//! Versioned CQL migrations, applied at startup. Every statement is idempotent (`IF NOT EXISTS`), so
//! instances starting together may both run one; each applied version is recorded once.

use kurz_ports::InfraError;
use scylla::client::session::Session;

/// One schema version. Append-only: a released migration never changes.
#[derive(Debug)]
pub struct Migration {
    pub version: i32,
    pub description: &'static str,
    /// CQL with `{ks}` for the keyspace.
    pub statements: &'static [&'static str],
}

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "links by code, click statistics per link and day, projection checkpoints",
        statements: &[
            // One partition per link: a redirect is one single-partition read.
            "CREATE TABLE IF NOT EXISTS {ks}.links (code text PRIMARY KEY, link blob, last_offset bigint)",
            // A link's days in one partition, in day order: a stats read is one range read, its cost set
            // by the days asked for, never by the number of clicks.
            "CREATE TABLE IF NOT EXISTS {ks}.click_days (code text, day int, stats blob, last_offset bigint, \
         PRIMARY KEY (code, day)) WITH CLUSTERING ORDER BY (day ASC)",
            "CREATE TABLE IF NOT EXISTS {ks}.checkpoints (partition int PRIMARY KEY, next_offset bigint)",
        ],
    },
    Migration {
        version: 2,
        description: "code claims and leased code sequences (written only with lightweight transactions)",
        statements: &[
            "CREATE TABLE IF NOT EXISTS {ks}.code_claims (code text PRIMARY KEY)",
            "CREATE TABLE IF NOT EXISTS {ks}.code_sequences (name text PRIMARY KEY, next bigint)",
        ],
    },
    Migration {
        version: 3,
        description: "the link directory (lists by owner, newest first) and link histories, each with its own checkpoints",
        statements: &[
            "CREATE TABLE IF NOT EXISTS {ks}.projection_checkpoints (projection text, partition int, next_offset bigint, \
         PRIMARY KEY (projection, partition))",
            "CREATE TABLE IF NOT EXISTS {ks}.directory_links (code text PRIMARY KEY, row blob)",
            // One partition per owner and month of creation, in newest-first order: a page is one
            // range read, and no owner's partition grows without bound.
            "CREATE TABLE IF NOT EXISTS {ks}.directory_order (scope text, month int, sort_key blob, \
         PRIMARY KEY ((scope, month), sort_key)) WITH CLUSTERING ORDER BY (sort_key ASC)",
            // Which months an owner has links in, newest first.
            "CREATE TABLE IF NOT EXISTS {ks}.directory_months (scope text, month int, \
         PRIMARY KEY (scope, month)) WITH CLUSTERING ORDER BY (month DESC)",
            // A link's events in one partition by offset: a history read costs the link's events.
            "CREATE TABLE IF NOT EXISTS {ks}.link_history (code text, offset bigint, event blob, \
         PRIMARY KEY (code, offset)) WITH CLUSTERING ORDER BY (offset ASC)",
        ],
    },
    Migration {
        version: 4,
        description: "the layout of the read store's rows, so that a build of another layout folds them again",
        statements: &["CREATE TABLE IF NOT EXISTS {ks}.read_layout (name text PRIMARY KEY, version int)"],
    },
];

fn infra(context: &'static str) -> impl Fn(scylla::errors::ExecutionError) -> InfraError {
    move |error| InfraError::new(context, error)
}

/// Creates the keyspace if missing and applies every migration not yet recorded.
pub async fn migrate(session: &Session, keyspace: &str, replication: &str) -> Result<Vec<i32>, InfraError> {
    let create = format!("CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = {replication}");
    session.query_unpaged(create, ()).await.map_err(infra("creating the keyspace"))?;
    let history = format!(
        "CREATE TABLE IF NOT EXISTS {keyspace}.schema_migrations (version int PRIMARY KEY, description text, applied_at timestamp)"
    );
    session.query_unpaged(history, ()).await.map_err(infra("creating the migration history"))?;
    let recorded = session
        .query_unpaged(format!("SELECT version FROM {keyspace}.schema_migrations"), ())
        .await
        .map_err(infra("reading the migration history"))?
        .into_rows_result()
        .map_err(|error| InfraError::new("reading the migration history", error))?;
    let applied: Vec<i32> = recorded
        .rows::<(i32,)>()
        .map_err(|error| InfraError::new("reading the migration history", error))?
        .map(|row| row.map(|(version,)| version))
        .collect::<Result<_, _>>()
        .map_err(|error| InfraError::new("reading the migration history", error))?;
    let mut newly = Vec::new();
    for migration in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
        for statement in migration.statements {
            let statement = statement.replace("{ks}", keyspace);
            session.query_unpaged(statement, ()).await.map_err(infra("applying a migration"))?;
        }
        let record = format!(
            "INSERT INTO {keyspace}.schema_migrations (version, description, applied_at) \
             VALUES (?, ?, toTimestamp(now())) IF NOT EXISTS"
        );
        session
            .query_unpaged(record, (migration.version, migration.description))
            .await
            .map_err(infra("recording a migration"))?;
        tracing::info!(version = migration.version, description = migration.description, "schema migration applied");
        newly.push(migration.version);
    }
    session.await_schema_agreement().await.map_err(|error| InfraError::new("waiting for schema agreement", error))?;
    Ok(newly)
}
