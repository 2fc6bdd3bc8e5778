//! What a provider file declares, and the C names derived from it.

use crate::error::Position;

/// At most this many arguments per probe (the note format's limit).
pub const MAX_ARGS: usize = 12;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderFile {
    pub providers: Vec<Provider>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    pub name: String,
    pub position: Position,
    pub probes: Vec<ProbeDecl>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeDecl {
    pub name: String,
    pub position: Position,
    /// Each argument's declaration as written, tokens joined by spaces
    /// (`const char *`, `unsigned int`, `struct foo * f`).
    pub args: Vec<String>,
}

impl Provider {
    /// `provider_name_semaphore`: the symbol shared by sdt.h, `-h` and `-G`.
    pub fn semaphore(&self, probe: &ProbeDecl) -> String {
        format!("{}_{}_semaphore", self.name, probe.name)
    }

    /// `PROVIDER_NAME`: SystemTap dtrace's macro name, the provider upper
    /// case as is, the probe upper case with `__` turned into `_`.
    pub fn macro_name(&self, probe: &ProbeDecl) -> String {
        format!(
            "{}_{}",
            self.name.to_uppercase(),
            probe.name.replace("__", "_").to_uppercase()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_systemtap_dtrace() {
        let position = Position {
            file: "t.d".into(),
            line: 1,
            column: 1,
        };
        let provider = Provider {
            name: "my__prov".into(),
            position: position.clone(),
            probes: vec![],
        };
        let probe = ProbeDecl {
            name: "query__start".into(),
            position,
            args: vec![],
        };
        assert_eq!(provider.macro_name(&probe), "MY__PROV_QUERY_START");
        assert_eq!(
            provider.semaphore(&probe),
            "my__prov_query__start_semaphore"
        );
    }
}
