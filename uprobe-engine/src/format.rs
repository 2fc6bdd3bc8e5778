//! The layout of a tracepoint's record, from its tracefs `format` file.

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
        assert_eq!(format.field("a").unwrap().offset, 16);
    }

    #[test]
    fn rejects_garbage() {
        assert!(EventFormat::parse("nothing here").is_err());
        assert!(EventFormat::parse("field:int x;\toffset:zz;").is_err());
    }
}
