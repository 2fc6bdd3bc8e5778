//! The types note: what each argument of a probe is, written by our
//! emitters (`sdt-macros`, `stap-sdt dtrace -G`) next to the probe notes.
//!
//! - section `.note.stapsdt.types`, `SHT_NOTE`, not allocated (no
//!   relocations, nothing a running program needs);
//! - owner `stap-sdt`, type [`NT_STAPSDT_TYPES`] (`0x7473`);
//! - desc: provider NUL, name NUL, types NUL, where types is the words
//!   `int str strptr strlen float` separated by spaces, one per argument
//!   (see [`super::parse_type_list`]); padding after the last NUL is
//!   allowed, as the note format pads the desc to 4 bytes.
//!
//! Why not owner `stapsdt`: GNU readelf (2.40) prints every note whose
//! owner starts with `stapsdt`, whatever its type and section, as a probe
//! descriptor, and calls a short one corrupt (exit status 1). A section of
//! its own keeps the note out of the way of GDB, libbpf/bpftrace, bcc and
//! perf, which read `.note.stapsdt` only.
//!
//! One note per probe is enough; an emitter may write one per site (the
//! reader merges identical ones).

use super::{parse_type_list, ArgType};

/// Name of the section that holds types notes.
pub const TYPES_SECTION: &str = ".note.stapsdt.types";
/// Owner name of types notes.
pub const TYPES_OWNER: &[u8] = b"stap-sdt";
/// Note type of a types note: `'t' << 8 | 's'`.
pub const NT_STAPSDT_TYPES: u32 = 0x7473;

/// One decoded types note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypesNote<'data> {
    pub provider: &'data str,
    pub name: &'data str,
    pub types: Vec<ArgType>,
}

/// Decode a types note's descriptor.
pub fn decode(desc: &[u8]) -> Result<TypesNote<'_>, String> {
    let mut rest = desc;
    let provider = take(&mut rest, "provider")?;
    let name = take(&mut rest, "probe name")?;
    let text = take(&mut rest, "type list")?;
    if provider.is_empty() || name.is_empty() {
        return Err("empty provider or probe name".to_string());
    }
    if rest.iter().any(|&b| b != 0) {
        return Err(format!(
            "{} bytes after the type list are not padding",
            rest.len()
        ));
    }
    Ok(TypesNote {
        provider,
        name,
        types: parse_type_list(text)?,
    })
}

/// Encode a descriptor (no padding): what the emitters write.
pub fn encode(provider: &str, name: &str, types: &[ArgType]) -> Vec<u8> {
    let mut desc = Vec::new();
    for part in [provider, name, &super::to_text(types)] {
        desc.extend_from_slice(part.as_bytes());
        desc.push(0);
    }
    desc
}

fn take<'data>(rest: &mut &'data [u8], what: &str) -> Result<&'data str, String> {
    let end = rest
        .iter()
        .position(|&b| b == 0)
        .ok_or_else(|| format!("{what} is not NUL-terminated"))?;
    let text =
        std::str::from_utf8(&rest[..end]).map_err(|_| format!("{what} is not valid UTF-8"))?;
    *rest = &rest[end + 1..];
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ArgType::*;

    #[test]
    fn round_trips() {
        let desc = encode("shop", "request", &[Int, StrPtr, StrLen, Float]);
        assert_eq!(desc, b"shop\0request\0int strptr strlen float\0");
        let note = decode(&desc).unwrap();
        assert_eq!((note.provider, note.name), ("shop", "request"));
        assert_eq!(note.types, [Int, StrPtr, StrLen, Float]);
        let mut padded = desc.clone();
        padded.extend_from_slice(&[0, 0]);
        assert_eq!(decode(&padded).unwrap(), note);
        assert_eq!(decode(b"p\0n\0\0").unwrap().types, []);
    }

    #[test]
    fn hostile_descriptors_are_errors() {
        for (desc, expected) in [
            (&b""[..], "provider is not NUL-terminated"),
            (b"prov", "provider is not NUL-terminated"),
            (b"prov\0name", "probe name is not NUL-terminated"),
            (b"prov\0name\0int str", "type list is not NUL-terminated"),
            (b"\0name\0int\0", "empty provider"),
            (b"p\0n\0int\0junk", "not padding"),
            (b"p\0n\0int wat\0", "unknown argument type `wat`"),
            (b"p\xff\0n\0int\0", "UTF-8"),
            (b"p\0n\0in\xfft\0", "UTF-8"),
        ] {
            let err = decode(desc).unwrap_err();
            assert!(err.contains(expected), "{desc:?}: {err}");
        }
    }
}
