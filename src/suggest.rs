//! "did you mean …?": the probe names nearest to a misspelled one, by edit
//! distance over the probes the named objects carry.

use stapsdt_reader::Object;

/// Levenshtein distance (insertions, deletions, substitutions) in characters.
pub fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitute.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// The names nearest to `wanted`, at most three, each within a third of
/// `wanted`'s length (at least 2 edits): a typo, not another probe.
pub fn nearest<'a>(wanted: &str, names: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let limit = (wanted.chars().count() / 3).max(2);
    let mut scored: Vec<(usize, &str)> = names
        .into_iter()
        .map(|n| (distance(wanted, n), n))
        .filter(|(d, _)| *d <= limit)
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    let best = scored.first().map_or(0, |s| s.0);
    scored
        .into_iter()
        .filter(|(d, _)| *d == best)
        .take(3)
        .map(|(_, n)| n)
        .collect()
}

/// `did you mean a:b?` (or `a:b or c:d?`), when some name is near.
pub fn did_you_mean<'a>(wanted: &str, names: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let near = nearest(wanted, names);
    match near.as_slice() {
        [] => None,
        [one] => Some(format!("did you mean {one}?")),
        [rest @ .., last] => Some(format!("did you mean {} or {last}?", rest.join(", "))),
    }
}

/// Every `PROVIDER:NAME` of `objects`, each once.
pub fn probe_names(objects: &[Object]) -> Vec<String> {
    let mut names: Vec<String> = objects
        .iter()
        .flat_map(|o| {
            o.probes
                .iter()
                .map(|p| format!("{}:{}", p.provider, p.name))
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The hint for a selector text (`PROVIDER:NAME`, or a lone `NAME`) that
/// matched nothing among `names` (`PROVIDER:NAME` each).
pub fn hint(selector: &str, names: &[String]) -> Option<String> {
    if selector.contains(':') {
        did_you_mean(selector, names.iter().map(String::as_str))
    } else {
        // A lone NAME: compare names, suggest the full spelling.
        let near = nearest(
            selector,
            names
                .iter()
                .map(|n| n.split_once(':').map_or(n.as_str(), |x| x.1)),
        );
        let full: Vec<&str> = names
            .iter()
            .map(String::as_str)
            .filter(|n| near.contains(&n.split_once(':').map_or(*n, |x| x.1)))
            .collect();
        (!full.is_empty()).then(|| format!("did you mean {}?", full.join(" or ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(distance("", ""), 0);
        assert_eq!(distance("reqest", "request"), 1);
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("abc", ""), 3);
    }

    #[test]
    fn nearest_names_are_suggested() {
        let names: Vec<String> = ["app:request__start", "app:request__done", "app:tick"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            hint("app:reqest__start", &names).as_deref(),
            Some("did you mean app:request__start?")
        );
        assert_eq!(
            hint("reqest__done", &names).as_deref(),
            Some("did you mean app:request__done?")
        );
        assert_eq!(hint("zzz:qqqqqqqq", &names), None);
    }
}
