//! PostgreSQL 15 on a private port and socket directory: `query__start`
//! shows the SQL text sent with psql, and `checkpoint__done` reads the
//! global `NBuffers` through `sym(%rip)` (16384 with the default 128MB of
//! shared_buffers). Tracing the postmaster with -p follows the backends it
//! forks afterwards.

mod trace_support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use test_support::Scratch;
use trace_support::*;

const POSTGRES: &str = "/usr/lib/postgresql/15/bin";

struct Postmaster {
    child: Child,
}

impl Drop for Postmaster {
    fn drop(&mut self) {
        // SIGINT: PostgreSQL's fast shutdown.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        if !std::thread::panicking() {
            test_support::bounded::wait_within(
                &mut self.child,
                test_support::bounded::EXIT_LIMIT,
                "postgres after SIGINT",
            );
        } else {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Run a PostgreSQL program as `postgres` (it refuses root). setpriv execs
/// in place, so the child's pid is the postmaster's.
fn as_postgres(program: &str) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--reuid=postgres",
        "--regid=postgres",
        "--init-groups",
        &format!("{POSTGRES}/{program}"),
    ]);
    cmd
}

fn start(dir: &std::path::Path, port: u16) -> Postmaster {
    let data = dir.join("data");
    let out = test_support::run(
        as_postgres("initdb")
            .args(["-A", "trust", "-U", "postgres", "-D"])
            .arg(&data),
    );
    assert!(
        out.status.success(),
        "initdb: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let child = as_postgres("postgres")
        .arg("-D")
        .arg(&data)
        .args(["-p", &port.to_string(), "-c", "listen_addresses=", "-k"])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start postgres");
    let postmaster = Postmaster { child };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = Command::new(format!("{POSTGRES}/pg_isready"))
            .args(["-q", "-h"])
            .arg(dir)
            .args(["-p", &port.to_string()])
            .status()
            .unwrap();
        if ready.success() {
            break;
        }
        assert!(
            Instant::now() < deadline && postmaster_alive(&postmaster),
            "postgres did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    postmaster
}

/// The child of `parent` whose command line starts with `title`.
fn child_named(parent: u32, title: &str) -> u32 {
    let children =
        std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children")).unwrap();
    children
        .split_whitespace()
        .map(|c| c.parse::<u32>().unwrap())
        .find(|c| {
            std::fs::read(format!("/proc/{c}/cmdline"))
                .is_ok_and(|t| t.starts_with(title.as_bytes()))
        })
        .unwrap_or_else(|| panic!("no `{title}` among {children}"))
}

fn postmaster_alive(postmaster: &Postmaster) -> bool {
    std::path::Path::new(&format!("/proc/{}", postmaster.child.id())).exists()
}

fn psql(dir: &std::path::Path, port: u16, sql: &str) {
    let out = test_support::run(Command::new("psql").arg("-h").arg(dir).args([
        "-p",
        &port.to_string(),
        "-U",
        "postgres",
        "-X",
        "-q",
        "-c",
        sql,
    ]));
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn postgres_query_text_and_nbuffers() {
    let test = "postgres_query_text_and_nbuffers";
    if !prerequisites(test)
        || test_support::require(test, "psql").is_none()
        || test_support::require(test, "setpriv").is_none()
    {
        return;
    }
    if !std::path::Path::new(POSTGRES).join("postgres").exists() {
        test_support::skip(
            test,
            "PostgreSQL 15 is not installed (.ci/apt-packages lists it)",
        );
        return;
    }
    let scratch = Scratch::new();
    let dir = scratch.join("pg");
    std::fs::create_dir(&dir).unwrap();
    assert!(
        test_support::run(Command::new("chown").arg("postgres:postgres").arg(&dir))
            .status
            .success()
    );
    // A private port per run: derived from our pid, in a range nothing else uses here.
    let port = 20000 + (std::process::id() % 20000) as u16;
    let postmaster = start(&dir, port);
    let pid = postmaster.child.id().to_string();
    let postgres = format!("{POSTGRES}/postgres");
    let query = format!("{postgres}:postgresql:query__start");
    let checkpoint = format!("{postgres}:postgresql:checkpoint__done");
    let mut tracer = Tracer::start(&["--json", "--str", "0", "-p", &pid, &query]);
    // The checkpointer was forked before we attached: trace it by its own pid.
    let checkpointer = child_named(postmaster.child.id(), "postgres: checkpointer");
    let mut checkpoints = Tracer::start(&["--json", "-p", &checkpointer.to_string(), &checkpoint]);
    psql(&dir, port, "SELECT 6 * 7 AS stap_sdt_probe_test");
    psql(&dir, port, "CHECKPOINT");
    tracer.stdout.wait_for("stap_sdt_probe_test");
    checkpoints.stdout.wait_for("checkpoint__done");
    let tracer_pid = tracer.pid();
    let (code, out, err) = tracer.interrupt();
    assert_eq!(code, Some(0), "{err:?}");
    let (code, checkpoint_out, err) = checkpoints.interrupt();
    assert_eq!(code, Some(0), "{err:?}");
    let mut events = json_lines(&out);
    events.extend(json_lines(&checkpoint_out));
    assert!(
        events
            .iter()
            .any(|e| e["probe"] == "postgresql:query__start"
                && e["args"][0] == "SELECT 6 * 7 AS stap_sdt_probe_test"),
        "{out:?}"
    );
    let checkpoint = events
        .iter()
        .find(|e| e["probe"] == "postgresql:checkpoint__done")
        .unwrap();
    assert_eq!(checkpoint["args"][1], 16384, "NBuffers through sym(%rip)");
    assert!(events_of(tracer_pid).is_empty());
}
