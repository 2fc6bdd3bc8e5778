//! Perfetto's protobuf trace: a `perfetto.protos.Trace`, written one
//! `TracePacket` at a time (each as the `Trace.packet` field, tag 1, length
//! delimited), so nothing is held back.
//!
//! The message types come from Perfetto's own `perfetto_trace.proto`
//! (proto/perfetto/), compiled at build time by `protox` and `prost-build`
//! (see build.rs) and encoded by `prost`. Why those: prost is the maintained,
//! widely used protobuf crate of the Rust ecosystem (tokio-rs); generating from
//! Perfetto's file keeps every field number Perfetto's. The crates that ship
//! ready-made Perfetto types were looked at: `tracing-perfetto-sdk-schema`
//! (prost, maintained) compiles the whole schema (1.3 MB of Rust) and needs a
//! `protoc` binary at build time; `perfetto_protos` uses rust-protobuf and
//! a vendored protoc, again for the whole schema. Pruning to the dozen messages
//! written here keeps the build small and free of a protoc binary. prost 0.13
//! (with protox 0.8) rather than 0.14: it keeps the workspace's rust-version.
//!
//! Layout of the stream, all on one packet sequence:
//! 1. a `ClockSnapshot` (BOOTTIME, MONOTONIC, REALTIME read together), so the
//!    caller's clock converts to Perfetto's trace clock, with the sequence's
//!    incremental state cleared;
//! 2. `TrackDescriptor`s: a process track (`ProcessDescriptor` with the pid
//!    and name), a thread track per thread (`ThreadDescriptor`, parent the
//!    process track), a counter track per process and counter name;
//! 3. `TrackEvent`s: SLICE_BEGIN / SLICE_END / INSTANT on thread tracks, a
//!    complete slice as a BEGIN and an END, COUNTER on counter tracks, with the
//!    arguments as debug annotations and each event name interned once
//!    (`InternedData.event_names`; past 65536 names, names are inline).

use super::{clock_now_ns, ArgValue, Clock, Event, Sink};
use prost::Message;
use std::collections::HashMap;
use std::io::{self, Write};

#[allow(clippy::all, clippy::pedantic)]
mod pb {
    include!(concat!(env!("OUT_DIR"), "/perfetto.protos.rs"));
}

use pb::debug_annotation::{NameField as AnnotationName, Value};
use pb::trace_packet::{Data, OptionalTrustedPacketSequenceId as SequenceId};
use pb::track_event::{CounterValueField, NameField, Type};

/// Our one writer sequence.
const SEQUENCE: u32 = 1;
/// TracePacket.SequenceFlags.
const SEQ_INCREMENTAL_STATE_CLEARED: u32 = 1;
const SEQ_NEEDS_INCREMENTAL_STATE: u32 = 2;
/// Interned event names kept at most; later new names go inline.
const MAX_INTERNED: usize = 65536;

pub(super) struct PerfettoSink<W: Write> {
    out: super::Counting<W>,
    clock_id: u32,
    /// Event name → iid.
    names: HashMap<String, u64>,
    /// pid → counter name → track uuid.
    counters: HashMap<u32, HashMap<String, u64>>,
    next_counter: u64,
    buf: Vec<u8>,
}

// Track uuids stay below 2^63, as Perfetto's examples keep them; pid and tid
// are below 2^22 on Linux (pid_max), so bit 62 marks a process track, bit 61
// a thread track and bit 60 a counter track.
fn process_uuid(pid: u32) -> u64 {
    (1 << 62) | pid as u64
}

fn thread_uuid(pid: u32, tid: u32) -> u64 {
    (1 << 61) | ((pid as u64) << 31) | tid as u64
}

