//! The HotSpot tapset on OpenJDK 17 and Temurin 25: method names, classes
//! and signatures decoded exactly (pointer + length strings cut to their
//! length), the flags that wake the gated probes, class loading events.
//!
//! libjvm.so cannot be copied per test (the JVM finds its install tree
//! from it), so tests share its inode. Each tracer is scoped with -c to its
//! own JVM (perf events filter by task), so parallel tests do not see each
//! other's methods; HotSpot's probes have no semaphores to disturb.

mod lang_support;

use lang_support::*;
use std::path::{Path, PathBuf};
use std::time::Duration;
use test_support::Scratch;

const JDK17: &str = "/usr/lib/jvm/java-17-openjdk-amd64";
const JDK25: &str = "/usr/lib/jvm/temurin-25-jdk-amd64";

/// leaf 12 times, twice 3 times, main once; an overload of twice that is
/// never called, so signatures must tell them apart.
const SOURCE: &str = r#"
public class Probed {
    static int leaf(int x) { return x * 2; }
    static long twice(String s, int n) {
        long t = 0;
        for (int i = 0; i < n; i++) t += leaf(i);
        return t + s.length();
    }
    static long twice(long never) { return never; }
    public static void main(String[] args) {
        long t = 0;
        for (int i = 0; i < 3; i++) t += twice("abc", 4);
        System.out.println(t);
    }
}
"#;

fn jdk(test: &str, home: &str) -> Option<PathBuf> {
    let java = Path::new(home).join("bin/java");
    if !java.exists() {
        test_support::skip(test, &format!("{} is not installed", java.display()));
        return None;
    }
    prerequisites(test).then_some(java)
}

