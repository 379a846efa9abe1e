//! Two processes on one SQLite file (the server, and `switchboard create-admin` or
//! `seed-demo` beside it): each has its own pool, so only SQLite's locks keep their writers
//! apart. A write transaction that reads first must wait for the other's commit, not fail.

use std::sync::mpsc;
use std::time::Duration;

use persistence::Store;
use persistence::repo::settings;

#[test]
fn a_writer_waits_for_another_processs_commit() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("shared.db").display());
    let server = Store::open(&url, 1).expect("open");
    server.migrate().expect("migrate");
    let command = Store::open(&url, 1).expect("open again");

    let (read_done, wait_read) = mpsc::channel::<()>();
    let (committed, wait_commit) = mpsc::channel::<()>();
    let (holding, wait_holding) = mpsc::channel::<()>();
    // The server's writer: holds the write lock until the command has read (or a second has
    // passed, when the command's transaction cannot start before this one ends).
    let holder = std::thread::spawn(move || {
        server
            .write(|conn| {
                settings::get_or_insert(conn, "bench_first", "server")?;
                let _ = holding.send(());
                let _ = wait_read.recv_timeout(Duration::from_secs(1));
                Ok(())
            })
            .expect("the server's write");
        let _ = committed.send(());
        server
    });
    wait_holding
        .recv_timeout(Duration::from_secs(10))
        .expect("the server's writer holds the lock");
    // The command: reads, then writes after the server committed in between.
    let outcome = command.write(|conn| {
        let seen = settings::get(conn, "bench_first")?;
        let _ = read_done.send(());
        let _ = wait_commit.recv_timeout(Duration::from_secs(2));
        settings::get_or_insert(conn, "bench_second", "command")?;
        Ok(seen)
    });
    let server = holder.join().expect("the server's thread");
    let seen = outcome.expect("the command's write waits for the server's commit, then runs");
    assert_eq!(
        seen.as_deref(),
        Some("server"),
        "it began after the server's commit"
    );
    let both = server
        .read(|conn| {
            Ok((
                settings::get(conn, "bench_first")?,
                settings::get(conn, "bench_second")?,
            ))
        })
        .expect("read");
    assert_eq!(
        both,
        (Some("server".to_string()), Some("command".to_string()))
    );
}