impl<W: Write> PerfettoSink<W> {
    pub(super) fn new(out: super::Counting<W>, clock: Clock) -> io::Result<Self> {
        let clock_id = match clock {
            Clock::Monotonic => pb::BuiltinClock::Monotonic,
            Clock::Boottime => pb::BuiltinClock::Boottime,
            Clock::Realtime => pb::BuiltinClock::Realtime,
        } as u32;
        let mut sink = PerfettoSink {
            out,
            clock_id,
            names: HashMap::new(),
            counters: HashMap::new(),
            next_counter: 0,
            buf: Vec::with_capacity(256),
        };
        let clocks = [
            (pb::BuiltinClock::Boottime, libc::CLOCK_BOOTTIME),
            (pb::BuiltinClock::Monotonic, libc::CLOCK_MONOTONIC),
            (pb::BuiltinClock::Realtime, libc::CLOCK_REALTIME),
        ]
        .into_iter()
        .map(|(id, clock)| pb::clock_snapshot::Clock {
            clock_id: Some(id as u32),
            timestamp: Some(clock_now_ns(clock)),
            ..Default::default()
        })
        .collect();
        let boottime = clock_now_ns(libc::CLOCK_BOOTTIME);
        sink.packet(pb::TracePacket {
            timestamp: Some(boottime),
            timestamp_clock_id: Some(pb::BuiltinClock::Boottime as u32),
            incremental_state_cleared: Some(true),
            first_packet_on_sequence: Some(true),
            sequence_flags: Some(SEQ_INCREMENTAL_STATE_CLEARED),
            data: Some(Data::ClockSnapshot(pb::ClockSnapshot {
                clocks,
                primary_trace_clock: Some(pb::BuiltinClock::Boottime as i32),
            })),
            ..Default::default()
        })?;
        Ok(sink)
    }

    /// Writes one packet as a `Trace.packet` field.
    fn packet(&mut self, mut p: pb::TracePacket) -> io::Result<()> {
        p.optional_trusted_packet_sequence_id = Some(SequenceId::TrustedPacketSequenceId(SEQUENCE));
        self.buf.clear();
        // Field 1, wire type 2 (length delimited).
        self.buf.push(0x0a);
        p.encode_length_delimited(&mut self.buf)
            .map_err(io::Error::other)?;
        self.out.write_all(&self.buf)
    }

    /// A track descriptor, timestamped with the event that brought the track
    /// up, as Perfetto recommends for process and thread tracks (so it sorts
    /// before that event among other data sources).
    fn descriptor(&mut self, ts_ns: u64, d: pb::TrackDescriptor) -> io::Result<()> {
        self.packet(pb::TracePacket {
            timestamp: Some(ts_ns),
            timestamp_clock_id: Some(self.clock_id),
            data: Some(Data::TrackDescriptor(d)),
            ..Default::default()
        })
    }

    /// A track event at `ts_ns`; `name` interned (with the interning packet
    /// fields set) when given.
    fn event(&mut self, ts_ns: u64, mut ev: pb::TrackEvent, name: Option<&str>) -> io::Result<()> {
        let mut interned = None;
        if let Some(name) = name {
            ev.name_field = Some(match self.names.get(name) {
                Some(iid) => NameField::NameIid(*iid),
                None if self.names.len() < MAX_INTERNED => {
                    let iid = self.names.len() as u64 + 1;
                    self.names.insert(name.to_string(), iid);
                    interned = Some(pb::InternedData {
                        event_names: vec![pb::EventName {
                            iid: Some(iid),
                            name: Some(name.to_string()),
                        }],
                    });
                    NameField::NameIid(iid)
                }
                None => NameField::Name(name.to_string()),
            });
        }
        self.packet(pb::TracePacket {
            timestamp: Some(ts_ns),
            timestamp_clock_id: Some(self.clock_id),
            sequence_flags: Some(SEQ_NEEDS_INCREMENTAL_STATE),
            interned_data: interned,
            data: Some(Data::TrackEvent(ev)),
            ..Default::default()
        })
    }

    fn slice(&mut self, ty: Type, ev: &Event) -> io::Result<()> {
        let te = pb::TrackEvent {
            r#type: Some(ty as i32),
            track_uuid: Some(thread_uuid(ev.pid, ev.tid)),
            debug_annotations: annotations(ev.args),
            ..Default::default()
        };
        self.event(ev.ts_ns, te, Some(ev.name))
    }
}

