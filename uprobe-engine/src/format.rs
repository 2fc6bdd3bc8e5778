//! The layout of a trace event's record, from its tracefs `format` file, and
//! reading fields out of a raw record.

/// One field of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub offset: usize,
    pub size: usize,
    pub signed: bool,
    /// `__data_loc` field: a u32 holding (length << 16 | offset) of
    /// variable-length data (strings) placed after the fixed fields.
    pub data_loc: bool,
}

/// All fields of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFormat {
    pub fields: Vec<Field>,
}

impl EventFormat {
    /// Parse the text of a `format` file.
    pub fn parse(text: &str) -> Result<EventFormat, String> {
        let mut fields = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            let Some(rest) = line.strip_prefix("field:") else {
                continue;
            };
            let mut parts = rest.split(';').map(str::trim);
            let decl = parts.next().unwrap_or("");
            let mut offset = None;
            let mut size = None;
            let mut signed = false;
            for part in parts {
                if let Some(v) = part.strip_prefix("offset:") {
                    offset = v.parse().ok();
                } else if let Some(v) = part.strip_prefix("size:") {
                    size = v.parse().ok();
                } else if let Some(v) = part.strip_prefix("signed:") {
                    signed = v == "1";
                }
            }
            // The name is the last word of the declaration, without `[]`.
            let word = decl.rsplit(' ').next().unwrap_or("");
            let name = word.split('[').next().unwrap_or("").to_string();
            match (offset, size) {
                (Some(offset), Some(size)) if !name.is_empty() => fields.push(Field {
                    name,
                    offset,
                    size,
                    signed,
                    data_loc: decl.starts_with("__data_loc"),
                }),
                _ => return Err(format!("cannot parse field line `{line}`")),
            }
        }
        if fields.is_empty() {
            return Err("no fields".into());
        }
        Ok(EventFormat { fields })
    }

    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

impl Field {
    /// The field as an unsigned integer (little or big endian as the host),
    /// or `None` when the record is too short.
    pub fn read_u64(&self, record: &[u8]) -> Option<u64> {
        let bytes = record.get(self.offset..self.offset + self.size)?;
        let mut buf = [0u8; 8];
        let n = bytes.len().min(8);
        if cfg!(target_endian = "little") {
            buf[..n].copy_from_slice(&bytes[..n]);
        } else {
            buf[8 - n..].copy_from_slice(&bytes[..n]);
        }
        Some(u64::from_ne_bytes(buf))
    }

    /// A `__data_loc` string field borrowed from the record, when it is
    /// valid UTF-8 and was fetched.
    pub fn read_str<'r>(&self, record: &'r [u8]) -> Option<&'r str> {
        let loc = self.read_u64(record)? as u32;
        let (offset, len) = ((loc & 0xffff) as usize, (loc >> 16) as usize);
        let bytes = record.get(offset..offset + len)?;
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        std::str::from_utf8(&bytes[..end]).ok()
    }

    /// A `__data_loc` string field, without its terminating NUL. `Some(None)`
    /// when the kernel could not read the string at the hit: it then records
    /// length 0, while an empty string has length 1 (the NUL).
    pub fn read_string(&self, record: &[u8]) -> Option<Option<String>> {
        let loc = self.read_u64(record)? as u32;
        let (offset, len) = ((loc & 0xffff) as usize, (loc >> 16) as usize);
        if len == 0 {
            return Some(None);
        }
        let bytes = record.get(offset..offset + len)?;
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        Some(Some(String::from_utf8_lossy(&bytes[..end]).into_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "name: ev\nID: 2326\nformat:\n\
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\
\tfield:unsigned long __probe_ip;\toffset:8;\tsize:8;\tsigned:0;\n\
\tfield:s64 a;\toffset:16;\tsize:8;\tsigned:1;\n\
\tfield:__data_loc char[] s;\toffset:24;\tsize:4;\tsigned:1;\n\
\tfield:u8 arr[];\toffset:28;\tsize:3;\tsigned:0;\n\n\
print fmt: \"(%lx) a=%Ld\", REC->__probe_ip, REC->a\n";

    #[test]
    fn parses_fields_and_reads_values() {
        let format = EventFormat::parse(SAMPLE).unwrap();
        assert_eq!(format.fields.len(), 6);
        let s = format.field("s").unwrap();
        assert!(s.data_loc);
        assert_eq!(format.field("arr").unwrap().size, 3);
        let mut record = vec![0u8; 40];
        record[16..24].copy_from_slice(&(-5i64).to_ne_bytes());
        // "hi\0" at offset 32, length 3.
        record[24..28].copy_from_slice(&((3u32 << 16) | 32).to_ne_bytes());
        record[32..35].copy_from_slice(b"hi\0");
        assert_eq!(
            format.field("a").unwrap().read_u64(&record),
            Some(-5i64 as u64)
        );
        assert_eq!(s.read_string(&record), Some(Some("hi".into())));
        assert_eq!(s.read_string(&record[..30]), None);
        record[24..28].copy_from_slice(&32u32.to_ne_bytes());
        assert_eq!(s.read_string(&record), Some(None), "length 0 is a fault");
    }

    #[test]
    fn rejects_garbage() {
        assert!(EventFormat::parse("nothing here").is_err());
        assert!(EventFormat::parse("field:int x;\toffset:zz;").is_err());
    }
}
