//! `stap-sdt tapsets`: the runtimes installed here, whether they carry
//! probes, and the named events each offers.

use clap::Args;
use lang_bindings::{discover, jdk::Jdk, tracer::probe_def, Decode, ProbeDef, Runtime};
use std::io::Write;
use std::process::ExitCode;

#[derive(Args, Debug)]
#[command(after_help = "\
Looks at python3* and libpython3*, /usr/lib/jvm/*/lib/server/libjvm.so (and $JAVA_HOME), \
perl* and libperl.so*, or at the files given.

Examples:
  stap-sdt tapsets
  stap-sdt tapsets -l java -v
  stap-sdt tapsets -l perl ./my-perl-build/perl")]
pub struct TapsetsArgs {
    /// Only this runtime: python, java or perl.
    #[arg(short = 'l', long = "language", value_name = "LANG")]
    language: Option<String>,

    /// Show each event's fields, and every HotSpot JNI event.
    #[arg(short = 'v', long)]
    verbose: bool,

    /// Files to examine instead of the installed runtimes (needs -l).
    #[arg(value_name = "PATH", requires = "language")]
    paths: Vec<std::path::PathBuf>,
}

impl TapsetsArgs {
    /// Every installed runtime, events without their fields (`list --tapsets`).
    pub fn installed() -> TapsetsArgs {
        TapsetsArgs {
            language: None,
            verbose: false,
            paths: Vec::new(),
        }
    }
}

fn describe(decode: Decode, def: &ProbeDef) -> String {
    match decode {
        Decode::CStr => "string".into(),
        Decode::LenStr { len } => format!(
            "string, length in {}",
            def.fields
                .iter()
                .find(|f| f.arg == len)
                .map_or(format!("arg{len}"), |f| f.name.to_string())
        ),
        Decode::Signed => "signed".into(),
        Decode::Unsigned => "unsigned".into(),
        Decode::Pointer => "address".into(),
        Decode::Bool => "bool".into(),
    }
}

fn print_object(
    out: &mut impl Write,
    runtime: Runtime,
    object: &lang_bindings::RuntimeObject,
    verbose: bool,
) -> std::io::Result<()> {
    let mut defs: Vec<ProbeDef> = object
        .probes()
        .filter_map(|(provider, name, nargs)| probe_def(runtime, provider, name, nargs))
        .collect();
    defs.sort_by(|a, b| a.event.cmp(&b.event));
    defs.dedup_by(|a, b| a.event == b.event);
    let jdk = (runtime == Runtime::Java).then(|| Jdk::for_libjvm(&object.path));
    let version = jdk
        .as_ref()
        .map(|j| format!(" ({})", j.describe()))
        .unwrap_or_default();
    writeln!(
        out,
        "  {}{version}: {} events",
        object.path.display(),
        defs.len()
    )?;
    let jni = defs.iter().filter(|d| d.provider == "hotspot_jni").count();
    for def in &defs {
        if def.provider == "hotspot_jni" && !verbose {
            continue;
        }
        let gate = match (def.gate, &jdk) {
            (Some(gate), Some(jdk)) => format!("  [needs {}]", jdk.flag(gate)),
            _ => String::new(),
        };
        writeln!(
            out,
            "    {:<40} {}:{}{gate}",
            def.event, def.provider, def.probe
        )?;
        if verbose {
            for f in def.fields.iter().filter(|f| {
                !def.fields
                    .iter()
                    .any(|o| matches!(o.decode, Decode::LenStr { len } if len == f.arg))
            }) {
                writeln!(
                    out,
                    "        {:<12} arg{:<2} {}",
                    f.name,
                    f.arg,
                    describe(f.decode, def)
                )?;
            }
        }
    }
    if jni > 0 && !verbose {
        writeln!(
            out,
            "    hotspot.jni.FUNCTION.entry/.return     {jni} events (-v lists them)"
        )?;
    }
    Ok(())
}

fn installed(args: &TapsetsArgs, runtime: Runtime) -> Result<Vec<discover::Installed>, String> {
    if args.paths.is_empty() {
        return Ok(discover::installed(runtime));
    }
    args.paths
        .iter()
        .map(|p| {
            if !p.exists() {
                return Err(format!("{}: no such file", p.display()));
            }
            Ok(discover::Installed {
                path: p.clone(),
                object: discover::object_at(runtime, p),
            })
        })
        .collect()
}

fn print_runtime(
    out: &mut impl Write,
    runtime: Runtime,
    found: &[discover::Installed],
    verbose: bool,
) -> std::io::Result<()> {
    writeln!(out, "{runtime}")?;
    if found.is_empty() {
        writeln!(out, "  (not installed)")?;
    }
    for installed in found {
        match &installed.object {
            Some(object) => print_object(out, runtime, object, verbose)?,
            None => writeln!(
                out,
                "  {}: no {runtime} probes (built without SDT support)",
                installed.path.display()
            )?,
        }
    }
    Ok(())
}

pub fn run(args: TapsetsArgs) -> Result<ExitCode, String> {
    let runtimes = match &args.language {
        Some(l) => vec![Runtime::from_name(l)?],
        None => Runtime::ALL.to_vec(),
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for runtime in runtimes {
        let found = installed(&args, runtime)?;
        // A closed stdout (`| head`) ends the listing quietly.
        if print_runtime(&mut out, runtime, &found, args.verbose)
            .and_then(|()| out.flush())
            .is_err()
        {
            break;
        }
    }
    Ok(ExitCode::SUCCESS)
}
