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
        test_support::bounded::signal_pid(self.child.id(), libc::SIGINT);
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

/// A private PostgreSQL for one test: its scratch directory, socket
/// directory, port and postmaster; `None` (skip printed) when a part is missing.
fn private_postgres(
    test: &str,
    port_offset: u16,
) -> Option<(Scratch, std::path::PathBuf, u16, Postmaster)> {
    if !prerequisites(test)
        || test_support::require(test, "psql").is_none()
        || test_support::require(test, "setpriv").is_none()
    {
        return None;
    }
    if !std::path::Path::new(POSTGRES).join("postgres").exists() {
        test_support::skip(
            test,
            "PostgreSQL 15 is not installed (.ci/apt-packages lists it)",
        );
        return None;
    }
    let scratch = Scratch::new();
    let dir = scratch.join("pg");
    std::fs::create_dir(&dir).unwrap();
    assert!(
        test_support::run(Command::new("chown").arg("postgres:postgres").arg(&dir))
            .status
            .success()
    );
    // A private port per run and test: derived from our pid, in a range
    // nothing else uses here.
    let port = 20000 + (std::process::id() % 20000) as u16 + port_offset;
    let postmaster = start(&dir, port);
    Some((scratch, dir, port, postmaster))
}

#[test]
fn postgres_query_text_and_nbuffers() {
    let test = "postgres_query_text_and_nbuffers";
    let Some((_scratch, dir, port, postmaster)) = private_postgres(test, 0) else {
        return;
    };
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

/// The workload: each query text, as many times (one psql, one backend each).
const WORKLOAD: [(&str, u64); 2] = [("SELECT 'stap_lat_a'", 3), ("SELECT 'stap_lat_b'", 2)];

fn send_workload(dir: &std::path::Path, port: u16) {
    for (sql, times) in WORKLOAD {
        for _ in 0..times {
            psql(dir, port, sql);
        }
    }
}

#[test]
fn postgres_latency_per_query_agrees_with_bpftrace() {
    let test = "postgres_latency_per_query_agrees_with_bpftrace";
    let Some((_scratch, dir, port, postmaster)) = private_postgres(test, 1) else {
        return;
    };
    let Some(bpftrace) = test_support::require(test, "bpftrace") else {
        return;
    };
    let postgres = format!("{POSTGRES}/postgres");
    let start = format!("{postgres}:postgresql:query__start");
    let done = format!("{postgres}:postgresql:query__done");
    let pid = postmaster.child.id().to_string();
    // Ours: per-query latency, keyed by the SQL text taken at START, in
    // the postmaster and the backends it forks (--tree: from their first
    // instruction; a psql backend lives a few ms, less than attaching
    // links to it takes).
    let tracer = Tracer::start_subcommand(
        "latency",
        &[
            "--json",
            "-p",
            &pid,
            "--tree",
            "--by",
            "str(arg0)",
            &start,
            &done,
        ],
    );
    send_workload(&dir, port);
    let (code, lines, err) = tracer.interrupt();
    assert_eq!(code, Some(0), "{err:?}");
    let ours: Vec<(String, u64)> = json_lines(&lines)
        .into_iter()
        .filter(|j| j["type"] == "hist")
        .filter_map(|j| {
            let sql = j["keys"]["str(arg0)"].as_str()?.to_string();
            sql.contains("stap_lat_")
                .then(|| (sql, j["count"].as_u64().unwrap()))
        })
        .collect();
    let mut ours = ours;
    ours.sort();
    let want: Vec<(String, u64)> = WORKLOAD.iter().map(|(s, n)| (s.to_string(), *n)).collect();
    assert_eq!(ours, want, "{lines:?}");
    for j in json_lines(&lines).iter().filter(|j| j["type"] == "hist") {
        assert!(
            j["min"].as_i64().unwrap() > 0 && j["p99"].as_i64() <= j["max"].as_i64(),
            "{j}"
        );
    }

    // bpftrace counting the same queries (system-wide: its -p does not
    // follow the backends forked later). Run after ours, not beside it.
    // It says "Attaching" before it has attached: a warm-up query it
    // prints tells when it sees hits.
    let script = format!(
        "usdt:{postgres}:postgresql:query__start \
         /strncmp(str(arg0), \"SELECT 'stap_lat_\", 17) == 0/ \
         {{ @[str(arg0)] = count(); printf(\"seen %s\\n\", str(arg0)); }}"
    );
    let mut child = std::process::Command::new(bpftrace)
        .args(["-e", &script])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = Lines::new(child.stdout.take().unwrap());
    let _err = Lines::new(child.stderr.take().unwrap());
    out.wait_for("Attaching");
    let warm = "SELECT 'stap_lat_warm'";
    for _ in 0..50 {
        psql(&dir, port, warm);
        if out.try_wait_for("seen", Duration::from_millis(200)) {
            break;
        }
    }
    send_workload(&dir, port);
    test_support::bounded::signal_pid(child.id(), libc::SIGINT);
    test_support::bounded::wait_within(&mut child, test_support::bounded::EXIT_LIMIT, "bpftrace");
    let mut theirs: Vec<(String, u64)> = out
        .rest()
        .iter()
        .filter_map(|l| {
            let (key, n) = l.strip_prefix("@[")?.rsplit_once("]: ")?;
            (key != warm).then_some((key.to_string(), n.trim().parse().ok()?))
        })
        .collect();
    theirs.sort();
    assert_eq!(theirs, ours, "bpftrace and stap-sdt count the same queries");
}
