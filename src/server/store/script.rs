//! Several statements sent as one: on SQLite, one query holding all of them
//! (sqlx's SQLite driver binds anonymous `?` parameters across the
//! statements of a query, in order); on PostgreSQL, whose extended protocol
//! takes one statement per query, one after another.
//!
//! Why: sqlx runs each SQLite connection on a thread of its own, and every
//! query is a message to that thread and a wake-up back. On a busy 2-core
//! machine each such hop waits for a core (at 5,000 posts/s a do-nothing
//! `BEGIN` takes about half a millisecond). The ingest writer sends a
//! whole commit as two scripts instead of eight statements.
use super::Backend;
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::error::BoxDynError;
use sqlx::{Any, Arguments, Encode, Executor, Type};

struct Part<'q> {
    sql: String,
    args: AnyArguments<'q>,
    statements: usize,
    persistent: bool,
    /// A statement of its own (`push_alone`): later ones do not join it.
    alone: bool,
}

pub struct Script<'q> {
    backend: Backend,
    parts: Vec<Part<'q>>,
    /// The first value that failed to encode, reported when the script runs.
    bind_error: Option<BoxDynError>,
}

impl<'q> Script<'q> {
    pub fn new(backend: Backend) -> Script<'q> {
        Script {
            backend,
            parts: Vec::new(),
            bind_error: None,
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// Adds a statement; its parameters follow with `bind`. `persistent`
    /// says whether the statement is worth keeping prepared: its text is
    /// one of few (see `keep_prepared` and `rows`). A SQLite script of
    /// several statements is kept prepared only if all of them are, so that
    /// a script whose text changes with a batch's shape does not push
    /// useful statements out of sqlx's cache.
    pub fn push(&mut self, sql: &str, persistent: bool) -> &mut Self {
        match (self.backend, self.parts.last_mut()) {
            (Backend::Sqlite, Some(part)) if !part.alone => {
                part.sql.push_str(";\n");
                part.sql.push_str(sql);
                part.statements += 1;
                part.persistent &= persistent;
            }
            _ => self.new_part(sql, persistent, false),
        }
        self
    }

    /// Adds a statement as a query of its own, which no other statement
    /// joins, so that its text alone decides whether it is prepared
    /// already (`rows`: one of a few sizes of a multi-row insert, whatever
    /// the statements around it). On the writer's inline SQLite connection
    /// a query is a function call, not a hand-over to another thread.
    pub fn push_alone(&mut self, sql: &str, persistent: bool) -> &mut Self {
        self.new_part(sql, persistent, true);
        self
    }

    fn new_part(&mut self, sql: &str, persistent: bool, alone: bool) {
        self.parts.push(Part {
            sql: sql.to_string(),
            args: AnyArguments::default(),
            statements: 1,
            persistent,
            alone,
        });
    }

    /// Binds the next parameter of the statement pushed last.
    pub fn bind<T>(&mut self, value: T) -> &mut Self
    where
        T: 'q + Encode<'q, Any> + Type<Any>,
    {
        let Some(part) = self.parts.last_mut() else {
            self.bind_error
                .get_or_insert_with(|| "a parameter bound before any statement".into());
            return self;
        };
        if let Err(e) = part.args.add(value) {
            self.bind_error.get_or_insert(e);
        }
        self
    }

    /// Runs every statement, in order, on the caller's connection (which
    /// holds the transaction, if any). Stops at the first error.
    pub async fn execute<C>(self, conn: &mut C) -> Result<(), sqlx::Error>
    where
        for<'e> &'e mut C: Executor<'e, Database = Any>,
    {
        self.run(conn, false).await.map(|_| ())
    }

    /// Runs every statement and returns the rows of all of them, in order.
    pub async fn fetch_all<C>(self, conn: &mut C) -> Result<Vec<AnyRow>, sqlx::Error>
    where
        for<'e> &'e mut C: Executor<'e, Database = Any>,
    {
        self.run(conn, true).await
    }

    async fn run<C>(self, conn: &mut C, rows: bool) -> Result<Vec<AnyRow>, sqlx::Error>
    where
        for<'e> &'e mut C: Executor<'e, Database = Any>,
    {
        if let Some(e) = self.bind_error {
            return Err(sqlx::Error::Encode(e));
        }
        let mut out = Vec::new();
        for part in self.parts {
            debug_assert!(part.statements > 0);
            let query = sqlx::query_with(&part.sql, part.args).persistent(part.persistent);
            if rows {
                out.extend(query.fetch_all(&mut *conn).await?);
            } else {
                // `execute` drains every statement's results: a query
                // dropped half-read would leave the rest unexecuted.
                query.execute(&mut *conn).await?;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::{AnyConnection, Connection, Row};

    async fn sqlite() -> AnyConnection {
        sqlx::any::install_default_drivers();
        AnyConnection::connect("sqlite::memory:").await.unwrap()
    }

    #[tokio::test]
    async fn sqlite_script_binds_across_statements_and_returns_rows_in_order() {
        let mut conn = sqlite().await;
        let mut setup = Script::new(Backend::Sqlite);
        setup.push("CREATE TABLE t (a INTEGER, b TEXT)", false);
        setup.push("INSERT INTO t VALUES (?, ?), (?, ?)", false);
        setup.bind(1_i64).bind("one").bind(2_i64).bind("two");
        setup.push("INSERT INTO t VALUES (?, ?)", true);
        setup.bind(3_i64).bind("three");
        assert_eq!(setup.parts.len(), 1, "one query on SQLite");
        setup.execute(&mut conn).await.unwrap();

        let mut read = Script::new(Backend::Sqlite);
        read.push("SELECT count(*) AS n, NULL AS b FROM t WHERE a > ?", false)
            .bind(1_i64);
        read.push(
            "SELECT a AS n, b FROM t WHERE b = ? OR b = ? ORDER BY a",
            false,
        )
        .bind("one")
        .bind("three");
        let rows = read.fetch_all(&mut conn).await.unwrap();
        let got: Vec<i64> = rows.iter().map(|r| r.get::<i64, _>("n")).collect();
        assert_eq!(got, vec![2, 1, 3]);
    }

    #[tokio::test]
    async fn sqlite_script_stops_at_the_first_failing_statement() {
        let mut conn = sqlite().await;
        let mut setup = Script::new(Backend::Sqlite);
        setup.push("CREATE TABLE t (a INTEGER PRIMARY KEY)", false);
        setup.push("INSERT INTO t VALUES (?)", false).bind(1_i64);
        setup.execute(&mut conn).await.unwrap();

        let mut failing = Script::new(Backend::Sqlite);
        failing.push("INSERT INTO t VALUES (?)", false).bind(1_i64);
        failing.push("INSERT INTO t VALUES (?)", false).bind(2_i64);
        assert!(failing.execute(&mut conn).await.is_err());
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM t")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(n, 1, "the statement after the failure did not run");
    }

    /// The ingest writer's scripts are kept prepared (`rows`): the
    /// same script runs again with new values, also after it failed.
    #[tokio::test]
    async fn sqlite_script_of_kept_statements_is_kept_and_runs_again() {
        let mut conn = sqlite().await;
        sqlx::query("CREATE TABLE t (a INTEGER PRIMARY KEY)")
            .execute(&mut conn)
            .await
            .unwrap();
        let script = |first: i64| {
            let mut s = Script::new(Backend::Sqlite);
            s.push("INSERT INTO t VALUES (?)", true).bind(first);
            s.push("INSERT INTO t VALUES (?)", true).bind(first + 1);
            s.push("SELECT count(*) AS n FROM t", true);
            assert!(s.parts[0].persistent);
            s
        };
        for (first, count) in [(0, 2), (2, 4)] {
            let rows = script(first).fetch_all(&mut conn).await.unwrap();
            assert_eq!(rows[0].get::<i64, _>("n"), count);
        }
        // -1 is new but 0 is taken: the script stops halfway.
        assert!(script(-1).fetch_all(&mut conn).await.is_err());
        let rows = script(10).fetch_all(&mut conn).await.unwrap();
        assert_eq!(rows[0].get::<i64, _>("n"), 7);

        // One statement that is not kept makes the whole script one-off.
        let mut one_off = Script::new(Backend::Sqlite);
        one_off.push("SELECT 1", true).push("SELECT 2", false);
        assert!(!one_off.parts[0].persistent);
    }

    #[test]
    fn a_statement_pushed_alone_is_joined_by_none() {
        let mut script = Script::new(Backend::Sqlite);
        script.push("SELECT 1", true).push("SELECT 2", true);
        script.push_alone("SELECT 3", true);
        script.push("SELECT 4", false).push("SELECT 5", true);
        let parts: Vec<(&str, bool)> = script
            .parts
            .iter()
            .map(|p| (p.sql.as_str(), p.persistent))
            .collect();
        assert_eq!(
            parts,
            vec![
                ("SELECT 1;\nSELECT 2", true),
                ("SELECT 3", true),
                ("SELECT 4;\nSELECT 5", false)
            ]
        );
    }

    #[test]
    fn postgres_script_keeps_one_query_per_statement() {
        let mut script = Script::new(Backend::Postgres);
        script.push("SELECT $1", true).bind(1_i64);
        script.push("SELECT $1", false).bind(2_i64);
        assert_eq!(script.parts.len(), 2);
        assert!(script.parts[0].persistent && !script.parts[1].persistent);
    }
}
