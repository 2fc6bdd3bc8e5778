//! Source file and line of probe sites, from DWARF line tables in the object
//! or in a separate debug file (found by build-id or `.gnu_debuglink`).

use crate::Object;
use object::{Object as _, ObjectSection};
use serde::Serialize;
use std::borrow::Cow;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceLine {
    pub file: String,
    pub line: u32,
}

/// Where separate debug files are looked for, besides the object's own directory.
pub fn debug_roots() -> Vec<PathBuf> {
    match std::env::var_os("STAP_SDT_DEBUG_DIRS") {
        Some(dirs) => std::env::split_paths(&dirs).collect(),
        None => vec![PathBuf::from("/usr/lib/debug")],
    }
}

/// Set `source` on every location that a line table covers.
pub(crate) fn annotate(object: &mut Object, data: &[u8], path: &Path) {
    if object.probes.is_empty() || object.path.ends_with(')') {
        return;
    }
    let Ok(file) = object::File::parse(data) else {
        return;
    };
    if has_lines(&file) {
        fill(object, &file);
        return;
    }
    let Some(debug_path) = find_debug_file(&file, path, object.build_id.as_deref()) else {
        object.diagnostics.push(
            "no DWARF line information (install the -dbgsym package or build with -g)".to_string(),
        );
        return;
    };
    let Ok(bytes) = std::fs::read(&debug_path) else {
        return;
    };
    match object::File::parse(&bytes[..]) {
        Ok(debug) if has_lines(&debug) => fill(object, &debug),
        _ => object.diagnostics.push(format!(
            "{}: no usable DWARF line information",
            debug_path.display()
        )),
    }
}

fn has_lines(file: &object::File<'_>) -> bool {
    file.section_by_name(".debug_line").is_some()
}

/// Look every location up in the line tables of `file`.
fn fill(object: &mut Object, file: &object::File<'_>) {
    let endian = if file.is_little_endian() {
        gimli::RunTimeEndian::Little
    } else {
        gimli::RunTimeEndian::Big
    };
    // Sections are owned here (compressed ones are inflated), and the
    // line-table context borrows them for the duration of the lookups.
    let load = |id: gimli::SectionId| -> Result<Cow<'_, [u8]>, gimli::Error> {
        Ok(file
            .section_by_name(id.name())
            .and_then(|s| s.uncompressed_data().ok())
            .unwrap_or(Cow::Borrowed(&[])))
    };
    let Ok(sections) = gimli::DwarfSections::load(load) else {
        return;
    };
    let dwarf = sections.borrow(|s| gimli::EndianSlice::new(s, endian));
    let Ok(context) = addr2line::Context::from_dwarf(dwarf) else {
        object
            .diagnostics
            .push("DWARF could not be parsed".to_string());
        return;
    };
    for location in object
        .probes
        .iter_mut()
        .flat_map(|p| p.locations.iter_mut())
    {
        if let Some((file, line)) = user_line(&context, location.address) {
            location.source = Some(SourceLine { file, line });
        }
    }
}

/// The source line of a probe site. A site made by `sdt-macros`' `probe!`
/// lies in functions of that crate inlined into the user's code, and its
/// innermost line is in `sdt-macros/src/…`: the first frame outside the
/// crate (the inlined call's site) is the line the user wrote.
fn user_line<R: gimli::Reader>(
    context: &addr2line::Context<R>,
    address: u64,
) -> Option<(String, u32)> {
    let innermost = context.find_location(address).ok()??;
    let line_of = |loc: &addr2line::Location| Some((loc.file?.to_string(), loc.line?));
    let first = line_of(&innermost)?;
    if !in_sdt_macros(&first.0) {
        return Some(first);
    }
    let mut frames = context.find_frames(address).skip_all_loads().ok()?;
    while let Ok(Some(frame)) = frames.next() {
        if let Some(found) = frame.location.as_ref().and_then(line_of) {
            if !in_sdt_macros(&found.0) {
                return Some(found);
            }
        }
    }
    Some(first)
}

/// A file of the `sdt-macros` crate (a path dependency, or a registry copy
/// such as `sdt-macros-0.1.0/src/`).
fn in_sdt_macros(file: &str) -> bool {
    let mut parts = Path::new(file).components().rev();
    let _file = parts.next();
    matches!(
        (parts.next(), parts.next()),
        (Some(src), Some(krate))
            if src.as_os_str() == "src"
                && krate.as_os_str().to_str().is_some_and(|k| k == "sdt-macros" || k.starts_with("sdt-macros-"))
    )
}

fn find_debug_file(
    file: &object::File<'_>,
    path: &Path,
    build_id: Option<&str>,
) -> Option<PathBuf> {
    let roots = debug_roots();
    if let Some(id) = build_id.filter(|id| id.len() > 2) {
        for root in &roots {
            let candidate = root
                .join(".build-id")
                .join(&id[..2])
                .join(format!("{}.debug", &id[2..]));
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    let (name, _crc) = file.gnu_debuglink().ok()??;
    let name = std::str::from_utf8(name).ok()?;
    let dir = path.parent().unwrap_or(Path::new("/"));
    let absolute_dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mut candidates = vec![dir.join(name), dir.join(".debug").join(name)];
    for root in &roots {
        candidates.push(
            root.join(absolute_dir.strip_prefix("/").unwrap_or(&absolute_dir))
                .join(name),
        );
    }
    candidates
        .into_iter()
        .find(|c| c.is_file() && c.as_path() != path)
}