/// Compile the class with JDK 17's javac (class file 61 runs on both).
fn compile(test: &str, scratch: &Scratch) -> Option<()> {
    let javac = Path::new(JDK17).join("bin/javac");
    if !javac.exists() {
        test_support::skip(test, "javac (openjdk-17-jdk-headless) is not installed");
        return None;
    }
    let source = scratch.write("Probed.java", SOURCE);
    let out = test_support::run(
        std::process::Command::new(javac)
            .arg("-d")
            .arg(scratch.path())
            .arg(source),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(())
}

/// The JDK's `java` and a scratch directory holding the compiled class.
fn prepared(test: &str, home: &str) -> Option<(PathBuf, Scratch)> {
    let java = jdk(test, home)?;
    let scratch = Scratch::new();
    compile(test, &scratch)?;
    Some((java, scratch))
}

fn calls(java: &Path, flags: &str, scratch: &Scratch) -> Output {
    let command = format!(
        "{} {flags} -Xint -cp {} Probed",
        java.display(),
        scratch.path().display()
    );
    stap_sdt(
        &["calls", "-l", "java", "-c", &command],
        Duration::from_secs(120),
    )
}

fn check_exact_calls(out: &Output) {
    assert_eq!(out.code, Some(0), "{out:#?}");
    assert!(out.stdout.contains("Probed."), "{out:#?}");
    assert_eq!(
        calls_of(&out.stdout, "Probed.leaf(I)I"),
        12,
        "{}",
        out.stdout
    );
    assert_eq!(
        calls_of(&out.stdout, "Probed.twice(Ljava/lang/String;I)J"),
        3
    );
    assert_eq!(calls_of(&out.stdout, "Probed.twice(J)J"), 0);
    assert_eq!(
        calls_of(&out.stdout, "Probed.main([Ljava/lang/String;)V"),
        1
    );
    // Nothing past a length: every Probed row is one of those three.
    let probed: Vec<_> = call_rows(&out.stdout)
        .into_iter()
        .filter(|(n, _)| n.starts_with("Probed."))
        .collect();
    assert_eq!(probed.len(), 3, "{probed:?}");
}

#[test]
fn jdk17_methods_with_extended_probes() {
    let test = "jdk17_methods_with_extended_probes";
    let Some((java, scratch)) = prepared(test, JDK17) else {
        return;
    };
    let out = calls(&java, "-XX:+ExtendedDTraceProbes", &scratch);
    check_exact_calls(&out);
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
}

#[test]
fn jdk25_methods_with_method_probes() {
    let test = "jdk25_methods_with_method_probes";
    let Some((java, scratch)) = prepared(test, JDK25) else {
        return;
    };
    check_exact_calls(&calls(&java, "-XX:+DTraceMethodProbes", &scratch));
}

#[test]
fn dormant_probes_name_the_flag_for_each_jdk() {
    let test = "dormant_probes_name_the_flag_for_each_jdk";
    let (Some((java17, scratch)), Some(java25)) = (prepared(test, JDK17), jdk(test, JDK25)) else {
        return;
    };
    let out = calls(&java17, "", &scratch);
    assert_eq!(out.code, Some(0), "{out:#?}");
    assert_eq!(calls_of(&out.stdout, "Probed.leaf(I)I"), 0);
    assert!(
        out.stderr
            .contains("no hits on hotspot.method.entry: HotSpot fires these probes only when the JVM is started with -XX:+ExtendedDTraceProbes"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("JDK 17"), "{}", out.stderr);
    let out = calls(&java25, "", &scratch);
    assert!(
        out.stderr.contains("with -XX:+DTraceMethodProbes (JDK 25"),
        "{}",
        out.stderr
    );
    // JDK 25 refuses the old flag: the advice must not offer it.
    assert!(
        !out.stderr.contains("ExtendedDTraceProbes"),
        "{}",
        out.stderr
    );
}

#[test]
fn flow_and_class_events_decode_exactly() {
    let test = "flow_and_class_events_decode_exactly";
    let Some((java, scratch)) = prepared(test, JDK25) else {
        return;
    };
    let command = format!(
        "{} -XX:+DTraceMethodProbes -Xint -cp {} Probed",
        java.display(),
        scratch.path().display()
    );
    let flow = stap_sdt(
        &["flow", "-l", "java", "-c", &command, "--filter", "Probed."],
        Duration::from_secs(120),
    );
    assert_eq!(flow.code, Some(0), "{flow:#?}");
    let lines = flow_lines(&flow.stdout, "Probed.");
    let main = "Probed.main([Ljava/lang/String;)V";
    let twice = "Probed.twice(Ljava/lang/String;I)J";
    let leaf = "Probed.leaf(I)I";
    let mut expected = vec![format!("-> {main}")];
    for _ in 0..3 {
        expected.push(format!("  -> {twice}"));
        for _ in 0..4 {
            expected.push(format!("    -> {leaf}"));
            expected.push(format!("    <- {leaf}"));
        }
        expected.push(format!("  <- {twice}"));
    }
    expected.push(format!("<- {main}"));
    assert_eq!(lines, expected, "{}", flow.stdout);

    let events = events(
        "java",
        &command,
        true,
        &[
            "hotspot.class.loaded",
            "hotspot.vm.*",
            "hotspot.thread.start",
        ],
    );
    let parsed: Vec<serde_json::Value> = json_events(&events.stdout);
    let loaded: Vec<&serde_json::Value> = parsed
        .iter()
        .filter(|e| e["event"] == "hotspot.class.loaded" && e["fields"]["class"] == "Probed")
        .collect();
    assert_eq!(loaded.len(), 1, "{events:#?}");
    assert_eq!(loaded[0]["fields"]["shared"], false);
    // Class names are spelled as in the calls and flow views (issue 12):
    // java.lang.String, never java/lang/String.
    let classes: Vec<&str> = parsed
        .iter()
        .filter_map(|e| e["fields"]["class"].as_str())
        .collect();
    assert!(
        classes.iter().any(|c| c.starts_with("java.")),
        "{classes:?}"
    );
    assert!(!classes.iter().any(|c| c.contains('/')), "{classes:?}");
    for name in [
        "hotspot.vm.init.begin",
        "hotspot.vm.init.end",
        "hotspot.vm.shutdown",
    ] {
        assert!(
            parsed.iter().any(|e| e["event"] == name),
            "{name}: {events:#?}"
        );
    }
    assert!(parsed
        .iter()
        .any(|e| e["event"] == "hotspot.thread.start" && e["fields"]["name"] == "Finalizer"));
}

#[test]
fn jni_probes_are_named_events() {
    let test = "jni_probes_are_named_events";
    let Some((java, scratch)) = prepared(test, JDK17) else {
        return;
    };
    let command = format!("{} -cp {} Probed", java.display(), scratch.path().display());
    // The launcher runs main() through JNI: CallStaticVoidMethod, once.
    let out = events(
        "java",
        &command,
        true,
        &[
            "hotspot.jni.CallStaticVoidMethod.*",
            "hotspot.jni.GetStaticMethodID.entry",
        ],
    );
    assert_eq!(out.code, Some(0), "{out:#?}");
    let events: Vec<serde_json::Value> = json_events(&out.stdout);
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .filter(|n| n.starts_with("hotspot.jni.CallStaticVoidMethod"))
        .collect();
    assert_eq!(
        names,
        [
            "hotspot.jni.CallStaticVoidMethod.entry",
            "hotspot.jni.CallStaticVoidMethod.return"
        ],
        "{out:#?}"
    );
    let entry = events
        .iter()
        .find(|e| e["event"] == "hotspot.jni.GetStaticMethodID.entry")
        .expect("GetStaticMethodID");
    // JNIEnv*, jclass, name, signature.
    assert_eq!(entry["fields"].as_object().unwrap().len(), 4, "{entry}");
}

const ALLOC_SOURCE: &str = r#"
public class Alloc {
    int v;
    public static void main(String[] args) throws Exception {
        Alloc a = new Alloc();
        Alloc b = new Alloc();
        synchronized (a) { a.wait(5); }
        System.out.println(a.v + b.v);
    }
}
"#;

#[test]
fn allocation_and_monitor_probes_with_their_flags() {
    let test = "allocation_and_monitor_probes_with_their_flags";
    let Some((java, scratch)) = prepared(test, JDK25) else {
        return;
    };
    let source = scratch.write("Alloc.java", ALLOC_SOURCE);
    let javac = Path::new(JDK17).join("bin/javac");
    let built = test_support::run(
        std::process::Command::new(javac)
            .arg("-d")
            .arg(scratch.path())
            .arg(source),
    );
    assert!(built.status.success());
    let command = format!(
        "{} -XX:+DTraceAllocProbes -XX:+DTraceMonitorProbes -Xint -cp {} Alloc",
        java.display(),
        scratch.path().display()
    );
    let out = events(
        "java",
        &command,
        false,
        &["hotspot.object.alloc", "hotspot.monitor.wait*"],
    );
    assert_eq!(out.code, Some(0), "{out:#?}");
    let mine = |event: &str| -> Vec<String> {
        out.stdout
            .lines()
            .filter(|l| l.contains(&format!(" {event} ")) && l.contains("class=\"Alloc\""))
            .map(|l| l.split_once(event).unwrap().1.trim().to_string())
            .map(|fields| {
                // Thread ids and monitor addresses vary: keep class and the rest.
                fields
                    .split(' ')
                    .filter(|f| !f.starts_with("thread=") && !f.starts_with("monitor="))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    };
    assert_eq!(
        mine("hotspot.object.alloc"),
        [r#"class="Alloc" size=16"#, r#"class="Alloc" size=16"#],
        "{}",
        out.stdout
    );
    assert_eq!(mine("hotspot.monitor.wait"), [r#"class="Alloc" timeout=5"#]);
    assert_eq!(mine("hotspot.monitor.waited"), [r#"class="Alloc""#]);
}

/// Ctrl-C as soon as the hundreds of JNI probe locations are attached (a
/// few links, milliseconds): the view ends and releases everything.
#[test]
fn sigint_while_attaching_stops_the_view() {
    let test = "sigint_while_attaching_stops_the_view";
    let Some(java) = jdk(test, JDK17) else {
        return;
    };
    let mut child = std::process::Command::new(BIN)
        .args(["events", "-l", "java", "-c"])
        .arg(format!("{} -version", java.display()))
        .arg("hotspot.jni.*")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stderr = child.stderr.take().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while test_support::uprobe_multi_links(pid).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "no uprobe links appeared"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    test_support::bounded::signal_pid(pid, libc::SIGINT);
    let status =
        test_support::bounded::wait_within(&mut child, Duration::from_secs(120), "stap-sdt events");
    let mut text = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut text).unwrap();
    // Interrupted while attaching, or (the usual case now) right after.
    assert!(
        text.contains("interrupted while attaching") || status.success(),
        "{text}"
    );
    assert_no_events_of(pid);
}