fn annotations(args: &[(&str, ArgValue)]) -> Vec<pb::DebugAnnotation> {
    args.iter()
        .map(|(name, value)| pb::DebugAnnotation {
            name_field: Some(AnnotationName::Name(name.to_string())),
            value: Some(match value {
                ArgValue::Int(v) => Value::IntValue(*v),
                ArgValue::UInt(v) => Value::UintValue(*v),
                ArgValue::Float(v) => Value::DoubleValue(*v),
                ArgValue::Str(s) => Value::StringValue(s.clone()),
            }),
        })
        .collect()
}

impl<W: Write> Sink for PerfettoSink<W> {
    fn process(&mut self, ts_ns: u64, pid: u32, name: Option<&str>) -> io::Result<()> {
        self.descriptor(
            ts_ns,
            pb::TrackDescriptor {
                uuid: Some(process_uuid(pid)),
                process: Some(pb::ProcessDescriptor {
                    pid: Some(pid as i32),
                    process_name: name.map(str::to_string),
                }),
                ..Default::default()
            },
        )
    }

    fn thread(&mut self, ts_ns: u64, pid: u32, tid: u32, name: &str) -> io::Result<()> {
        // No parent_uuid: Perfetto groups a thread track under its process by
        // the descriptor's pid (its synthetic-track-event guide sets none).
        self.descriptor(
            ts_ns,
            pb::TrackDescriptor {
                uuid: Some(thread_uuid(pid, tid)),
                thread: Some(pb::ThreadDescriptor {
                    pid: Some(pid as i32),
                    tid: Some(tid as i64),
                    thread_name: (!name.is_empty()).then(|| name.to_string()),
                }),
                ..Default::default()
            },
        )
    }

    fn instant(&mut self, ev: &Event) -> io::Result<()> {
        self.slice(Type::Instant, ev)
    }

    fn begin(&mut self, ev: &Event) -> io::Result<()> {
        self.slice(Type::SliceBegin, ev)
    }

    fn end(&mut self, ts_ns: u64, pid: u32, tid: u32, _name: &str) -> io::Result<()> {
        let te = pb::TrackEvent {
            r#type: Some(Type::SliceEnd as i32),
            track_uuid: Some(thread_uuid(pid, tid)),
            ..Default::default()
        };
        self.event(ts_ns, te, None)
    }

    fn complete(&mut self, ev: &Event, dur_ns: u64) -> io::Result<()> {
        self.slice(Type::SliceBegin, ev)?;
        self.end(ev.ts_ns.saturating_add(dur_ns), ev.pid, ev.tid, ev.name)
    }

    fn counter(&mut self, ts_ns: u64, pid: u32, name: &str, value: f64) -> io::Result<()> {
        let known = self.counters.get(&pid).and_then(|c| c.get(name)).copied();
        let uuid = match known {
            Some(uuid) => uuid,
            None => {
                let uuid = (1 << 60) | self.next_counter;
                self.next_counter += 1;
                self.counters
                    .entry(pid)
                    .or_default()
                    .insert(name.to_string(), uuid);
                self.descriptor(
                    ts_ns,
                    pb::TrackDescriptor {
                        uuid: Some(uuid),
                        parent_uuid: Some(process_uuid(pid)),
                        static_or_dynamic_name: Some(
                            pb::track_descriptor::StaticOrDynamicName::Name(name.to_string()),
                        ),
                        counter: Some(pb::CounterDescriptor::default()),
                        ..Default::default()
                    },
                )?;
                uuid
            }
        };
        let te = pb::TrackEvent {
            r#type: Some(Type::Counter as i32),
            track_uuid: Some(uuid),
            counter_value_field: Some(CounterValueField::DoubleCounterValue(value)),
            ..Default::default()
        };
        self.event(ts_ns, te, None)
    }

    fn finish(&mut self) -> io::Result<u64> {
        self.out.flush()?;
        Ok(self.out.bytes)
    }
}
