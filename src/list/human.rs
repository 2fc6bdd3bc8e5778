//! The text form of `stap-sdt list`.

use stapsdt_reader::{Arg, ArgType, Location, Memory, Object, Operand, Register};
use std::io::{self, Write};

pub fn write(out: &mut impl Write, objects: &[Object], verbose: bool) -> io::Result<()> {
    for object in objects {
        write_object(out, object, verbose)?;
    }
    Ok(())
}

fn write_object(out: &mut impl Write, object: &Object, verbose: bool) -> io::Result<()> {
    write!(out, "{}", object.path)?;
    if let Some(pid) = object.pid {
        write!(out, " [pid {pid}]")?;
    }
    write!(out, " ({} ELF{}", object.arch.name(), object.bits)?;
    if let Some(id) = &object.build_id {
        write!(out, ", build-id {id}")?;
    }
    let count: usize = object.probes.iter().map(|p| p.locations.len()).sum();
    writeln!(out, ") {} probes, {} locations", object.probes.len(), count)?;
    for d in &object.diagnostics {
        writeln!(out, "  warning: {d}")?;
    }
    for probe in &object.probes {
        writeln!(out, "  {}:{}", probe.provider, probe.name)?;
        for location in &probe.locations {
            write_location(out, location, probe.types.as_deref(), verbose)?;
        }
    }
    Ok(())
}

fn hex(value: Option<u64>) -> String {
    value.map_or_else(|| "-".to_string(), |v| format!("{v:#x}"))
}

fn write_location(
    out: &mut impl Write,
    loc: &Location,
    types: Option<&[ArgType]>,
    verbose: bool,
) -> io::Result<()> {
    write!(
        out,
        "    {:#x} (file {})",
        loc.address,
        hex(loc.file_offset)
    )?;
    if let Some(rt) = loc.runtime_address {
        write!(out, " at {rt:#x}")?;
    }
    if let Some(sem) = &loc.semaphore {
        write!(
            out,
            " semaphore {:#x} (file {})",
            sem.address,
            hex(sem.file_offset)
        )?;
        if let Some(rt) = sem.runtime_address {
            write!(out, " at {rt:#x}")?;
        }
    }
    if let Some(src) = &loc.source {
        write!(out, " {}:{}", src.file, src.line)?;
    }
    if verbose {
        writeln!(out)?;
        for (i, arg) in loc.args.iter().enumerate() {
            write!(out, "      arg{i}: {}", describe(arg))?;
            match types.and_then(|t| t.get(i)) {
                Some(ty) => writeln!(out, " ({})", ty.word())?,
                None => writeln!(out)?,
            }
        }
    } else if loc.args_raw.is_empty() {
        writeln!(out)?;
    } else {
        writeln!(out, " args: {}", loc.args_raw)?;
        // Without -v an argument that did not parse would pass unnoticed.
        for (i, arg) in loc.args.iter().enumerate() {
            if let Operand::Unparsed { reason } = &arg.operand {
                writeln!(out, "      warning: arg{i}: {reason}")?;
            }
        }
    }
    Ok(())
}

/// `s32 in %eax (rax)`, `u64 at -80(%rbx)`, `f64 at NBuffers(%rip) = 0x...`.
pub fn describe(arg: &Arg) -> String {
    let kind = if arg.float {
        'f'
    } else if arg.signed {
        's'
    } else {
        'u'
    };
    let ty = format!("{kind}{}", u32::from(arg.size) * 8);
    match &arg.operand {
        Operand::Register { register } => format!("{ty} in register {}", reg(register)),
        Operand::Immediate { value } => format!("{ty} constant {value}"),
        Operand::Memory(mem) => format!("{ty} in memory at {}", address(mem)),
        Operand::Unparsed { reason } => format!("unparsed: {reason}"),
    }
}

/// `NBuffers (0x875f7c)`, `CheckpointStats+40 (0x...)`, `[rbx - 0x50]`,
/// `[rax + rcx*4 + 0x8]`.
fn address(mem: &Memory) -> String {
    if let Some(symbol) = &mem.symbol {
        let offset = match mem.disp {
            0 => String::new(),
            d if d < 0 => format!("-{}", d.unsigned_abs()),
            d => format!("+{d}"),
        };
        let at = mem.symbol_address.map_or_else(
            || "not found in the symbol tables".to_string(),
            |a| format!("{a:#x}"),
        );
        let mut via = match &mem.base {
            Some(base) if mem.got_address.is_some() => {
                format!(", through register {} holding the GOT", reg(base))
            }
            Some(base) if base.canonical != "rip" => format!(", plus register {}", reg(base)),
            _ => String::new(),
        };
        if let Some(index) = &mem.index {
            via.push_str(&format!(", plus {}*{}", reg(index), mem.scale));
        }
        return format!("symbol {symbol}{offset} ({at}){via}");
    }
    let mut text = String::from("[");
    let mut parts = Vec::new();
    if let Some(base) = &mem.base {
        parts.push(reg(base));
    }
    if let Some(index) = &mem.index {
        parts.push(format!("{}*{}", reg(index), mem.scale));
    }
    text.push_str(&parts.join(" + "));
    match mem.disp {
        0 if !parts.is_empty() => {}
        d if parts.is_empty() => text.push_str(&format!("{d:#x}")),
        d if d < 0 => text.push_str(&format!(" - {:#x}", d.unsigned_abs())),
        d => text.push_str(&format!(" + {d:#x}")),
    }
    text.push(']');
    text
}

fn reg(r: &Register) -> String {
    if r.name == r.canonical {
        r.name.to_string()
    } else {
        format!("{} ({})", r.name, r.canonical)
    }
}
