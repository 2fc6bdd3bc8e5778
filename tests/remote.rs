//! `--remote` and `--serve` end to end. The "hosts" are real OpenSSH
//! servers (Debian's openssh-server) that each test starts on 127.0.0.1
//! ports with a throwaway host key, an authorized_keys made from a
//! throwaway user key, and its own cache directory (sshd_config `SetEnv
//! XDG_CACHE_HOME`), so each host keeps its own copy of stap-sdt as a real
//! machine would. Ports on loopback rather than network namespaces: same
//! ssh code path, no routing to set up, nothing left behind if a test dies.
//! The client is `ssh -F` a config the test writes (--ssh-command).
//! All hosts share this kernel: each traces its own `-c` fixture, so the
//! per-host numbers are exact.

mod trace_support;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use test_support::Scratch;
use trace_support::BIN;

/// Fires `rt:tick(i, i*i)` N times, GAP µs apart, then waits LINGER s.
const FIXTURE: &str = r#"
#include <sys/sdt.h>
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 10;
    int gap = argc > 2 ? atoi(argv[2]) : 1000;
    int linger = argc > 3 ? atoi(argv[3]) : 0;
    for (long i = 0; i < n; i++) {
        DTRACE_PROBE2(rt, tick, i, i * i);
        usleep(gap);
    }
    sleep(linger);
    return 0;
}
"#;

/// A `stap-sdt` run that is ended (SIGTERM, then SIGKILL) if the test
/// fails before it does: a failed assertion leaves no tracer behind.
struct Home(Child);

