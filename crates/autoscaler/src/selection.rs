//! Which pods count: with `selectionStrategy: OwnerReferences`, only those the target owns,
//! directly (a PodSet's pods) or through one intermediate controller (a Deployment's pods
//! through their ReplicaSet); pods of other workloads that share the labels are left out.

use ferroscale_api::{AutoscalerSpec, SelectionStrategy};

/// A controller owner reference of a pod, or of its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerRef<'a> {
    pub kind: &'a str,
    pub name: &'a str,
    pub uid: &'a str,
}

/// Whether the spec counts only owned pods.
pub fn by_owner(spec: &AutoscalerSpec) -> bool {
    spec.selection_strategy == Some(SelectionStrategy::OwnerReferences)
}

/// Whether a pod whose controller is `owner` belongs to the target `target_uid`:
/// `owner_of_owner` looks up the controller of an intermediate owner (a ReplicaSet's
/// Deployment), returning its uid.
pub fn owned(
    owner: Option<&OwnerRef>,
    target_uid: &str,
    owner_of_owner: impl FnOnce(&OwnerRef) -> Option<String>,
) -> bool {
    let Some(owner) = owner else { return false };
    if owner.uid == target_uid {
        return true;
    }
    owner.kind == "ReplicaSet" && owner_of_owner(owner).is_some_and(|uid| uid == target_uid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_directly_and_through_a_replica_set() {
        let podset = OwnerRef {
            kind: "PodSet",
            name: "web",
            uid: "uid-podset",
        };
        assert!(owned(Some(&podset), "uid-podset", |_| None));
        assert!(!owned(Some(&podset), "uid-other", |_| None));
        assert!(!owned(None, "uid-podset", |_| None), "an orphan belongs to no one");

        let replica_set = OwnerRef {
            kind: "ReplicaSet",
            name: "web-5d9",
            uid: "uid-rs",
        };
        assert!(owned(Some(&replica_set), "uid-deployment", |rs| {
            assert_eq!(rs.name, "web-5d9");
            Some("uid-deployment".into())
        }));
        assert!(!owned(Some(&replica_set), "uid-deployment", |_| Some(
            "uid-other".into()
        )));
        assert!(!owned(Some(&replica_set), "uid-deployment", |_| None));
        // Only ReplicaSets are followed: a pod of another controller kind is not the target's.
        let job = OwnerRef {
            kind: "Job",
            name: "j",
            uid: "uid-job",
        };
        assert!(!owned(Some(&job), "uid-deployment", |_| Some("uid-deployment".into())));
    }
}
