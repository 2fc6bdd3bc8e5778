//! The payload of one `.note.stapsdt` note (type 3): three address-sized
//! words (pc, base, semaphore) then provider, name and argument string, each
//! NUL-terminated.

use object::Endian;

/// Note type of a v3 SDT descriptor.
pub const NT_STAPSDT: u32 = 3;
/// Owner name of SDT notes.
pub const STAPSDT_OWNER: &[u8] = b"stapsdt";

/// One decoded descriptor, with link-time values exactly as the note holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawNote<'data> {
    pub pc: u64,
    pub base: u64,
    pub semaphore: u64,
    pub provider: &'data str,
    pub name: &'data str,
    pub args: &'data str,
}

/// Decode a descriptor. `address_size` is 4 or 8.
pub fn decode<E: Endian>(
    desc: &[u8],
    address_size: usize,
    endian: E,
) -> Result<RawNote<'_>, String> {
    let header = address_size * 3;
    if desc.len() < header {
        return Err(format!(
            "descriptor of {} bytes is shorter than its three {}-byte addresses",
            desc.len(),
            address_size
        ));
    }
    let word = |i: usize| -> u64 {
        let bytes = &desc[i * address_size..(i + 1) * address_size];
        if address_size == 8 {
            endian.read_u64_bytes(bytes.try_into().expect("8 bytes"))
        } else {
            endian.read_u32_bytes(bytes.try_into().expect("4 bytes")) as u64
        }
    };
    let mut rest = &desc[header..];
    let provider = take_string(&mut rest, "provider")?;
    let name = take_string(&mut rest, "probe name")?;
    // Some producers omit the argument string (v1 notes of probes without arguments).
    let args = if rest.is_empty() {
        ""
    } else {
        take_string(&mut rest, "argument string")?
    };
    if provider.is_empty() || name.is_empty() {
        return Err("empty provider or probe name".to_string());
    }
    Ok(RawNote {
        pc: word(0),
        base: word(1),
        semaphore: word(2),
        provider,
        name,
        args,
    })
}

/// Split the NUL-terminated string at the front of `rest` off it.
fn take_string<'data>(rest: &mut &'data [u8], what: &str) -> Result<&'data str, String> {
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
    use object::{BigEndian, LittleEndian};

    fn desc64(strings: &[u8]) -> Vec<u8> {
        let mut d = Vec::new();
        d.extend_from_slice(&0x1234u64.to_le_bytes());
        d.extend_from_slice(&0x5000u64.to_le_bytes());
        d.extend_from_slice(&0x6000u64.to_le_bytes());
        d.extend_from_slice(strings);
        d
    }

    #[test]
    fn decodes_v3() {
        let d = desc64(b"prov\0name\08@%rdi\0");
        let n = decode(&d, 8, LittleEndian).unwrap();
        assert_eq!((n.pc, n.base, n.semaphore), (0x1234, 0x5000, 0x6000));
        assert_eq!((n.provider, n.name, n.args), ("prov", "name", "8@%rdi"));
    }

    #[test]
    fn decodes_32_bit_big_endian() {
        let mut d = Vec::new();
        for w in [0x100u32, 0x200, 0] {
            d.extend_from_slice(&w.to_be_bytes());
        }
        d.extend_from_slice(b"p\0n\0\0");
        let n = decode(&d, 4, BigEndian).unwrap();
        assert_eq!((n.pc, n.base, n.semaphore, n.args), (0x100, 0x200, 0, ""));
    }

    #[test]
    fn rejects_broken_descriptors() {
        let err = decode(&[0u8; 10], 8, LittleEndian).unwrap_err();
        assert!(err.contains("shorter than"), "{err}");
        let err = decode(&desc64(b"prov\0name"), 8, LittleEndian).unwrap_err();
        assert!(err.contains("probe name is not NUL-terminated"), "{err}");
        let err = decode(&desc64(b"prov"), 8, LittleEndian).unwrap_err();
        assert!(err.contains("provider is not NUL-terminated"), "{err}");
        let err = decode(&desc64(b"\0name\0\0"), 8, LittleEndian).unwrap_err();
        assert!(err.contains("empty"), "{err}");
        let err = decode(&desc64(b"p\xff\0n\0\0"), 8, LittleEndian).unwrap_err();
        assert!(err.contains("UTF-8"), "{err}");
    }

    #[test]
    fn missing_argument_string_is_no_arguments() {
        let d = desc64(b"p\0n\0");
        let n = decode(&d, 8, LittleEndian).unwrap();
        assert_eq!(n.args, "");
    }
}