impl Drop for Home {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            test_support::bounded::signal_pid(self.0.id(), libc::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(20);
            while matches!(self.0.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// sshd servers on loopback, stopped when dropped.
struct Hosts {
    servers: Vec<Child>,
    config: PathBuf,
    dir: PathBuf,
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for s in &mut self.servers {
            let _ = s.kill();
            let _ = s.wait();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn keygen(path: &Path) {
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "ssh-keygen {}", path.display());
}

impl Hosts {
    /// `count` hosts h1..hN with sshd, and h0: a port nothing listens on.
    fn start(test: &str, scratch: &Scratch, count: usize) -> Option<Hosts> {
        if !trace_support::prerequisites(test) {
            return None;
        }
        let sshd = PathBuf::from("/usr/sbin/sshd");
        if !sshd.exists() {
            test_support::skip(test, "no /usr/sbin/sshd (Debian openssh-server)");
            return None;
        }
        test_support::require(test, "ssh")?;
        test_support::require(test, "ssh-keygen")?;
        // sshd's privilege separation directory (made by its init script).
        let _ = std::fs::create_dir_all("/run/sshd");
        let dir = scratch.path().to_path_buf();
        keygen(&dir.join("user_key"));
        std::fs::copy(dir.join("user_key.pub"), dir.join("authorized_keys")).unwrap();
        let mut client = String::new();
        let mut servers = Vec::new();
        let mut ports = Vec::new();
        for n in 1..=count {
            let home = dir.join(format!("h{n}"));
            std::fs::create_dir_all(&home).unwrap();
            keygen(&home.join("host_key"));
            let port = free_port();
            let config = format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {h}/host_key\nPidFile {h}/sshd.pid\n\
                 AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nUsePAM no\n\
                 SetEnv XDG_CACHE_HOME={h}/cache\n",
                h = home.display(),
                d = dir.display()
            );
            std::fs::write(home.join("sshd_config"), config).unwrap();
            let server = Command::new(&sshd)
                .args(["-D", "-e", "-f"])
                .arg(home.join("sshd_config"))
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(home.join("sshd.log")).unwrap())
                .spawn();
            match server {
                Ok(s) => servers.push(s),
                Err(e) => {
                    test_support::skip(test, &format!("cannot start sshd: {e}"));
                    return None;
                }
            }
            client.push_str(&format!("Host h{n}\n  HostName 127.0.0.1\n  Port {port}\n"));
            ports.push(port);
        }
        client.push_str(&format!(
            "Host h0\n  HostName 127.0.0.1\n  Port {}\n  ConnectTimeout 5\nHost *\n  User root\n  IdentityFile {d}/user_key\n  \
             IdentitiesOnly yes\n  StrictHostKeyChecking no\n  UserKnownHostsFile {d}/known_hosts\n  \
             LogLevel ERROR\n",
            free_port(),
            d = dir.display()
        ));
        let config = dir.join("ssh_config");
        std::fs::write(&config, client).unwrap();
        let hosts = Hosts {
            servers,
            config,
            dir,
        };
        // Each server answers before the test goes on.
        for n in 1..=count {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let ok = Command::new("ssh")
                    .arg("-F")
                    .arg(&hosts.config)
                    .args([&format!("h{n}"), "true"])
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
                if ok {
                    break;
                }
                if Instant::now() > deadline {
                    let log = std::fs::read_to_string(hosts.dir.join(format!("h{n}/sshd.log")));
                    test_support::skip(test, &format!("sshd h{n} does not answer: {log:?}"));
                    return None;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Some(hosts)
    }

    fn ssh_command(&self) -> String {
        format!("ssh -F {}", self.config.display())
    }

    /// stap-sdt with the hosts' ssh client.
    fn stap(&self) -> Command {
        let mut c = Command::new(BIN);
        c.env("STAP_SDT_SSH_COMMAND", self.ssh_command());
        c
    }

    /// The copies of stap-sdt host `n` keeps.
    fn cached(&self, n: usize) -> Vec<PathBuf> {
        let bin = self.dir.join(format!("h{n}/cache/stap-sdt/bin"));
        let mut found = Vec::new();
        for d in std::fs::read_dir(bin).into_iter().flatten().flatten() {
            let exe = d.path().join("stap-sdt");
            if exe.exists() {
                found.push(exe);
            }
        }
        found
    }
}

fn fixture(scratch: &Scratch) -> PathBuf {
    let include = format!(
        "-I{}",
        test_support::system_sdt_include().unwrap().display()
    );
    scratch.compile("gcc", "rt.c", FIXTURE, "rt", &["-O1", &include])
}

fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = test_support::bounded::output_within(cmd, Duration::from_secs(120)).expect("run");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn remote_counts_sum_split_by_host_and_name_the_unreachable_host() {
    let test = "remote_counts_sum_split_by_host_and_name_the_unreachable_host";
    let scratch = Scratch::new();
    let Some(hosts) = Hosts::start(test, &scratch, 2) else {
        return;
    };
    let fx = fixture(&scratch);
    let probe = format!("{}:rt:tick", fx.display());
    let cmd = format!("{} 20 2000", fx.display());
    // Two hosts and one nothing answers on.
    let (code, out, err) = run(hosts.stap().args([
        "trace", "--remote", "h1", "--remote", "h2", "--remote", "h0", "-c", &cmd, "--count",
        &probe,
    ]));
    assert_eq!(code, 101, "one host failed: {out}\n{err}");
    assert_eq!(out, "@count[rt:tick]: 40\n", "{err}");
    assert_eq!(err.matches("h0").count(), 1, "named once: {err}");
    assert!(err.contains("host h0: cannot connect"), "{err}");
    assert_eq!(err.matches("copied stap-sdt").count(), 2, "{err}");
    assert_eq!((hosts.cached(1).len(), hosts.cached(2).len()), (1, 1));

    // Per host, in JSON; the cached copies are used (no copy).
    let (code, out, err) = run(hosts.stap().args([
        "trace", "--remote", "h1", "--remote", "h2", "-c", &cmd, "--count", "--by", "host",
        "--json", &probe,
    ]));
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("copied"), "{err}");
    let mut rows: Vec<(String, u64)> = json_lines(&out)
        .iter()
        .map(|j| {
            (
                j["keys"]["host"].as_str().unwrap().to_string(),
                j["count"].as_u64().unwrap(),
            )
        })
        .collect();
    rows.sort();
    assert_eq!(rows, [("h1".into(), 20), ("h2".into(), 20)], "{out}");

    // A histogram merged bucket by bucket: arg1 = i*i for i < 20 on each host.
    let (code, out, err) = run(hosts.stap().args([
        "trace",
        "--remote",
        "h1",
        "--remote",
        "h2",
        "-c",
        &cmd,
        "--hist",
        "arg1",
        "--linear",
        "0,400,100",
        "--remote-clean",
        &probe,
    ]));
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "@arg1[rt:tick]:", "{out}");
    // 0..100: i 0..=9 (10), 100..200: 10..=14 (5), 200..300: 15..=17 (3), 300..400: 18, 19 (2).
    let sum: i64 = (0..20).map(|i: i64| i * i).sum::<i64>() * 2;
    assert!(
        lines[1].starts_with(&format!("count 40, sum {sum}, min 0, max 361")),
        "{out}"
    );
    for (label, n) in [
        ("[0, 100)", 20),
        ("[100, 200)", 10),
        ("[200, 300)", 6),
        ("[300, 400)", 4),
    ] {
        let line = lines.iter().find(|l| l.starts_with(label)).unwrap();
        assert_eq!(
            line.split_whitespace().nth(2),
            Some(n.to_string().as_str()),
            "{out}"
        );
    }
    // --remote-clean: no copy left on either host.
    assert!(err.contains("h1: removed"), "{err}");
    assert_eq!((hosts.cached(1).len(), hosts.cached(2).len()), (0, 0));
}

#[test]
fn remote_records_carry_their_host_in_time_order() {
    let test = "remote_records_carry_their_host_in_time_order";
    let scratch = Scratch::new();
    let Some(hosts) = Hosts::start(test, &scratch, 2) else {
        return;
    };
    let fx = fixture(&scratch);
    let probe = format!("{}:rt:tick", fx.display());
    // 30 hits 20 ms apart on each host: the two runs overlap in time.
    let cmd = format!("{} 30 20000", fx.display());
    let (code, out, err) = run(hosts.stap().args([
        "trace", "-q", "--remote", "h1", "--remote", "h2", "-c", &cmd, "--json", &probe,
    ]));
    assert_eq!(code, 0, "{err}");
    let records = json_lines(&out);
    assert_eq!(records.len(), 60, "{out}");
    for host in ["h1", "h2"] {
        let args: Vec<u64> = records
            .iter()
            .filter(|r| r["host"] == host)
            .map(|r| r["args"][0].as_u64().unwrap())
            .collect();
        assert_eq!(args, (0..30).collect::<Vec<u64>>(), "{host}: {out}");
    }
    let times: Vec<u64> = records
        .iter()
        .map(|r| r["time_ns"].as_u64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "time order: {out}");
    // They did interleave: the order is the merge's, not one host after the other.
    let switches = records
        .windows(2)
        .filter(|w| w[0]["host"] != w[1]["host"])
        .count();
    assert!(switches > 1, "{out}");

    // Human lines: the host first.
    let (code, out, err) = run(hosts.stap().args([
        "trace",
        "-q",
        "--remote",
        "h1",
        "--remote",
        "h2",
        "-c",
        &format!("{} 2 1000", fx.display()),
        &probe,
    ]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("h1 ")).count(),
        2,
        "{out}"
    );
    assert_eq!(
        out.lines().filter(|l| l.starts_with("h2 ")).count(),
        2,
        "{out}"
    );
}

/// Whether a process runs a copy of stap-sdt from under `dir`.
fn copies_running(dir: &Path) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(exe) = std::fs::read_link(format!("/proc/{pid}/exe")) {
            if exe.starts_with(dir) {
                found.push(pid);
            }
        }
    }
    found
}

