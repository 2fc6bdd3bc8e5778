//! `stap-sdt list`: find probes in files, directories and processes.

mod human;
mod inputs;

use crate::status::{Failure, Status};
use clap::Args;
use serde::Serialize;
use stapsdt_reader::filter::ProbeSelector;
use stapsdt_reader::{Object, ReadOptions};
use std::io::{BufWriter, Write};
use std::process::ExitCode;

#[derive(Args, Debug)]
#[command(after_help = "\
Arguments that are not existing files and contain `:`, `*` or `?` are probe \
selectors: PROVIDER:NAME with shell globs (`python:function__*`, `*:*start`), \
or a lone NAME glob. With --regex they are regular expressions matched against \
`PROVIDER:NAME`.

Directories are searched recursively; files that are not ELF objects or archives \
are skipped silently, broken ELF files are reported and skipped. The exit status \
is 0 if anything could be read, 1 if nothing could.

JSON (--json) schema `stap-sdt.list/1`: {schema, objects:[{path, arch, bits, endian, \
elf_type, build_id, stapsdt_base, pid?, load_bias?, diagnostics, probes:[{provider, \
name, locations:[{address, file_offset, note_base, semaphore:{address, file_offset, \
runtime_address?}|null, args_raw, args:[{raw, size, signed, float, operand}], \
runtime_address?, source?}]}]}], errors:[{input, message}]}. An operand is \
{kind:\"register\", register:{name, canonical, dwarf, bits, shift}}, \
{kind:\"immediate\", value}, {kind:\"memory\", base, index, scale, disp, symbol, \
symbol_address, symbol_file_offset, got_address? (i386 sym@GOTOFF)} or \
{kind:\"unparsed\", reason}. See the README for details.")]
pub struct ListArgs {
    /// ELF files, static archives or directories to read, then optional probe selectors.
    #[arg(value_name = "PATH|SELECTOR")]
    inputs: Vec<String>,

    /// List the probes of every object mapped by this process, with run-time addresses.
    #[arg(short = 'p', long = "pid", value_name = "PID")]
    pids: Vec<u32>,

    /// Decode each argument: size, signedness, float, and the operand.
    #[arg(short = 'v', long = "args", visible_alias = "verbose")]
    verbose: bool,

    /// Print one JSON document (schema `stap-sdt.list/1`) instead of text.
    #[arg(long)]
    json: bool,

    /// Treat selectors as regular expressions on `PROVIDER:NAME`.
    #[arg(long)]
    regex: bool,

    /// Show the source file and line of each location (DWARF, also separate debug files).
    #[arg(long)]
    source: bool,

    /// Show the runtimes installed here (Python, Java, Perl) and the named events
    /// their probes offer (the same as `stap-sdt tapsets`).
    #[arg(long, conflicts_with_all = ["inputs", "pids", "json", "regex", "source"])]
    tapsets: bool,
}

/// How probes are chosen.
enum Selection {
    All,
    Globs(Vec<ProbeSelector>),
    Regexes(Vec<regex::Regex>),
}

impl Selection {
    fn matches(&self, provider: &str, name: &str) -> bool {
        match self {
            Selection::All => true,
            Selection::Globs(globs) => globs.iter().any(|g| g.matches(provider, name)),
            Selection::Regexes(res) => {
                let full = format!("{provider}:{name}");
                res.iter().any(|r| r.is_match(&full))
            }
        }
    }
}

#[derive(Serialize)]
struct Report<'a> {
    schema: &'static str,
    objects: &'a [Object],
    errors: Vec<ErrorEntry>,
}

#[derive(Serialize)]
struct ErrorEntry {
    input: String,
    message: String,
}

pub fn run(args: ListArgs) -> Result<ExitCode, Failure> {
    if args.tapsets {
        return crate::runtime::tapsets::run(crate::runtime::tapsets::TapsetsArgs::installed())
            .map_err(Into::into);
    }
    let (paths, selector_texts) = inputs::split_paths_and_selectors(&args.inputs);
    if paths.is_empty() && args.pids.is_empty() {
        return Err(
            "list: nothing to read: give a PATH (file, archive or directory) or -p PID".into(),
        );
    }
    let selection = build_selection(&selector_texts, args.regex)?;
    let options = ReadOptions {
        source_lines: args.source,
    };
    let mut found = inputs::read_all(&paths, &args.pids, &options);
    // Before selection: the names a misspelled selector may have meant.
    let all_names =
        (!selector_texts.is_empty()).then(|| crate::suggest::probe_names(&found.objects));
    let carried_probes = found.objects.iter().any(|o| !o.probes.is_empty());
    for object in &mut found.objects {
        object
            .probes
            .retain(|p| selection.matches(&p.provider, &p.name));
    }
    // Directory scans and filters only show objects that have something to show.
    found.objects.retain(|o| {
        !o.probes.is_empty() || !o.diagnostics.is_empty() || found.explicit.contains(&o.path)
    });

    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 14, stdout.lock());
    for error in &found.errors {
        eprintln!("stap-sdt: {error}");
    }
    let written = if args.json {
        let report = Report {
            schema: "stap-sdt.list/1",
            objects: &found.objects,
            errors: found
                .errors
                .iter()
                .map(|e| ErrorEntry {
                    input: e.input.clone(),
                    message: e.message.clone(),
                })
                .collect(),
        };
        serde_json::to_writer(&mut out, &report)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out))
    } else {
        human::write(&mut out, &found.objects, args.verbose)
    };
    if let Err(e) = written.and_then(|()| out.flush()) {
        return Err(Failure::new(
            Status::Output,
            format!("writing to standard output: {e}"),
        ));
    }
    drop(out);
    let matched = found.objects.iter().any(|o| !o.probes.is_empty());
    let mut code = if found.read_any {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(Status::NoMatch as u8)
    };
    if found.read_any && !matched {
        // Say why the listing is empty, and what was probably meant.
        if !carried_probes {
            for dir in paths.iter().filter(|p| std::path::Path::new(p).is_dir()) {
                eprintln!("stap-sdt: no file under {dir} carries SDT probes");
            }
        }
        if let Some(names) = &all_names {
            for text in &selector_texts {
                let hint = crate::suggest::hint(text, names)
                    .map(|h| format!("; {h}"))
                    .unwrap_or_default();
                eprintln!("stap-sdt: no probe matches `{text}`{hint}");
            }
            code = ExitCode::from(Status::NoMatch as u8);
        }
    }
    // The process ends now: freeing thousands of small strings one by one
    // would only add to the time of a listing.
    std::mem::forget(found);
    Ok(code)
}

fn build_selection(texts: &[String], regex: bool) -> Result<Selection, String> {
    if texts.is_empty() {
        return Ok(Selection::All);
    }
    if regex {
        return texts
            .iter()
            .map(|t| regex::Regex::new(t).map_err(|e| format!("bad --regex `{t}`: {e}")))
            .collect::<Result<_, _>>()
            .map(Selection::Regexes);
    }
    texts
        .iter()
        .map(|t| ProbeSelector::parse(t))
        .collect::<Result<_, _>>()
        .map(Selection::Globs)
}
