//! The `--remote` options, the hosts they name, and the command line each
//! host runs: the user's own, with what only makes sense at home taken out.

use clap::{ArgMatches, Args, FromArgMatches};
use std::ffi::OsString;
use std::path::PathBuf;

/// Options added to `list`, `trace`, `latency`, `calls` and `events`.
#[derive(Args, Debug, Clone, Default)]
pub struct RemoteArgs {
    /// Run this command on HOST ([USER@]HOST[:PORT]) through ssh instead of here; repeatable.
    /// The stap-sdt binary is copied to a host that lacks this version (kept in
    /// ~/.cache/stap-sdt/bin/SHA256 there). Records come back tagged with their host, in
    /// time order; counts and histograms are merged (`--by host`: one row per host).
    /// Exit status: 0, or 100 + the number of hosts that failed.
    #[arg(long = "remote", value_name = "[USER@]HOST[:PORT]")]
    pub remote: Vec<String>,

    /// Hosts, one per line, as --remote takes them (`#` starts a comment).
    #[arg(long, value_name = "FILE")]
    pub remote_file: Option<PathBuf>,

    /// The ssh client to run, as a shell command (e.g. `ssh -F ./ssh_config`); default
    /// $STAP_SDT_SSH_COMMAND, else `ssh`. Its config, agent, known_hosts and multiplexing apply.
    #[arg(long, value_name = "COMMAND")]
    pub ssh_command: Option<String>,

    /// After the run, remove the copied stap-sdt binaries (every version) from every host.
    #[arg(long)]
    pub remote_clean: bool,
}

/// The commands that take `--remote`.
pub const COMMANDS: &[&str] = &["list", "trace", "latency", "calls", "events"];

/// Add the options to the commands that take them.
pub fn augment(mut command: clap::Command) -> clap::Command {
    for name in COMMANDS {
        command = command.mut_subcommand(*name, RemoteArgs::augment_args);
    }
    command
}

impl RemoteArgs {
    pub fn from_matches(matches: &ArgMatches) -> RemoteArgs {
        // Every id is defined on the commands `augment` changed.
        RemoteArgs::from_arg_matches(matches).unwrap_or_default()
    }

    /// Every host: `--remote` in order, then the file's.
    pub fn hosts(&self) -> Result<Vec<String>, String> {
        let mut hosts = self.remote.clone();
        if let Some(path) = &self.remote_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("--remote-file {}: {e}", path.display()))?;
            for line in text.lines() {
                let line = line.split('#').next().unwrap_or("").trim();
                if !line.is_empty() {
                    hosts.push(line.to_string());
                }
            }
        }
        if hosts.is_empty() && (self.remote_file.is_some() || self.remote_clean) {
            return Err("--remote-file/--remote-clean: no hosts".into());
        }
        for (i, h) in hosts.iter().enumerate() {
            Host::parse(h)?;
            if hosts[..i].contains(h) {
                return Err(format!("--remote {h}: named twice"));
            }
        }
        Ok(hosts)
    }

    /// The ssh client as a shell command.
    pub fn ssh(&self) -> String {
        self.ssh_command
            .clone()
            .or_else(|| std::env::var("STAP_SDT_SSH_COMMAND").ok())
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| "ssh".into())
    }
}

/// `[USER@]HOST[:PORT]` (an IPv6 address in brackets: `[::1]:2222`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// As the user wrote it: how messages and records name the host.
    pub name: String,
    /// What ssh connects to: `USER@HOST`.
    pub destination: String,
    pub port: Option<u16>,
}

impl Host {
    pub fn parse(text: &str) -> Result<Host, String> {
        let bad = |why: &str| format!("--remote `{text}`: {why}");
        if text.is_empty() || text.starts_with('-') || text.contains(char::is_whitespace) {
            return Err(bad("expected [USER@]HOST[:PORT]"));
        }
        let (user, rest) = match text.rsplit_once('@') {
            Some((u, r)) => (Some(u), r),
            None => (None, text),
        };
        let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
            let (addr, after) = inner.split_once(']').ok_or_else(|| bad("unclosed `[`"))?;
            (addr, after.strip_prefix(':'))
        } else if rest.matches(':').count() == 1 {
            let (h, p) = rest.split_once(':').unwrap_or((rest, ""));
            (h, Some(p))
        } else {
            (rest, None)
        };
        let port = port
            .map(|p| {
                p.parse::<u16>()
                    .map_err(|_| bad("the port is not a number"))
            })
            .transpose()?;
        if host.is_empty() {
            return Err(bad("no host"));
        }
        Ok(Host {
            name: text.to_string(),
            destination: match user {
                Some(u) => format!("{u}@{host}"),
                None => host.to_string(),
            },
            port,
        })
    }
}

/// What a host runs and how home reads its output.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// `list`, `calls`: each host's output as a block, lines tagged.
    Blocks,
    /// Records (`trace`, `events`): lines in time order across hosts.
    Records { json: bool },
    /// `--count`, `--hist`, `latency`: JSON rows merged at home.
    Aggregate,
}

/// How the user's command line becomes each host's.
pub struct Plan {
    pub mode: Mode,
    /// The arguments after the program name, for the host.
    pub argv: Vec<OsString>,
    /// `--by` as the user gave it (with `host`), for the merge at home.
    pub by: Vec<String>,
}

/// Options with a value that home keeps to itself (the host must not write
/// files, serve metrics or cut its rows before they are merged).
const HOME_VALUED: &[&str] = &[
    "--remote",
    "--remote-file",
    "--ssh-command",
    "--serve",
    "--serve-max-series",
    "-o",
    "--output",
    "--by",
    "--top",
    "--interval",
    "--timeline",
    "--folded",
    "--flamegraph",
];
const HOME_FLAGS: &[&str] = &["--remote-clean"];