#[test]
fn remote_ctrl_c_stops_every_host_and_leaves_nothing() {
    let test = "remote_ctrl_c_stops_every_host_and_leaves_nothing";
    let scratch = Scratch::new();
    let Some(hosts) = Hosts::start(test, &scratch, 2) else {
        return;
    };
    let fx = fixture(&scratch);
    let probe = format!("{}:rt:tick", fx.display());
    // System-wide on both hosts (one kernel here): each counts every hit.
    let mut guard = Home(
        hosts
            .stap()
            .args([
                "trace",
                "--remote",
                "h1",
                "--remote",
                "h2",
                "--remote-clean",
                "--count",
            ])
            .args(["--by", "host", "--json", &probe])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let home = &mut guard.0;
    let mut stderr = trace_support::Lines::new(home.stderr.take().unwrap());
    // Both hosts attached, in whichever order they say so.
    let mut tracing = [stderr.wait_for(": Tracing"), stderr.wait_for(": Tracing")];
    tracing.sort();
    assert!(
        tracing[0].contains("h1: ") && tracing[1].contains("h2: "),
        "{tracing:?}"
    );
    assert!(Command::new(&fx)
        .args(["7", "100"])
        .status()
        .unwrap()
        .success());
    // SIGINT to home alone, as a terminal sends it to the foreground group
    // (home keeps ssh in groups of their own and stops each host itself).
    test_support::bounded::signal_pid(home.id(), libc::SIGINT);
    let status = test_support::bounded::wait_within(home, Duration::from_secs(30), "home");
    let mut out = String::new();
    home.stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let err = stderr.rest();
    assert_eq!(status.code(), Some(0), "{out}\n{err:?}");
    let mut rows: Vec<(String, u64)> = json_lines(&out)
        .iter()
        .map(|j| {
            (
                j["keys"]["host"].as_str().unwrap().into(),
                j["count"].as_u64().unwrap(),
            )
        })
        .collect();
    rows.sort();
    assert_eq!(rows, [("h1".into(), 7), ("h2".into(), 7)], "{out}");
    // No tracer, no kernel object, no copy left.
    assert!(copies_running(&hosts.dir).is_empty());
    assert!(
        !test_support::uprobe_events()
            .contains(&fx.file_name().unwrap().to_string_lossy().to_string()),
        "{}",
        test_support::uprobe_events()
    );
    assert_eq!((hosts.cached(1).len(), hosts.cached(2).len()), (0, 0));
}

/// GET /metrics.
fn scrape(addr: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).expect("connect to --serve");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

/// The value of the sample line that starts with `series`.
fn sample(text: &str, series: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn serve_metrics_agree_with_the_printed_result() {
    let test = "serve_metrics_agree_with_the_printed_result";
    if !trace_support::prerequisites(test) {
        return;
    }
    let scratch = Scratch::new();
    let fx = fixture(&scratch);
    let probe = format!("{}:rt:tick", fx.display());
    let addr = format!("127.0.0.1:{}", free_port());
    // 50 hits, then the program lingers: scraped while the tracer runs.
    let tracer = Command::new(BIN)
        .args([
            "trace", "-q", "--serve", &addr, "--hist", "arg1", "--json", "-c",
        ])
        .arg(format!("{} 50 1000 3", fx.display()))
        .arg(&probe)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let count = "stap_sdt_value_count{probe=\"rt:tick\",arg=\"arg1\"}";
    let text = loop {
        let text = std::net::TcpStream::connect(&addr)
            .map(|_| scrape(&addr))
            .unwrap_or_default();
        if sample(&text, count) == Some(50) || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = tracer.wait_with_output().unwrap();
    let printed = json_lines(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(printed.len(), 1, "{printed:?}");
    let row = &printed[0];
    assert_eq!(sample(&text, count), row["count"].as_u64(), "{text}");
    let sum = text
        .lines()
        .find_map(|l| l.strip_prefix("stap_sdt_value_sum{probe=\"rt:tick\",arg=\"arg1\"} "))
        .unwrap();
    assert_eq!(
        sum.parse::<f64>().unwrap() as i64,
        row["sum"].as_i64().unwrap()
    );
    // Every printed bucket [low, high] gives the cumulative count at le=high.
    let mut cumulative = 0;
    for b in row["buckets"].as_array().unwrap() {
        cumulative += b["count"].as_u64().unwrap();
        let series = format!(
            "stap_sdt_value_bucket{{le=\"{}.0\",probe=\"rt:tick\",arg=\"arg1\"}}",
            b["high"].as_i64().unwrap()
        );
        assert_eq!(sample(&text, &series), Some(cumulative), "{series}\n{text}");
    }
    assert_eq!(
        sample(
            &text,
            "stap_sdt_value_bucket{le=\"+Inf\",probe=\"rt:tick\",arg=\"arg1\"}"
        ),
        Some(50)
    );
    assert_eq!(
        sample(&text, "stap_sdt_lost_events_total"),
        Some(0),
        "{text}"
    );
    assert!(text.ends_with("# EOF\n"), "{text}");
}

#[test]
fn serve_counts_by_key_and_bounds_the_series() {
    let test = "serve_counts_by_key_and_bounds_the_series";
    if !trace_support::prerequisites(test) {
        return;
    }
    let scratch = Scratch::new();
    let fx = fixture(&scratch);
    let probe = format!("{}:rt:tick", fx.display());
    let addr = format!("127.0.0.1:{}", free_port());
    // 12 keys (arg0 = 0..11), at most 5 series served.
    let tracer = Command::new(BIN)
        .args([
            "trace",
            "-q",
            "--serve",
            &addr,
            "--serve-max-series",
            "5",
            "--count",
            "--by",
        ])
        .args(["arg0", "--json", "-c"])
        .arg(format!("{} 12 1000 3", fx.display()))
        .arg(&probe)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let text = loop {
        let text = std::net::TcpStream::connect(&addr)
            .map(|_| scrape(&addr))
            .unwrap_or_default();
        if sample(&text, "stap_sdt_series_dropped") == Some(7) || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = tracer.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("more than --serve-max-series 5"), "{err}");
    assert_eq!(sample(&text, "stap_sdt_series_dropped"), Some(7), "{text}");
    let served: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("stap_sdt_hits_total{"))
        .collect();
    assert_eq!(served.len(), 5, "{text}");
    for line in served {
        assert!(line.ends_with(" 1"), "{line}");
    }
    assert_eq!(json_lines(&String::from_utf8_lossy(&out.stdout)).len(), 12);
}

#[test]
fn a_host_of_another_architecture_is_named_not_served() {
    // A stand-in for ssh that answers as an aarch64 machine would.
    let scratch = Scratch::new();
    let fake = scratch.write("fake-ssh", "#!/bin/sh\nprintf 'aarch64\\nmissing\\n'\n");
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let (code, out, err) = run(Command::new(BIN)
        .args(["list", "--remote", "arm1", "--ssh-command"])
        .arg(&fake)
        .arg("/bin/true"));
    assert_eq!(code, 101, "{out}\n{err}");
    assert!(out.is_empty(), "{out}");
    let machine = std::env::consts::ARCH;
    assert!(
        err.contains(&format!(
            "host arm1: runs aarch64, this stap-sdt is built for {machine}"
        )),
        "{err}"
    );
}

/// `GET path` on a local HTTP server; the body.
fn http_get(addr: &str, path: &str) -> String {
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return String::new();
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    if s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .is_err()
    {
        return String::new();
    }
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

/// A PromQL query for a URL.
fn percent_encoded(query: &str) -> String {
    query
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The value of the first sample a Prometheus instant query returns.
fn prometheus_value(web: &str, query: &str) -> Option<f64> {
    let body = http_get(
        web,
        &format!("/api/v1/query?query={}", percent_encoded(query)),
    );
    let doc: serde_json::Value = serde_json::from_str(&body).ok()?;
    doc["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

/// A real Prometheus server scrapes `--serve`: its query API gives the
/// exact count, and a histogram quantile inside the bucket of the truth.
#[test]
fn prometheus_scrapes_the_served_metrics() {
    let test = "prometheus_scrapes_the_served_metrics";
    if !trace_support::prerequisites(test) {
        return;
    }
    let Some(prometheus) = test_support::require(test, "prometheus") else {
        return;
    };
    let scratch = Scratch::new();
    let fx = fixture(&scratch);
    let probe = format!("{}:rt:tick", fx.display());
    let addr = format!("127.0.0.1:{}", free_port());
    // arg0 = 0..49, then the program lingers while Prometheus scrapes.
    let mut tracer = Command::new(BIN)
        .args(["trace", "-q", "--serve", &addr, "--hist", "arg0", "-c"])
        .arg(format!("{} 50 1000 30", fx.display()))
        .arg(&probe)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let config = scratch.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: stap\n    \
             static_configs:\n      - targets: ['{addr}']\n"
        ),
    )
    .unwrap();
    let web = format!("127.0.0.1:{}", free_port());
    let mut server = Command::new(prometheus)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            scratch.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address={web}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let count = "stap_sdt_value_count{probe=\"rt:tick\"}";
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = None;
    while Instant::now() < deadline {
        seen = prometheus_value(&web, count);
        if seen == Some(50.0) {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let median = prometheus_value(
        &web,
        "histogram_quantile(0.5, stap_sdt_value_bucket{probe=\"rt:tick\"})",
    );
    let hits = prometheus_value(&web, "stap_sdt_value_sum{probe=\"rt:tick\"}");
    let _ = server.kill();
    let _ = server.wait();
    test_support::bounded::signal_pid(tracer.id(), libc::SIGINT);
    let _ = tracer.wait();
    assert_eq!(seen, Some(50.0), "Prometheus's count of the hits");
    // 0 + 1 + … + 49.
    assert_eq!(hits, Some(1225.0));
    // The true median of 0..49 is 24 or 25: log2 bucket [16, 31].
    let median = median.expect("a quantile");
    assert!((16.0..=31.0).contains(&median), "median {median}");
}
