//! `stap-sdt tapsets`: what is installed here and which events it offers;
//! bad input is named. Reads files only (no uprobes).

mod lang_support;

use lang_support::*;
use std::path::Path;
use std::time::Duration;

fn tapsets(args: &[&str]) -> Output {
    let mut all = vec!["tapsets"];
    all.extend_from_slice(args);
    stap_sdt(&all, Duration::from_secs(60))
}

#[test]
fn lists_installed_runtimes_and_their_events() {
    let out = tapsets(&["-l", "python"]);
    assert_eq!(out.code, Some(0), "{out:#?}");
    if Path::new("/usr/bin/python3.11").exists() {
        assert!(
            out.stdout.contains("  /usr/bin/python3.11: 8 events"),
            "{}",
            out.stdout
        );
        assert!(out
            .stdout
            .contains("python.function.entry                    python:function__entry"));
    }
    let jdk25 = "/usr/lib/jvm/temurin-25-jdk-amd64/lib/server/libjvm.so";
    if Path::new(jdk25).exists() {
        let out = tapsets(&["-l", "java", "-v"]);
        let section: Vec<&str> = out
            .stdout
            .lines()
            .skip_while(|l| !l.contains(jdk25))
            .collect();
        assert!(section[0].contains("(JDK 25 "), "{}", section[0]);
        let method = section
            .iter()
            .position(|l| l.trim_start().starts_with("hotspot.method.entry "))
            .unwrap();
        assert!(section[method].ends_with("[needs -XX:+DTraceMethodProbes]"));
        let fields: Vec<&str> = section[method + 1..method + 5]
            .iter()
            .map(|l| l.trim())
            .collect();
        assert_eq!(
            fields,
            [
                "thread       arg0  unsigned",
                "class        arg1  string, length in arg2",
                "method       arg3  string, length in arg4",
                "signature    arg5  string, length in arg6",
            ]
        );
        assert!(section
            .iter()
            .any(|l| l.trim_start().starts_with("hotspot.jni.GetVersion.entry ")));
    }
}

#[test]
fn bad_input_is_named() {
    let out = tapsets(&["-l", "ruby"]);
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr.contains("`ruby`: unknown language"),
        "{}",
        out.stderr
    );
    let out = tapsets(&["-l", "perl", "/no/such/perl"]);
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr.contains("/no/such/perl: no such file"),
        "{}",
        out.stderr
    );
    let out = stap_sdt(
        &["calls", "-l", "python", "-p", "999999999"],
        Duration::from_secs(30),
    );
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("999999999"), "{}", out.stderr);
}