/// Build the host's command line from ours (`args` without the program name).
pub fn plan(command: &str, matches: &ArgMatches, args: &[OsString]) -> Result<Plan, String> {
    let flag = |id: &str| {
        matches
            .try_get_one::<bool>(id)
            .ok()
            .flatten()
            .copied()
            .unwrap_or(false)
    };
    let has = |id: &str| matches!(matches.try_get_raw(id), Ok(Some(_)));
    let aggregating =
        command == "latency" || (command == "trace" && (flag("count") || has("hist")));
    let mode = match command {
        "list" | "calls" => Mode::Blocks,
        _ if aggregating => Mode::Aggregate,
        _ => Mode::Records { json: flag("json") },
    };
    for unsupported in ["timeline", "folded", "flamegraph"] {
        if has(unsupported) {
            return Err(format!("--{unsupported} is not available with --remote"));
        }
    }
    let by: Vec<String> = matches
        .try_get_many::<String>("by")
        .ok()
        .flatten()
        .map(|v| v.map(|s| s.trim().to_string()).collect())
        .unwrap_or_default();
    if by.iter().any(|k| k == "ustack" || k == "stack") {
        return Err(
            "--by ustack is not available with --remote (stacks are named where they ran)".into(),
        );
    }
    let mut argv = Vec::new();
    let mut rest = args.iter();
    let mut seen_command = false;
    while let Some(arg) = rest.next() {
        let text = arg.to_string_lossy();
        if !seen_command {
            seen_command = text == command;
            argv.push(arg.clone());
            continue;
        }
        if text == "--" {
            argv.push(arg.clone());
            argv.extend(rest.by_ref().cloned());
            break;
        }
        if HOME_FLAGS.contains(&text.as_ref()) {
            continue;
        }
        if let Some(name) = HOME_VALUED.iter().find(|o| {
            text == **o
                || (o.starts_with("--") && text.starts_with(&format!("{o}=")))
                || (**o == "-o" && text.starts_with("-o") && text.len() > 2)
        }) {
            // `--opt VALUE` takes the next word too; `--opt=VALUE`, `-oFILE` do not.
            if text == *name {
                rest.next();
            }
            continue;
        }
        argv.push(arg.clone());
    }
    if mode == Mode::Aggregate {
        let keys: Vec<&str> = by
            .iter()
            .map(String::as_str)
            .filter(|k| *k != "host")
            .collect();
        if !keys.is_empty() {
            argv.insert(1, OsString::from(keys.join(",")));
            argv.insert(1, OsString::from("--by"));
        }
        if !flag("json") {
            argv.insert(1, OsString::from("--json"));
        }
        // Rounds let home serve current numbers while hosts run.
        argv.insert(1, OsString::from("1"));
        argv.insert(1, OsString::from("--interval"));
    } else if by.iter().any(|k| k == "host") {
        return Err("--by host goes with --count, --hist or latency".into());
    }
    Ok(Plan { mode, argv, by })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_parsed_as_ssh_takes_them() {
        let h = Host::parse("root@10.0.0.1:2222").unwrap();
        assert_eq!(
            (h.destination.as_str(), h.port),
            ("root@10.0.0.1", Some(2222))
        );
        let h = Host::parse("[::1]:22").unwrap();
        assert_eq!((h.destination.as_str(), h.port), ("::1", Some(22)));
        let h = Host::parse("db1").unwrap();
        assert_eq!((h.destination.as_str(), h.port), ("db1", None));
        assert!(Host::parse("db1:x").unwrap_err().contains("port"));
        assert!(Host::parse("-oProxyCommand=x").is_err());
    }

    #[test]
    fn home_options_stay_home() {
        let cli = clap::Command::new("t").subcommand(augment_for_test());
        let words = [
            "trace",
            "--remote",
            "h1",
            "--remote=h2",
            "--count",
            "--by",
            "host,pid",
            "--top",
            "3",
            "-o",
            "out.txt",
            "--serve",
            ":9",
            "x:p:n",
        ];
        let m = cli
            .try_get_matches_from(std::iter::once("t").chain(words))
            .unwrap();
        let (_, sub) = m.subcommand().unwrap();
        let args: Vec<OsString> = words.iter().map(OsString::from).collect();
        let plan = plan("trace", sub, &args).unwrap();
        assert_eq!(plan.mode, Mode::Aggregate);
        let got: Vec<String> = plan
            .argv
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            got,
            [
                "trace",
                "--interval",
                "1",
                "--json",
                "--by",
                "pid",
                "--count",
                "x:p:n"
            ]
        );
    }

    fn augment_for_test() -> clap::Command {
        let c = clap::Command::new("trace")
            .arg(
                clap::Arg::new("count")
                    .long("count")
                    .action(clap::ArgAction::SetTrue),
            )
            .arg(
                clap::Arg::new("json")
                    .long("json")
                    .action(clap::ArgAction::SetTrue),
            )
            .arg(
                clap::Arg::new("by")
                    .long("by")
                    .value_delimiter(',')
                    .action(clap::ArgAction::Append),
            )
            .arg(clap::Arg::new("top").long("top"))
            .arg(clap::Arg::new("output").short('o'))
            .arg(clap::Arg::new("serve").long("serve"))
            .arg(clap::Arg::new("probes").num_args(1..));
        RemoteArgs::augment_args(c)
    }
}
