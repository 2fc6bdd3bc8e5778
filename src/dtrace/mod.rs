//! `stap-sdt dtrace`: SystemTap's `dtrace -h` / `dtrace -G`, for build
//! systems (PostgreSQL, CPython, ...) configured `--with-dtrace`.

mod options;

use clap::Args;
use options::{parse_options, Mode, Options, USAGE};
use sdt_header::{generate_header, generate_semaphores_source, parse, CompilerInvocation};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args, Debug)]
#[command(disable_help_flag = true)]
pub struct DtraceArgs {
    /// SystemTap dtrace options: -h | -G, -s FILE, -o FILE, -C, -I, -D, ... (see --help).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    args: Vec<String>,
}

pub fn run(args: DtraceArgs) -> Result<ExitCode, String> {
    let options = parse_options(&args.args)?;
    if options.help {
        println!("{USAGE}");
        return Ok(ExitCode::SUCCESS);
    }
    let Some(mode) = options.mode else {
        return Err(format!("dtrace: give -h or -G\n{USAGE}"));
    };
    let Some(source) = options.source.clone() else {
        return Err("dtrace: give the provider file with -s FILE".to_string());
    };
    if mode == Mode::Header && !options.objects.is_empty() {
        return Err(format!(
            "dtrace: unexpected argument `{}` (object files go after -G)",
            options.objects[0].display()
        ));
    }
    for object in &options.objects {
        if !object.is_file() {
            return Err(format!("dtrace: {}: no such object file", object.display()));
        }
    }
    let text = if options.preprocess {
        sdt_header::cpp::preprocess(&source, &options.preprocessor_options)?
    } else {
        std::fs::read_to_string(&source)
            .map_err(|e| format!("dtrace: cannot read {}: {e}", source.display()))?
    };
    let name = source.display().to_string();
    let file = parse(&text, &name).map_err(|e| e.to_string())?;
    let output = output_path(&options, &source, mode);
    match mode {
        Mode::Header => std::fs::write(&output, generate_header(&file, &name))
            .map_err(|e| format!("dtrace: cannot write {}: {e}", output.display()))?,
        Mode::Object => {
            let c = generate_semaphores_source(&file, &name);
            if options.keep_temporaries {
                let kept = PathBuf::from(format!("{}.c", output.display()));
                std::fs::write(&kept, &c)
                    .map_err(|e| format!("dtrace: cannot write {}: {e}", kept.display()))?;
                eprintln!("source: {}", kept.display());
            }
            CompilerInvocation::from_env(options.preprocessor_options.clone())
                .compile(&c, &output)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `-o FILE`, or the source's base name with `.h`/`.o` in the current
/// directory (SystemTap's default).
fn output_path(options: &Options, source: &Path, mode: Mode) -> PathBuf {
    if let Some(output) = &options.output {
        return output.clone();
    }
    let stem = source.file_stem().unwrap_or(source.as_os_str());
    let mut name = PathBuf::from(stem);
    name.set_extension(if mode == Mode::Header { "h" } else { "o" });
    name
}
