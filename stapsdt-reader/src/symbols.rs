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

/// A function symbol, for probes on function entry and return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionSymbol {
    pub name: String,
    /// Link-time address.
    pub address: u64,
    /// Offset in the file (what a uprobe takes).
    pub file_offset: u64,
}

/// The defined function symbols of the ELF file at `path` whose names match
/// `pattern`, from `.symtab` and `.dynsym` (each address once).
pub fn function_symbols(
    path: &std::path::Path,
    pattern: &crate::filter::Glob,
) -> Result<Vec<FunctionSymbol>, crate::Error> {
    use object::{Object, ObjectSegment, ObjectSymbol, SymbolKind};
    let name = path.display().to_string();
    let data = std::fs::read(path).map_err(|e| crate::Error::new(&name, e.to_string()))?;
    let file = object::File::parse(&*data)
        .map_err(|e| crate::Error::new(&name, format!("not a readable ELF file: {e}")))?;
    let segments: Vec<(u64, u64, u64)> = file
        .segments()
        .map(|s| (s.address(), s.size(), s.file_range().0))
        .collect();
    let file_offset = |address: u64| {
        segments
            .iter()
            .find(|(start, size, _)| *start <= address && address < start + size)
            .map(|(start, _, offset)| address - start + offset)
    };
    let mut found: Vec<FunctionSymbol> = Vec::new();
    for symbol in file.symbols().chain(file.dynamic_symbols()) {
        if symbol.kind() != SymbolKind::Text || symbol.is_undefined() {
            continue;
        }
        let (Ok(sym_name), Some(offset)) = (symbol.name(), file_offset(symbol.address())) else {
            continue;
        };
        if pattern.matches(sym_name) && !found.iter().any(|f| f.address == symbol.address()) {
            found.push(FunctionSymbol {
                name: sym_name.to_string(),
                address: symbol.address(),
                file_offset: offset,
            });
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::Glob;

    #[test]
    fn finds_functions_with_file_offsets() {
        let exe = std::env::current_exe().unwrap();
        let found = function_symbols(&exe, &Glob::new("main")).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].file_offset > 0 && found[0].file_offset <= found[0].address);
        assert!(function_symbols(&exe, &Glob::new("no_such_symbol_xyz"))
            .unwrap()
            .is_empty());
        let err = function_symbols("/nonexistent".as_ref(), &Glob::new("*")).unwrap_err();
        assert_eq!(err.input, "/nonexistent");
    }
}
