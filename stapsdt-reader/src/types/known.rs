//! Argument types of well-known providers whose binaries carry no types
//! note. Data only: one entry per probe.
//!
//! An entry applies only when its argument count matches every location
//! of the probe, so a release with other arguments stays untyped.

use super::ArgType;

const I: ArgType = ArgType::Int;
const S: ArgType = ArgType::Str;

/// One provider's probes: name and argument types.
type Table = &'static [(&'static str, &'static [ArgType])];

/// PostgreSQL 15, `src/backend/utils/probes.d` (provider `postgresql`).
/// Strings: the LWLock tranche name (first argument of every `lwlock__*`
/// probe) and the query text of `query__*` and `statement__status`.
/// Everything else is an integer (`LocalTransactionId`, `Oid`,
/// `BlockNumber`, `ForkNumber`, `LWLockMode`, `LOCKMODE`, `bool`, `int`,
/// `long`). Argument counts as in `/usr/lib/postgresql/15/bin/postgres`.
const POSTGRESQL_15: Table = &[
    ("buffer__checkpoint__done", &[]),
    ("buffer__checkpoint__start", &[I]),
    ("buffer__checkpoint__sync__start", &[]),
    ("buffer__flush__done", &[I, I, I, I, I]),
    ("buffer__flush__start", &[I, I, I, I, I]),
    ("buffer__read__done", &[I, I, I, I, I, I, I, I]),
    ("buffer__read__start", &[I, I, I, I, I, I, I]),
    ("buffer__sync__done", &[I, I, I]),
    ("buffer__sync__start", &[I, I]),
    ("buffer__sync__written", &[I]),
    ("buffer__write__dirty__done", &[I, I, I, I, I]),
    ("buffer__write__dirty__start", &[I, I, I, I, I]),
    ("checkpoint__done", &[I, I, I, I, I]),
    ("checkpoint__start", &[I]),
    ("clog__checkpoint__done", &[I]),
    ("clog__checkpoint__start", &[I]),
    ("deadlock__found", &[]),
    ("lock__wait__done", &[I, I, I, I, I, I]),
    ("lock__wait__start", &[I, I, I, I, I, I]),
    ("lwlock__acquire", &[S, I]),
    ("lwlock__acquire__or__wait", &[S, I]),
    ("lwlock__acquire__or__wait__fail", &[S, I]),
    ("lwlock__condacquire", &[S, I]),
    ("lwlock__condacquire__fail", &[S, I]),
    ("lwlock__release", &[S]),
    ("lwlock__wait__done", &[S, I]),
    ("lwlock__wait__start", &[S, I]),
    ("multixact__checkpoint__done", &[I]),
    ("multixact__checkpoint__start", &[I]),
    ("query__done", &[S]),
    ("query__execute__done", &[]),
    ("query__execute__start", &[]),
    ("query__parse__done", &[S]),
    ("query__parse__start", &[S]),
    ("query__plan__done", &[]),
    ("query__plan__start", &[]),
    ("query__rewrite__done", &[S]),
    ("query__rewrite__start", &[S]),
    ("query__start", &[S]),
    ("smgr__md__read__done", &[I, I, I, I, I, I, I, I]),
    ("smgr__md__read__start", &[I, I, I, I, I, I]),
    ("smgr__md__write__done", &[I, I, I, I, I, I, I, I]),
    ("smgr__md__write__start", &[I, I, I, I, I, I]),
    ("sort__done", &[I, I]),
    ("sort__start", &[I, I, I, I, I, I]),
    ("statement__status", &[S]),
    ("subtrans__checkpoint__done", &[I]),
    ("subtrans__checkpoint__start", &[I]),
    ("transaction__abort", &[I]),
    ("transaction__commit", &[I]),
    ("transaction__start", &[I]),
    ("twophase__checkpoint__done", &[]),
    ("twophase__checkpoint__start", &[]),
    ("wal__buffer__write__dirty__done", &[]),
    ("wal__buffer__write__dirty__start", &[]),
    ("wal__insert", &[I, I]),
    ("wal__switch", &[]),
];

// libstdcxx:throw/rethrow/catch (an object and its type_info) carry no
// strings: they are left untyped on purpose.

/// The providers in the table.
const PROVIDERS: &[(&str, Table)] = &[("postgresql", POSTGRESQL_15)];

/// The known types of `provider:name`, if the table has them.
pub fn lookup(provider: &str, name: &str) -> Option<&'static [ArgType]> {
    let (_, probes) = PROVIDERS.iter().find(|(p, _)| *p == provider)?;
    probes
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, types)| *types)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgresql_strings() {
        assert_eq!(lookup("postgresql", "query__start"), Some(&[S][..]));
        assert_eq!(lookup("postgresql", "lwlock__acquire"), Some(&[S, I][..]));
        assert_eq!(lookup("postgresql", "transaction__start"), Some(&[I][..]));
        assert_eq!(lookup("postgresql", "no__such"), None);
        assert_eq!(lookup("libstdcxx", "throw"), None);
    }

    #[test]
    fn one_entry_per_probe() {
        for (_, probes) in PROVIDERS {
            let mut names: Vec<_> = probes.iter().map(|(n, _)| n).collect();
            names.sort();
            let before = names.len();
            names.dedup();
            assert_eq!(names.len(), before);
        }
    }
}
