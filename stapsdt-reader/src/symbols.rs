//! Resolve the symbols that `sym(%rip)` operands name, through `.symtab`
//! and then `.dynsym`.
//!
//! Only the names that some argument actually uses are looked for, in one
//! pass over each table, so objects without symbolic operands (nearly all)
//! pay nothing.

use object::read::elf::{FileHeader, SectionTable, Sym};
use object::{elf, Endianness};
use std::collections::HashMap;

pub(crate) fn resolve<'data, H: FileHeader<Endian = Endianness>>(
    wanted: &[String],
    sections: &SectionTable<'data, H, &'data [u8]>,
    endian: Endianness,
    data: &'data [u8],
) -> HashMap<String, u64> {
    let mut found: HashMap<String, u64> = HashMap::new();
    for table_type in [elf::SHT_SYMTAB, elf::SHT_DYNSYM] {
        if found.len() == wanted.len() {
            break;
        }
        let Ok(table) = sections.symbols(endian, data, table_type) else {
            continue;
        };
        for symbol in table.iter() {
            if symbol.st_shndx(endian) == elf::SHN_UNDEF {
                continue;
            }
            let Ok(name) = symbol.name(endian, table.strings()) else {
                continue;
            };
            if let Some(w) = wanted.iter().find(|w| w.as_bytes() == name) {
                found
                    .entry(w.clone())
                    .or_insert(symbol.st_value(endian).into());
            }
        }
    }
    found
}
