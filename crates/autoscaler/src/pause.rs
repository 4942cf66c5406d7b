//! Pausing an Autoscaler by annotation, to stop it during an incident without deleting it:
//! `ferroscale.dev/paused: "true"` keeps it evaluating and reporting (status, metrics,
//! `explain`) but it never writes the target's scale; `ferroscale.dev/paused-replicas: "N"`
//! sets the target to N once (min and max do not bound it), then holds it as `paused` does.
//! A value that is neither stops scaling too, since resuming on a typo would be unsafe.

use std::collections::BTreeMap;

pub const PAUSED: &str = "ferroscale.dev/paused";
pub const PAUSED_REPLICAS: &str = "ferroscale.dev/paused-replicas";

/// What the annotations ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pause {
    /// Scale as usual.
    No,
    /// Evaluate, report, never write the scale.
    Paused,
    /// Set the target to this count once, then hold it.
    Replicas(i32),
    /// An annotation's value makes no sense: no scaling until it is fixed. The message names
    /// the annotation.
    Invalid(String),
}

impl Pause {
    /// Reads the Autoscaler's annotations. `paused-replicas` wins over `paused` when both are
    /// valid; any invalid value makes the whole pause invalid.
    pub fn from_annotations(annotations: Option<&BTreeMap<String, String>>) -> Self {
        let Some(annotations) = annotations else {
            return Self::No;
        };
        let paused = annotations.get(PAUSED).map(|v| match v.trim() {
            "true" => Ok(true),
            "false" => Ok(false),
            other => Err(format!(
                "annotation {PAUSED}: {other:?} is neither \"true\" nor \"false\""
            )),
        });
        let replicas = annotations.get(PAUSED_REPLICAS).map(|v| {
            v.trim()
                .parse::<i32>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| format!("annotation {PAUSED_REPLICAS}: {v:?} is not a non-negative integer"))
        });
        match (paused, replicas) {
            (Some(Err(e)), _) | (_, Some(Err(e))) => Self::Invalid(e),
            (_, Some(Ok(n))) => Self::Replicas(n),
            (Some(Ok(true)), None) => Self::Paused,
            _ => Self::No,
        }
    }

    /// Whether the target's scale must not be written by an ordinary decision.
    pub fn holds(&self) -> bool {
        !matches!(self, Self::No)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)]) -> Pause {
        let map: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Pause::from_annotations(Some(&map))
    }

    #[test]
    fn annotations_are_read_strictly() {
        assert_eq!(Pause::from_annotations(None), Pause::No);
        assert_eq!(read(&[]), Pause::No);
        assert_eq!(read(&[(PAUSED, "true")]), Pause::Paused);
        assert_eq!(read(&[(PAUSED, "false")]), Pause::No);
        assert_eq!(read(&[(PAUSED_REPLICAS, "3")]), Pause::Replicas(3));
        assert_eq!(read(&[(PAUSED_REPLICAS, "0")]), Pause::Replicas(0));
        assert_eq!(read(&[(PAUSED, "false"), (PAUSED_REPLICAS, "2")]), Pause::Replicas(2));
        for (key, bad) in [
            (PAUSED, "yes"),
            (PAUSED, "True "),
            (PAUSED_REPLICAS, "-1"),
            (PAUSED_REPLICAS, "two"),
        ] {
            match read(&[(key, bad)]) {
                Pause::Invalid(message) => assert!(message.contains(key), "{message}"),
                other => panic!("{key}={bad:?} read as {other:?}"),
            }
        }
        assert!(matches!(
            read(&[(PAUSED, "true"), (PAUSED_REPLICAS, "x")]),
            Pause::Invalid(_)
        ));
    }
}
