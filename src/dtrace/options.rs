//! The command line of SystemTap's `dtrace`, parsed by hand: its options
//! are not getopt-shaped (`-64`, `-Ipath` glued, `-x` with a value), and
//! build systems pass them verbatim.

use std::path::PathBuf;

pub const USAGE: &str = "\
Usage: stap-sdt dtrace [-h | -G] [-C [-I<dir>] [-D<name>[=<value>]]] -s FILE.d [-o FILE] [OBJECT...]

Generate C for the probes of a D provider file, as SystemTap's dtrace does:
  -h           write a header: PROVIDER_NAME(args) and PROVIDER_NAME_ENABLED() for
               each probe (upper case, `__` in probe names becomes `_`), backed by
               semaphores; it carries stap-sdt's sdt.h, so <sys/sdt.h> is not needed
  -G           write an object defining the semaphores (C compiled by $CC, default
               cc, with $CFLAGS, -I/-D/-U and -fPIC); OBJECTs after it are accepted
               and left unchanged (on Linux the probes are already in them)
  -s FILE      the provider file
  -o FILE      output file (default: FILE.d's base name with .h or .o)
  -C           run the C preprocessor ($CPP, default cpp) on FILE.d first
  -I<dir>, -D<name>[=<value>], -U<name>
               passed to the preprocessor (and to the compiler for -G)
  -k           keep the generated C of -G next to the output (OUTPUT.c)
  -x OPT       accepted and ignored (Solaris DTrace compiler options)
  -32, -64, -fpic, -fPIC, --no-pyparsing, --types
               accepted and ignored, for build systems that pass them
  --help       this text

Errors in FILE.d are reported as FILE:LINE:COLUMN: message (after -C, the line
markers of cpp keep these pointing at the original file).";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Header,
    Object,
}

#[derive(Debug, Default)]
pub struct Options {
    pub mode: Option<Mode>,
    pub source: Option<PathBuf>,
    pub output: Option<PathBuf>,
    pub preprocess: bool,
    /// `-I`, `-D`, `-U`, in order.
    pub preprocessor_options: Vec<String>,
    pub keep_temporaries: bool,
    pub objects: Vec<PathBuf>,
    pub help: bool,
}

/// Parse dtrace's arguments (without the program name).
pub fn parse_options(args: &[String]) -> Result<Options, String> {
    let mut options = Options::default();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value_of = |flag: &str| -> Result<String, String> {
            args.next()
                .cloned()
                .ok_or_else(|| format!("option {flag} needs a value"))
        };
        match arg.as_str() {
            "-h" | "-G" => {
                let mode = if arg == "-h" {
                    Mode::Header
                } else {
                    Mode::Object
                };
                if options.mode.is_some_and(|m| m != mode) {
                    return Err("-h and -G cannot be used together".to_string());
                }
                options.mode = Some(mode);
            }
            "-s" => options.source = Some(value_of("-s")?.into()),
            "-o" => options.output = Some(value_of("-o")?.into()),
            "-C" => options.preprocess = true,
            "-k" => options.keep_temporaries = true,
            "-x" => {
                value_of("-x")?;
            }
            "-I" | "-D" | "-U" => {
                let value = value_of(arg)?;
                options.preprocessor_options.push(format!("{arg}{value}"));
            }
            "-32" | "-64" | "-fpic" | "-fPIC" | "--no-pyparsing" => {}
            "--types" => eprintln!("stap-sdt dtrace: note: obsolete option --types ignored"),
            "--help" => options.help = true,
            _ if ["-I", "-D", "-U"].iter().any(|p| arg.starts_with(p)) => {
                options.preprocessor_options.push(arg.clone());
            }
            _ if arg.starts_with('-') && arg.len() > 1 => {
                return Err(format!(
                    "invalid option `{arg}` (see stap-sdt dtrace --help)"
                ));
            }
            _ => options.objects.push(arg.into()),
        }
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, String> {
        parse_options(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn postgres_style_command_lines() {
        let o = parse(&["-C", "-h", "-s", "probes.d", "-o", "probes.h.tmp"]).unwrap();
        assert_eq!(o.mode, Some(Mode::Header));
        assert!(o.preprocess);
        assert_eq!(o.source.unwrap().to_str(), Some("probes.d"));
        assert_eq!(o.output.unwrap().to_str(), Some("probes.h.tmp"));

        let o = parse(&[
            "-64", "-C", "-G", "-Iinc", "-D", "X=1", "-x", "nolibs", "-s", "p.d", "-o", "p.o",
            "a.o", "b.o",
        ])
        .unwrap();
        assert_eq!(o.mode, Some(Mode::Object));
        assert_eq!(o.preprocessor_options, ["-Iinc", "-DX=1"]);
        assert_eq!(o.objects.len(), 2);
    }

    #[test]
    fn unknown_options_are_named() {
        assert_eq!(
            parse(&["-h", "-q", "-s", "x.d"]).unwrap_err(),
            "invalid option `-q` (see stap-sdt dtrace --help)"
        );
        assert_eq!(parse(&["-h", "-s"]).unwrap_err(), "option -s needs a value");
        assert!(parse(&["-h", "-G"]).is_err());
    }
}
