use super::*;

fn row(frames: &[&str], n: u64) -> (Vec<String>, u64) {
    (frames.iter().map(|f| f.to_string()).collect(), n)
}

#[test]
fn folded_lines_add_up_sort_and_escape() {
    let lines = folded_lines(vec![
        row(&["main", "b"], 2),
        row(&["main", "a"], 1),
        row(&["main", "b"], 3),
        row(&["main", "x;y", "two\nlines"], 1),
        row(&["main", " "], 4),
        row(&[], 9),
        row(&["zero"], 0),
    ]);
    assert_eq!(
        lines,
        [
            "main;[unknown] 4",
            "main;a 1",
            "main;b 5",
            "main;x:y;two lines 1"
        ]
    );
}

#[test]
fn write_folded_writes_what_inferno_reads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.folded");
    let n = write_folded(&path, vec![row(&["a", "b"], 1), row(&["a"], 2)]).unwrap();
    assert_eq!(n, 2);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "a 2\na;b 1\n");
    assert!(write_folded("/nonexistent-dir/x.folded", vec![]).is_err());
}

#[test]
fn svg_names_the_functions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flame.svg");
    let rows = vec![
        row(&["<module>", "main", "parse_config"], 30),
        row(&["<module>", "main", "serve", "handle_request"], 60),
        row(&["<module>", "main", "serve"], 10),
    ];
    write_svg(&path, rows, "app.py calls").unwrap();
    let svg = std::fs::read_to_string(&path).unwrap();
    assert!(svg.starts_with("<?xml"), "{}", &svg[..100]);
    assert!(svg.contains("<svg"));
    assert!(svg.contains("app.py calls"));
    for name in [
        "&lt;module&gt;",
        "main",
        "parse_config",
        "serve",
        "handle_request",
    ] {
        assert!(
            svg.contains(&format!("<title>{name} (")),
            "{name} in the SVG"
        );
    }
    // Counts: handle_request has 60 of 100.
    assert!(svg.contains("<title>handle_request (60 samples, 60.00%)</title>"));
    assert!(write_svg(dir.path().join("empty.svg"), vec![], "t").is_err());

    let mut opts = SvgOptions::new("icicle");
    opts.count_name = "ns".into();
    opts.inverted = true;
    write_svg_with(&path, vec![row(&["f", "g"], 5)], &opts).unwrap();
    let svg = std::fs::read_to_string(&path).unwrap();
    assert!(svg.contains("<title>g (5 ns, 100.00%)</title>"), "{svg}");
}

#[test]
fn call_stacks_count_calls_per_stack() {
    let mut cs = CallStacks::new(Weight::Calls);
    // Thread 1: main → a → b, b; main → c. Thread 2: main → a.
    cs.entry(0, 1, 1, "main");
    cs.entry(1, 1, 2, "main");
    cs.entry(2, 1, 1, "a");
    cs.entry(3, 1, 2, "a");
    cs.entry(4, 1, 1, "b");
    cs.ret(5, 1, 1, Some("b"));
    cs.entry(6, 1, 1, "b");
    cs.ret(7, 1, 1, None);
    cs.ret(8, 1, 1, Some("a"));
    cs.entry(9, 1, 1, "c");
    cs.ret(10, 1, 1, Some("c"));
    cs.ret(11, 1, 1, Some("main"));
    assert_eq!(cs.open_frames(), 2);
    cs.finish(None);
    assert_eq!(cs.open_frames(), 0);
    assert_eq!(
        cs.rows(),
        [
            row(&["main"], 2),
            row(&["main", "a"], 2),
            row(&["main", "a", "b"], 2),
            row(&["main", "c"], 1),
        ]
    );
    assert_eq!(cs.unmatched_returns(), 0);
}

#[test]
fn call_stacks_count_self_time() {
    let mut cs = CallStacks::new(Weight::SelfTime);
    cs.entry(100, 1, 1, "main");
    cs.entry(110, 1, 1, "a");
    cs.entry(120, 1, 1, "b");
    cs.ret(150, 1, 1, Some("b")); // b: 30
    cs.ret(170, 1, 1, Some("a")); // a: 60 - 30 = 30
    cs.entry(200, 1, 1, "c");
    cs.ret(260, 1, 1, None); // c: 60
    cs.ret(300, 1, 1, Some("main")); // main: 200 - 60 - 60 = 80
    let rows = cs.rows();
    assert_eq!(
        rows,
        [
            row(&["main"], 80),
            row(&["main", "a"], 30),
            row(&["main", "a", "b"], 30),
            row(&["main", "c"], 60),
        ]
    );
    // Frame widths add up to the root's total time.
    assert_eq!(rows.iter().map(|r| r.1).sum::<u64>(), 200);
}

#[test]
fn call_stacks_survive_unmatched_events() {
    let mut cs = CallStacks::new(Weight::SelfTime);
    // A return before any entry (tracing began inside it): dropped.
    cs.ret(5, 1, 1, Some("started_before"));
    cs.entry(10, 1, 1, "main");
    cs.entry(20, 1, 1, "a");
    cs.entry(30, 1, 1, "lost_return");
    // A's return while lost_return is still open: lost_return ends too.
    cs.ret(50, 1, 1, Some("a"));
    // A return naming a function not open: dropped.
    cs.ret(55, 1, 1, Some("lost_return"));
    cs.entry(60, 1, 1, "open_at_end");
    cs.finish(Some(100));
    assert_eq!(cs.unmatched_returns(), 2);
    assert_eq!(
        cs.rows(),
        [
            row(&["main"], 20),
            row(&["main", "a"], 10),
            row(&["main", "a", "lost_return"], 20),
            row(&["main", "open_at_end"], 40),
        ]
    );
    // Returns on a thread never seen are dropped as well.
    cs.ret(200, 9, 9, None);
    assert_eq!(cs.unmatched_returns(), 3);
}
