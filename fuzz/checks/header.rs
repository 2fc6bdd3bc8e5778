//! Properties of the D provider file parser (`sdt-header`), shared by the
//! `provider` fuzz target and `sdt-header/tests/fuzz_regressions.rs`.

use sdt_header::{generate_header, generate_semaphores_source, parse, types_notes_asm};

/// - an error points into the file: the file's own name, a line that
///   exists (when no `#` line marker renamed or renumbered it);
/// - a parsed file prints back to D text that parses to the same
///   providers, probes and argument types;
/// - the generators take every parsed file, and the header defines a
///   macro for every probe.
pub fn provider_file(data: &[u8]) {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    let file = match parse(source, "fuzz.d") {
        Ok(file) => file,
        Err(e) => {
            if !source.contains('#') {
                assert_eq!(e.position.file, "fuzz.d");
                let lines = source.split('\n').count() as u32;
                assert!(
                    (1..=lines).contains(&e.position.line) && e.position.column >= 1,
                    "{e} is outside the {lines} lines"
                );
            }
            return;
        }
    };
    let printed = print(&file);
    let again = parse(&printed, "printed.d")
        .unwrap_or_else(|e| panic!("printed file does not parse: {e}\n{printed}"));
    let shape = |f: &sdt_header::ProviderFile| {
        f.providers
            .iter()
            .map(|p| {
                let probes: Vec<(String, Vec<String>)> = p
                    .probes
                    .iter()
                    .map(|d| (d.name.clone(), d.args.clone()))
                    .collect();
                (p.name.clone(), probes)
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(shape(&again), shape(&file), "printed as\n{printed}");

    let header = generate_header(&file, "fuzz.d");
    for provider in &file.providers {
        for probe in &provider.probes {
            assert!(probe.args.len() <= sdt_header::MAX_ARGS);
            let name = provider.macro_name(probe);
            assert!(header.contains(&format!("#define {name}(")), "{name}");
        }
    }
    let _ = types_notes_asm(&file);
    let _ = generate_semaphores_source(&file, "fuzz.d");
}

/// D text of a parsed file, one probe per line.
fn print(file: &sdt_header::ProviderFile) -> String {
    let mut out = String::new();
    for provider in &file.providers {
        out.push_str(&format!("provider {} {{\n", provider.name));
        for probe in &provider.probes {
            out.push_str(&format!(
                "  probe {}({});\n",
                probe.name,
                probe.args.join(", ")
            ));
        }
        out.push_str("};\n");
    }
    out
}
