//! A tracefs uprobe event owned by a value: created by [`UprobeEvent::new`],
//! enabled by [`UprobeEvent::enable`], disabled and removed on drop, so a
//! failing test leaves nothing in `uprobe_events`.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

const TRACEFS: &str = "/sys/kernel/tracing";

pub struct UprobeEvent {
    group: String,
    event: String,
    binary: PathBuf,
    enabled: bool,
    /// The `enable` file of a tracing instance the event is enabled in.
    instance_enable: Option<PathBuf>,
}

/// A tracing instance (`instances/NAME`): a private ring buffer, removed on
/// drop. Drop the events enabled in it first.
pub struct TracingInstance {
    path: PathBuf,
}

impl TracingInstance {
    pub fn new(name: &str) -> std::io::Result<TracingInstance> {
        let path = Path::new(TRACEFS).join("instances").join(name);
        std::fs::create_dir(&path)?;
        Ok(TracingInstance { path })
    }
}

impl Drop for TracingInstance {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.path);
    }
}

fn append(path: &Path, line: &str) -> std::io::Result<()> {
    let mut file = OpenOptions::new().append(true).open(path)?;
    file.write_all(line.as_bytes())
}

impl UprobeEvent {
    /// `p:GROUP/EVENT BINARY:0xOFFSET[(0xREF_CTR)] FETCHARGS`: a uprobe at a
    /// file offset, with the kernel maintaining the semaphore at file offset
    /// `ref_ctr` (if any) while the event is enabled. Fails (for a skip) if
    /// tracefs is not mounted or the kernel refuses.
    pub fn new(
        group: &str,
        event: &str,
        binary: &Path,
        offset: u64,
        ref_ctr: Option<u64>,
        fetchargs: &str,
    ) -> std::io::Result<UprobeEvent> {
        let ref_ctr = ref_ctr.map(|r| format!("(0x{r:x})")).unwrap_or_default();
        let line = format!(
            "p:{group}/{event} {}:0x{offset:x}{ref_ctr} {fetchargs}\n",
            binary.display()
        );
        append(&Path::new(TRACEFS).join("uprobe_events"), &line)?;
        Ok(UprobeEvent {
            group: group.to_string(),
            event: event.to_string(),
            binary: binary.to_path_buf(),
            enabled: false,
            instance_enable: None,
        })
    }

    fn dir(&self) -> PathBuf {
        Path::new(TRACEFS)
            .join("events")
            .join(&self.group)
            .join(&self.event)
    }

    pub fn enable(&mut self) -> std::io::Result<()> {
        std::fs::write(self.dir().join("enable"), "1")?;
        self.enabled = true;
        Ok(())
    }

    /// Enable the event in a private tracing instance only, so that many
    /// hits do not flood the global trace buffer. Disabled on drop.
    pub fn enable_in(&mut self, instance: &TracingInstance) -> std::io::Result<()> {
        let file = instance
            .path
            .join("events")
            .join(&self.group)
            .join(&self.event)
            .join("enable");
        std::fs::write(&file, "1")?;
        self.instance_enable = Some(file);
        Ok(())
    }

    /// Hits so far, from `uprobe_profile` (`binary event hits`; the
    /// profile names events without their group, so the binary tells
    /// ours from another test's event of the same name).
    pub fn hits(&self) -> u64 {
        let binary = self.binary.display().to_string();
        std::fs::read_to_string(Path::new(TRACEFS).join("uprobe_profile"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let ours =
                    f.len() >= 3 && f[0] == binary && (f[1] == self.event || f[1] == self.name());
                ours.then(|| f[2].parse::<u64>().ok())?
            })
            .sum()
    }

    /// `group/event`, as it appears in `uprobe_events`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.group, self.event)
    }
}

impl Drop for UprobeEvent {
    fn drop(&mut self) {
        if self.enabled {
            let _ = std::fs::write(self.dir().join("enable"), "0");
        }
        if let Some(file) = &self.instance_enable {
            let _ = std::fs::write(file, "0");
        }
        let _ = append(
            &Path::new(TRACEFS).join("uprobe_events"),
            &format!("-:{}/{}\n", self.group, self.event),
        );
    }
}
