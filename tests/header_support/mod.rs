//! Shared by the `header_*` tests: where our header is, and what
//! `stap-sdt list --json` says about a binary, reduced to what two builds of
//! one program must agree on.

#![allow(dead_code)] // each test crate uses its own subset

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use test_support::bounded::BoundedOutput;

/// `-I` this directory makes `#include <sys/sdt.h>` find our header.
pub fn our_include() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sdt-header/include")
}

/// `stap-sdt list --json PATH`, parsed; panics with stderr if it fails.
pub fn list_json(path: &Path) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_stap-sdt"))
        .args(["list", "--json"])
        .arg(path)
        .bounded_output()
        .expect("run stap-sdt list");
    assert!(
        out.status.success(),
        "stap-sdt list --json {} failed: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stap-sdt list --json prints JSON")
}

/// What a location must keep across implementations of the header: the
/// argument types, and whether it has a semaphore. (Operands differ on
/// purpose: see the operand constraint in sdt.h.)
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LocationShape {
    pub args: Vec<ArgShape>,
    pub semaphore: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ArgShape {
    pub size: i64,
    pub signed: bool,
    pub float: bool,
}

/// `provider:name` → the sorted shapes of its locations, over all objects.
pub type Shapes = BTreeMap<String, Vec<LocationShape>>;

pub fn shapes(json: &Value) -> Shapes {
    let mut shapes = Shapes::new();
    for (key, loc) in locations(json) {
        let args = loc["args"]
            .as_array()
            .expect("args")
            .iter()
            .map(|a| ArgShape {
                size: a["size"].as_i64().expect("size"),
                signed: a["signed"].as_bool().expect("signed"),
                float: a["float"].as_bool().expect("float"),
            })
            .collect();
        shapes.entry(key).or_default().push(LocationShape {
            args,
            semaphore: !loc["semaphore"].is_null(),
        });
    }
    for locations in shapes.values_mut() {
        locations.sort();
    }
    shapes
}

/// Every location of every probe, as (provider:name, location JSON).
pub fn locations(json: &Value) -> Vec<(String, Value)> {
    let mut all = Vec::new();
    for object in json["objects"].as_array().expect("objects") {
        for probe in object["probes"].as_array().expect("probes") {
            let key = format!(
                "{}:{}",
                probe["provider"].as_str().unwrap(),
                probe["name"].as_str().unwrap()
            );
            for loc in probe["locations"].as_array().expect("locations") {
                all.push((key.clone(), loc.clone()));
            }
        }
    }
    all
}

/// The operand kinds of every argument ("register", "immediate", "memory"...).
pub fn operand_kinds(json: &Value) -> Vec<String> {
    locations(json)
        .iter()
        .flat_map(|(_, loc)| {
            loc["args"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["operand"]["kind"].as_str().unwrap_or("?").to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}
