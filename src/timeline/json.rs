//! The Chrome trace-event JSON: `{"traceEvents":[...]}` with `B`/`E` slice
//! events, `X` complete slices, `i` instants (thread scope), `C` counters and
//! `M` metadata for process and thread names; `ts` and `dur` in µs with three
//! decimals, so nanoseconds survive. One event per line, written as it comes.

use super::{ArgValue, Clock, Event, Sink};
use std::io::{self, Write};

pub(super) struct JsonSink<W: Write> {
    out: super::Counting<W>,
    first: bool,
    num: itoa::Buffer,
}

impl<W: Write> JsonSink<W> {
    pub(super) fn new(mut out: super::Counting<W>, clock: Clock) -> io::Result<Self> {
        let clock = match clock {
            Clock::Monotonic => "CLOCK_MONOTONIC",
            Clock::Boottime => "CLOCK_BOOTTIME",
            Clock::Realtime => "CLOCK_REALTIME",
        };
        writeln!(
            out,
            "{{\"displayTimeUnit\":\"ns\",\"otherData\":{{\"producer\":\"stap-sdt\",\
             \"clock\":\"{clock}\"}},\"traceEvents\":["
        )?;
        Ok(JsonSink {
            out,
            first: true,
            num: itoa::Buffer::new(),
        })
    }

    /// Starts an event: the separator, `{"ph":"X","pid":P,"tid":T`.
    fn open(&mut self, ph: &str, pid: u32, tid: u32) -> io::Result<()> {
        if self.first {
            self.first = false;
        } else {
            self.out.write_all(b",\n")?;
        }
        self.out.write_all(b"{\"ph\":\"")?;
        self.out.write_all(ph.as_bytes())?;
        self.out.write_all(b"\",\"pid\":")?;
        self.out.write_all(self.num.format(pid).as_bytes())?;
        self.out.write_all(b",\"tid\":")?;
        self.out.write_all(self.num.format(tid).as_bytes())
    }

    /// `,"key":12.345` for a time in ns written as µs.
    fn micros(&mut self, key: &str, ns: u64) -> io::Result<()> {
        self.out.write_all(b",\"")?;
        self.out.write_all(key.as_bytes())?;
        self.out.write_all(b"\":")?;
        self.out.write_all(self.num.format(ns / 1000).as_bytes())?;
        let frac = (ns % 1000) as u32;
        let digits = [
            b'.',
            b'0' + (frac / 100) as u8,
            b'0' + (frac / 10 % 10) as u8,
            b'0' + (frac % 10) as u8,
        ];
        self.out.write_all(&digits)
    }

    fn name(&mut self, name: &str) -> io::Result<()> {
        self.out.write_all(b",\"name\":")?;
        string(&mut self.out, name)
    }

    fn args(&mut self, args: &[(&str, ArgValue)]) -> io::Result<()> {
        if args.is_empty() {
            return Ok(());
        }
        self.out.write_all(b",\"args\":{")?;
        for (i, (key, value)) in args.iter().enumerate() {
            if i > 0 {
                self.out.write_all(b",")?;
            }
            string(&mut self.out, key)?;
            self.out.write_all(b":")?;
            match value {
                ArgValue::Int(v) => self.out.write_all(self.num.format(*v).as_bytes())?,
                ArgValue::UInt(v) => self.out.write_all(self.num.format(*v).as_bytes())?,
                ArgValue::Float(v) => float(&mut self.out, *v)?,
                ArgValue::Str(s) => string(&mut self.out, s)?,
            }
        }
        self.out.write_all(b"}")
    }

    fn close(&mut self) -> io::Result<()> {
        self.out.write_all(b"}")
    }

    fn metadata(&mut self, what: &str, pid: u32, tid: u32, name: &str) -> io::Result<()> {
        self.open("M", pid, tid)?;
        self.name(what)?;
        self.out.write_all(b",\"args\":{\"name\":")?;
        string(&mut self.out, name)?;
        self.out.write_all(b"}}")
    }
}

/// A JSON string, escaped (serde_json's escaping).
fn string(out: &mut impl Write, s: &str) -> io::Result<()> {
    serde_json::to_writer(out, s).map_err(io::Error::other)
}

/// A JSON number; NaN and the infinities, which JSON lacks, as strings.
fn float(out: &mut impl Write, v: f64) -> io::Result<()> {
    if v.is_finite() {
        serde_json::to_writer(out, &v).map_err(io::Error::other)
    } else {
        string(out, &v.to_string())
    }
}

impl<W: Write> Sink for JsonSink<W> {
    fn process(&mut self, _ts_ns: u64, pid: u32, name: Option<&str>) -> io::Result<()> {
        match name {
            Some(name) => self.metadata("process_name", pid, pid, name),
            None => Ok(()),
        }
    }

    fn thread(&mut self, _ts_ns: u64, pid: u32, tid: u32, name: &str) -> io::Result<()> {
        if name.is_empty() {
            return Ok(());
        }
        self.metadata("thread_name", pid, tid, name)
    }

    fn instant(&mut self, ev: &Event) -> io::Result<()> {
        self.open("i", ev.pid, ev.tid)?;
        self.out.write_all(b",\"s\":\"t\"")?;
        self.micros("ts", ev.ts_ns)?;
        self.name(ev.name)?;
        self.args(ev.args)?;
        self.close()
    }

    fn begin(&mut self, ev: &Event) -> io::Result<()> {
        self.open("B", ev.pid, ev.tid)?;
        self.micros("ts", ev.ts_ns)?;
        self.name(ev.name)?;
        self.args(ev.args)?;
        self.close()
    }

    fn end(&mut self, ts_ns: u64, pid: u32, tid: u32, name: &str) -> io::Result<()> {
        self.open("E", pid, tid)?;
        self.micros("ts", ts_ns)?;
        self.name(name)?;
        self.close()
    }

    fn complete(&mut self, ev: &Event, dur_ns: u64) -> io::Result<()> {
        self.open("X", ev.pid, ev.tid)?;
        self.micros("ts", ev.ts_ns)?;
        self.micros("dur", dur_ns)?;
        self.name(ev.name)?;
        self.args(ev.args)?;
        self.close()
    }

    fn counter(&mut self, ts_ns: u64, pid: u32, name: &str, value: f64) -> io::Result<()> {
        self.open("C", pid, pid)?;
        self.micros("ts", ts_ns)?;
        self.name(name)?;
        self.out.write_all(b",\"args\":{\"value\":")?;
        float(&mut self.out, value)?;
        self.out.write_all(b"}}")
    }

    fn finish(&mut self) -> io::Result<u64> {
        self.out.write_all(b"\n]}\n")?;
        self.out.flush()?;
        Ok(self.out.bytes)
    }
}
