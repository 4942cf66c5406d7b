//! Autoscaler conditions, updated as the HPA updates them: the transition time moves only
//! when the status changes.

use ferroscale_api::AutoscalerCondition;
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

pub const ABLE_TO_SCALE: &str = "AbleToScale";
pub const SCALING_ACTIVE: &str = "ScalingActive";
pub const SCALING_LIMITED: &str = "ScalingLimited";

/// Sets condition `type_` in `list`, appending it if absent.
pub fn set(
    list: &mut Vec<AutoscalerCondition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: impl Into<String>,
    now: Timestamp,
) {
    let status = if status { "True" } else { "False" };
    let index = match list.iter().position(|c| c.type_ == type_) {
        Some(i) => i,
        None => {
            list.push(AutoscalerCondition {
                type_: type_.to_string(),
                status: String::new(),
                last_transition_time: None,
                reason: None,
                message: None,
            });
            list.len() - 1
        }
    };
    let condition = &mut list[index];
    if condition.status != status {
        condition.last_transition_time = Some(Time(now));
    }
    condition.status = status.to_string();
    condition.reason = Some(reason.to_string());
    condition.message = Some(message.into());
}

/// The condition of `type_`, if set.
pub fn find<'a>(list: &'a [AutoscalerCondition], type_: &str) -> Option<&'a AutoscalerCondition> {
    list.iter().find(|c| c.type_ == type_)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_time_moves_only_on_status_change() {
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let t1: Timestamp = "2026-01-01T00:01:00Z".parse().unwrap();
        let mut list = Vec::new();
        set(&mut list, ABLE_TO_SCALE, true, "SucceededGetScale", "ok", t0);
        set(&mut list, ABLE_TO_SCALE, true, "SucceededRescale", "ok", t1);
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].last_transition_time, Some(Time(t0)));
        assert_eq!(list[0].reason.as_deref(), Some("SucceededRescale"));
        set(&mut list, ABLE_TO_SCALE, false, "FailedGetScale", "no", t1);
        assert_eq!(list[0].last_transition_time, Some(Time(t1)));
    }
}
