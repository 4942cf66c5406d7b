//! Label selectors in their string form (`app=web,tier in (a,b),!canary`), as the `scale`
//! subresource publishes them, parsed with Kubernetes' grammar into [`kube::core::Selector`].

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::core::{Expression, Selector};

/// Parses `labels.Parse` syntax. The empty string selects everything.
pub fn parse(text: &str) -> Result<Selector, String> {
    let mut parser = Parser { rest: text.trim() };
    let mut expressions = Vec::new();
    if parser.rest.is_empty() {
        return Ok(Selector::default());
    }
    loop {
        expressions.push(
            parser
                .requirement()
                .map_err(|e| format!("invalid selector {text:?}: {e}"))?,
        );
        parser.skip_spaces();
        if parser.rest.is_empty() {
            break;
        }
        if !parser.eat(",") {
            return Err(format!(
                "invalid selector {text:?}: expected ',' before {:?}",
                parser.rest
            ));
        }
    }
    Ok(expressions.into_iter().collect())
}

/// Converts a structured selector, rejecting unknown operators and In/NotIn without values.
pub fn from_label_selector(selector: &LabelSelector) -> Result<Selector, String> {
    for req in selector.match_expressions.iter().flatten() {
        if matches!(req.operator.as_str(), "In" | "NotIn") && req.values.as_ref().is_none_or(|v| v.is_empty()) {
            return Err(format!(
                "selector requirement on {:?}: operator {} needs values",
                req.key, req.operator
            ));
        }
    }
    Selector::try_from(selector.clone()).map_err(|e| format!("invalid selector: {}", e.0))
}

struct Parser<'a> {
    rest: &'a str,
}

impl Parser<'_> {
    fn skip_spaces(&mut self) {
        self.rest = self.rest.trim_start();
    }

    fn eat(&mut self, token: &str) -> bool {
        self.skip_spaces();
        match self.rest.strip_prefix(token) {
            Some(rest) => {
                self.rest = rest;
                true
            }
            None => false,
        }
    }

    /// A key or value: the characters labels allow.
    fn word(&mut self) -> &str {
        self.skip_spaces();
        let len = self
            .rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/')))
            .unwrap_or(self.rest.len());
        let (word, rest) = self.rest.split_at(len);
        self.rest = rest;
        word
    }

    fn keyword(&mut self, keyword: &str) -> bool {
        self.skip_spaces();
        let starts = self.rest.len() > keyword.len()
            && self.rest.starts_with(keyword)
            && self.rest[keyword.len()..].starts_with(|c: char| c.is_whitespace() || c == '(');
        if starts {
            self.rest = &self.rest[keyword.len()..];
        }
        starts
    }

    fn requirement(&mut self) -> Result<Expression, String> {
        if self.eat("!") {
            let key = self.word().to_string();
            return if key.is_empty() {
                Err("expected a key after '!'".into())
            } else {
                Ok(Expression::DoesNotExist(key))
            };
        }
        let key = self.word().to_string();
        if key.is_empty() {
            return Err(format!("expected a key at {:?}", self.rest));
        }
        if self.eat("!=") {
            return Ok(Expression::NotEqual(key, self.word().to_string()));
        }
        if self.eat("==") || self.eat("=") {
            return Ok(Expression::Equal(key, self.word().to_string()));
        }
        if self.keyword("notin") {
            return Ok(Expression::NotIn(key, self.value_set()?));
        }
        if self.keyword("in") {
            return Ok(Expression::In(key, self.value_set()?));
        }
        self.skip_spaces();
        if self.rest.is_empty() || self.rest.starts_with(',') {
            return Ok(Expression::Exists(key));
        }
        Err(format!("unexpected {:?} after key {key:?}", self.rest))
    }

    fn value_set(&mut self) -> Result<BTreeSet<String>, String> {
        if !self.eat("(") {
            return Err("expected '(' to open a set of values".into());
        }
        let mut values = BTreeSet::new();
        loop {
            values.insert(self.word().to_string());
            if self.eat(")") {
                return Ok(values);
            }
            if !self.eat(",") {
                return Err("expected ',' or ')' in a set of values".into());
            }
        }
    }
}

/// Where a [`Query`] reads a label's value: a pod's labels, however they are kept.
pub trait Labelled {
    fn label(&self, key: &str) -> Option<&str>;
}

impl Labelled for BTreeMap<String, String> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

/// A label selector, matched against any [`Labelled`] as Kubernetes matches it: without the
/// map of its own that [`kube::core::SelectorExt::matches`] needs.
#[derive(Debug, Clone)]
pub struct Query(Vec<Expression>);

impl Query {
    pub fn new(selector: &Selector) -> Self {
        Self(selector.clone().into_iter().collect())
    }

    pub fn matches(&self, labels: &impl Labelled) -> bool {
        self.0.iter().all(|expression| match expression {
            Expression::In(key, values) => labels.label(key).is_some_and(|v| values.contains(v)),
            Expression::NotIn(key, values) => labels.label(key).is_none_or(|v| !values.contains(v)),
            Expression::Equal(key, value) => labels.label(key) == Some(value.as_str()),
            Expression::NotEqual(key, value) => labels.label(key) != Some(value.as_str()),
            Expression::Exists(key) => labels.label(key).is_some(),
            Expression::DoesNotExist(key) => labels.label(key).is_none(),
        })
    }

    /// The `key=value` and `key in (...)` requirements: a pod must carry one of the values.
    pub fn required(&self) -> impl Iterator<Item = (&str, Vec<&str>)> {
        self.0.iter().filter_map(|expression| match expression {
            Expression::Equal(key, value) => Some((key.as_str(), vec![value.as_str()])),
            Expression::In(key, values) => Some((key.as_str(), values.iter().map(String::as_str).collect())),
            _ => None,
        })
    }

    /// A label every pod the query matches must carry (a requirement with one value), to
    /// index the query by.
    pub fn required_label(&self) -> Option<(&str, &str)> {
        self.required().find_map(|(key, values)| match values[..] {
            [value] => Some((key, value)),
            _ => None,
        })
    }
}

/// The selector of the target's pods, or the event reason and condition message for why it is
/// unusable.
pub fn scale_selector(scale: &crate::types::Scale) -> Result<Selector, (&'static str, String)> {
    match scale.selector.as_deref() {
        None | Some("") => Err(("SelectorRequired", "selector is required".into())),
        Some(text) => parse(text).map_err(|e| {
            (
                "InvalidSelector",
                format!("couldn't convert selector into a corresponding internal selector object: {e}"),
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::SelectorExt;
    use std::collections::BTreeMap;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn parses_every_operator() {
        let s = parse("app=web, tier in (a, b),env!=prod,!canary,team,name==x,zone notin (z1)").unwrap();
        assert_eq!(
            s.to_string(),
            "app=web,tier in (a,b),env!=prod,!canary,team,name=x,zone notin (z1)"
        );
        assert!(s.matches(&labels(&[("app", "web"), ("tier", "a"), ("team", "t"), ("name", "x")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("tier", "c"), ("team", "t"), ("name", "x")])));
    }

    #[test]
    fn queries_match_as_kubernetes_selectors_do() {
        let maps: Vec<BTreeMap<String, String>> = [
            &[][..],
            &[("app", "web")],
            &[("app", "web"), ("tier", "front")],
            &[("app", "api"), ("tier", "back"), ("zone", "a")],
        ]
        .into_iter()
        .map(labels)
        .collect();
        for text in [
            "",
            "app=web",
            "app!=web",
            "app in (web,api)",
            "app notin (web)",
            "tier",
            "!tier",
            "app=web,tier=front",
            "app,zone notin (b),tier!=front",
        ] {
            let selector = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            let query = Query::new(&selector);
            for map in &maps {
                assert_eq!(query.matches(map), selector.matches(map), "{text} on {map:?}");
            }
        }
        let query = Query::new(&parse("tier in (a,b),app=web,zone in (z)").unwrap());
        assert_eq!(query.required_label(), Some(("app", "web")));
    }

    #[test]
    fn empty_selects_everything() {
        assert!(parse("").unwrap().matches(&labels(&[("a", "b")])));
    }

    #[test]
    fn keys_may_start_with_operator_words() {
        let s = parse("index=1,notinteresting").unwrap();
        assert_eq!(s.to_string(), "index=1,notinteresting");
    }

    #[test]
    fn rejects_garbage_with_a_message() {
        for bad in ["app=web,,x", "tier in a", "=x", "app=web tier=x", "!"] {
            let err = parse(bad).unwrap_err();
            assert!(err.starts_with("invalid selector"), "{bad}: {err}");
        }
    }
}
