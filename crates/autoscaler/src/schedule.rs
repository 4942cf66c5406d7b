//! The schedule stage: known load raised ahead of time. A schedule is active from its latest
//! start until the end that follows it; while any is, the largest minReplicas among the active
//! ones (with that schedule's maxReplicas, never below it) replace the spec's bounds.
//!
//! Cron occurrences come from `jiff-cron` in the schedule's time zone. Across daylight-saving
//! changes a wall-clock start runs once: a start inside the spring-forward gap runs at the first
//! moment after the gap (jiff's compatible disambiguation), and a start inside the repeated
//! hour of the autumn change runs at its first occurrence only.

use std::str::FromStr;
use std::time::Duration;

use ferroscale_api::{AutoscalerCondition, AutoscalerSpec, Schedule};
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};

use crate::conditions;

/// The condition that names the active schedules.
pub const SCHEDULE_ACTIVE: &str = "ScheduleActive";

/// A schedule, parsed once per spec change.
#[derive(Debug, Clone)]
pub struct CompiledSchedule {
    pub name: String,
    start: jiff_cron::Schedule,
    end: End,
    zone: TimeZone,
    pub min_replicas: Option<i32>,
    pub max_replicas: Option<i32>,
}

#[derive(Debug, Clone)]
enum End {
    Cron(Box<jiff_cron::Schedule>),
    After(Duration),
}

/// The replica bounds an evaluation applies, and the schedules that set them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounds {
    pub min: i32,
    pub max: i32,
    /// The names of the active schedules, in spec order; empty when the spec's bounds apply.
    pub active: Vec<String>,
}

impl Bounds {
    /// The spec's own bounds.
    pub fn of_spec(spec: &AutoscalerSpec) -> Self {
        Self {
            min: spec.min_replicas_or_default(),
            max: spec.max_replicas,
            active: Vec::new(),
        }
    }
}

/// Turns a five-field cron expression into the seven-field form `jiff-cron` reads: seconds
/// and year added, and numeric days of the week (0-7, 0 and 7 Sunday, as cron counts them)
/// written as names, since `jiff-cron` counts them from 1 for Sunday.
pub fn to_cron(expression: &str) -> Result<String, String> {
    let fields: Vec<&str> = expression.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "{expression:?} has {} fields: it must have five (minute hour day-of-month month day-of-week)",
            fields.len()
        ));
    }
    let weekdays = fields[4]
        .split(',')
        .map(weekday_item)
        .collect::<Result<Vec<_>, _>>()?
        .join(",");
    Ok(format!(
        "0 {} {} {} {} {weekdays} *",
        fields[0], fields[1], fields[2], fields[3]
    ))
}

const DAY_NAMES: [&str; 8] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

fn weekday_item(item: &str) -> Result<String, String> {
    let (range, step) = match item.split_once('/') {
        Some((range, step)) => (range, Some(step)),
        None => (item, None),
    };
    let name = |part: &str| -> Result<String, String> {
        match part.parse::<usize>() {
            Ok(n) if n < DAY_NAMES.len() => Ok(DAY_NAMES[n].to_string()),
            Ok(n) => Err(format!("day of week {n} is out of range: use 0-7 or names")),
            Err(_) => Ok(part.to_string()),
        }
    };
    let converted = match range.split_once('-') {
        // Sunday as 7 ends a range past Saturday, which names cannot say: split it.
        Some((from, "7")) if step.is_none() => {
            let from = name(from)?;
            return Ok(if from == "Sun" {
                "*".to_string()
            } else {
                format!("{from}-Sat,Sun")
            });
        }
        Some((_, "7")) => return Err("a stepped day-of-week range cannot end at 7: use 0-6".into()),
        Some((from, to)) => format!("{}-{}", name(from)?, name(to)?),
        None if range == "*" => "*".to_string(),
        None => name(range)?,
    };
    Ok(match step {
        Some(step) => format!("{converted}/{step}"),
        None => converted,
    })
}

fn parse_cron(expression: &str) -> Result<jiff_cron::Schedule, String> {
    let seven = to_cron(expression)?;
    jiff_cron::Schedule::from_str(&seven).map_err(|e| format!("{expression:?} is not a valid cron expression: {e}"))
}

impl CompiledSchedule {
    /// Parses one schedule; the error names the field at fault.
    pub fn new(schedule: &Schedule, path: &str) -> Result<Self, Vec<(String, String)>> {
        let mut problems = Vec::new();
        let start = parse_cron(&schedule.start).map_err(|e| problems.push((format!("{path}.start"), e)));
        // An end that starts with a digit and parses as a duration is a duration.
        let end = match ferroscale_api::duration::parse(&schedule.end) {
            Ok(d) if d.is_zero() => {
                problems.push((format!("{path}.end"), "must be a duration longer than 0".into()));
                None
            }
            Ok(d) => Some(End::After(d)),
            Err(_) => parse_cron(&schedule.end)
                .map(|s| End::Cron(Box::new(s)))
                .map_err(|e| problems.push((format!("{path}.end"), format!("{e}, nor a duration such as 9h"))))
                .ok(),
        };
        let zone_name = schedule.timezone.as_deref().unwrap_or("UTC");
        let zone = TimeZone::get(zone_name)
            .map_err(|_| {
                problems.push((
                    format!("{path}.timezone"),
                    format!("{zone_name:?} is not a time zone of the tz database (e.g. Europe/Berlin)"),
                ))
            })
            .ok();
        match (start, end, zone) {
            (Ok(start), Some(end), Some(zone)) if problems.is_empty() => Ok(Self {
                name: schedule.name.clone(),
                start,
                end,
                zone,
                min_replicas: schedule.min_replicas,
                max_replicas: schedule.max_replicas,
            }),
            _ => Err(problems),
        }
    }

    /// The window the schedule is in at `now`: (start, end) with start <= now < end.
    ///
    /// Occurrences are found on the wall clock (a civil time walked as if in UTC, where no hour
    /// is skipped or repeated) and then placed in the zone: a wall-clock time in the
    /// spring-forward gap lands just after it, one in the repeated autumn hour on its first
    /// occurrence, so each wall-clock start maps to exactly one instant.
    pub fn active_window(&self, now: Timestamp) -> Option<(Timestamp, Timestamp)> {
        let wall_now = now.to_zoned(self.zone.clone()).datetime();
        // The wall clock can run up to a few hours behind the instant after an autumn change:
        // look a little ahead on it, and keep the latest start that lands at or before now.
        let probe = wall_now
            .checked_add(jiff::SignedDuration::from_hours(LARGEST_SHIFT_HOURS))
            .ok()?;
        let mut starts = self.start.after(as_utc(probe)?);
        let (wall_start, start) = loop {
            let wall = starts.next_back()?.datetime();
            let instant = self.place(wall)?;
            if instant <= now {
                break (wall, instant);
            }
        };
        let end = self.end_after(wall_start, start)?;
        (now < end).then_some((start, end))
    }

    /// The instant a wall-clock time of the zone names (jiff's compatible disambiguation).
    fn place(&self, wall: jiff::civil::DateTime) -> Option<Timestamp> {
        wall.to_zoned(self.zone.clone()).ok().map(|z| z.timestamp())
    }

    fn end_after(&self, wall_start: jiff::civil::DateTime, start: Timestamp) -> Option<Timestamp> {
        match &self.end {
            End::After(d) => start.checked_add(jiff::SignedDuration::try_from(*d).ok()?).ok(),
            End::Cron(end) => end
                .after(as_utc(wall_start)?)
                .take(MAX_END_CANDIDATES)
                .filter_map(|z| self.place(z.datetime()))
                .find(|instant| *instant > start),
        }
    }
}

/// The most a zone's offset changes at once (a few Pacific zones moved by a whole day, but
/// only by skipping a date, never by repeating one; daylight saving moves by at most 2h).
const LARGEST_SHIFT_HOURS: i64 = 3;
/// How many end occurrences to try before giving up (only a repeated hour can make the first
/// few land before the start).
const MAX_END_CANDIDATES: usize = 4;

/// A wall-clock time expressed in UTC, where every civil time exists exactly once.
fn as_utc(wall: jiff::civil::DateTime) -> Option<Zoned> {
    wall.to_zoned(TimeZone::UTC).ok()
}

/// The bounds at `now`: the spec's, or those of the active schedules.
pub fn bounds(spec: &AutoscalerSpec, schedules: &[CompiledSchedule], now: Timestamp) -> Bounds {
    let mut bounds = Bounds::of_spec(spec);
    let mut winner: Option<(i32, i32)> = None;
    for schedule in schedules {
        if schedule.active_window(now).is_none() {
            continue;
        }
        bounds.active.push(schedule.name.clone());
        let min = schedule.min_replicas.unwrap_or(bounds.min);
        let max = schedule.max_replicas.unwrap_or(spec.max_replicas);
        if winner.is_none_or(|(best, _)| min > best) {
            winner = Some((min, max));
        }
    }
    if let Some((min, max)) = winner {
        bounds.min = min;
        bounds.max = max.max(min);
    }
    bounds
}

/// Sets ScheduleActive when the spec has schedules, and removes it when it has none.
pub fn record(conds: &mut Vec<AutoscalerCondition>, spec: &AutoscalerSpec, bounds: &Bounds, now: Timestamp) {
    if spec.schedules.as_ref().is_none_or(|s| s.is_empty()) {
        conds.retain(|c| c.type_ != SCHEDULE_ACTIVE);
        return;
    }
    if bounds.active.is_empty() {
        conditions::set(
            conds,
            SCHEDULE_ACTIVE,
            false,
            "NoScheduleActive",
            "no schedule is active: the spec's replica bounds apply",
            now,
        );
    } else {
        conditions::set(
            conds,
            SCHEDULE_ACTIVE,
            true,
            "ScheduleActive",
            format!(
                "active: {}; replicas between {} and {}",
                bounds.active.join(", "),
                bounds.min,
                bounds.max
            ),
            now,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(start: &str, end: &str, zone: &str) -> CompiledSchedule {
        let spec = Schedule {
            name: "s".into(),
            start: start.into(),
            end: end.into(),
            timezone: Some(zone.into()),
            min_replicas: Some(5),
            max_replicas: None,
        };
        CompiledSchedule::new(&spec, "spec.schedules[0]").unwrap()
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    /// Every minute of a day at which the schedule starts a window.
    fn starts_during(s: &CompiledSchedule, from: &str, minutes: i64) -> Vec<Timestamp> {
        let from = at(from);
        let mut starts = Vec::new();
        for m in 0..minutes {
            let now = from + jiff::SignedDuration::from_mins(m);
            if let Some((start, _)) = s.active_window(now)
                && starts.last() != Some(&start)
            {
                starts.push(start);
            }
        }
        starts
    }

    #[test]
    fn weekdays_are_counted_as_cron_counts_them() {
        assert_eq!(to_cron("0 9 * * 1-5").unwrap(), "0 0 9 * * Mon-Fri *");
        assert_eq!(to_cron("0 9 * * 0,6").unwrap(), "0 0 9 * * Sun,Sat *");
        assert_eq!(to_cron("0 9 * * 5-7").unwrap(), "0 0 9 * * Fri-Sat,Sun *");
        assert_eq!(to_cron("0 9 * * 0-7").unwrap(), "0 0 9 * * * *");
        assert_eq!(to_cron("*/15 * * * MON").unwrap(), "0 */15 * * * MON *");
        assert!(to_cron("0 9 * *").unwrap_err().contains("five"));
        assert!(to_cron("0 9 * * 8").unwrap_err().contains("out of range"));
        // Monday 2026-12-07 09:00 UTC is in a Mon-Fri window; Sunday the 6th is not.
        let s = schedule("0 9 * * 1-5", "8h", "UTC");
        assert!(s.active_window(at("2026-12-07T09:30:00Z")).is_some());
        assert!(s.active_window(at("2026-12-06T09:30:00Z")).is_none());
        assert!(s.active_window(at("2026-12-07T17:00:00Z")).is_none());
    }

    #[test]
    fn windows_end_by_cron_or_duration_and_start_inclusive() {
        let s = schedule("0 9 * * *", "30 17 * * *", "Europe/Berlin");
        // 09:00 in Berlin in winter is 08:00 UTC.
        assert_eq!(s.active_window(at("2026-12-03T07:59:59Z")), None);
        assert_eq!(
            s.active_window(at("2026-12-03T08:00:00Z")),
            Some((at("2026-12-03T08:00:00Z"), at("2026-12-03T16:30:00Z")))
        );
        assert_eq!(s.active_window(at("2026-12-03T16:30:00Z")), None);
        // A window that runs past midnight.
        let night = schedule("0 22 * * *", "6h", "UTC");
        assert!(night.active_window(at("2026-12-04T03:00:00Z")).is_some());
        assert!(night.active_window(at("2026-12-04T04:00:00Z")).is_none());
    }

    #[test]
    fn a_start_in_the_spring_forward_gap_runs_once() {
        // New York skips 02:00-03:00 on 2026-03-08: 02:30 does not exist that day.
        let s = schedule("30 2 * * *", "1h", "America/New_York");
        let starts = starts_during(&s, "2026-03-07T12:00:00Z", 48 * 60);
        // 2026-03-08 03:30 EDT (07:30Z), right after the gap, then 02:30 EDT the next day.
        assert_eq!(starts, [at("2026-03-08T07:30:00Z"), at("2026-03-09T06:30:00Z")]);
    }

    #[test]
    fn a_start_in_the_repeated_autumn_hour_runs_once() {
        // New York repeats 01:00-02:00 on 2026-11-01.
        let s = schedule("30 1 * * *", "20m", "America/New_York");
        let starts = starts_during(&s, "2026-11-01T00:00:00Z", 24 * 60);
        // 01:30 EDT (05:30Z) only; 01:30 EST (06:30Z) is the same wall-clock time again.
        assert_eq!(starts, [at("2026-11-01T05:30:00Z")]);
        assert!(s.active_window(at("2026-11-01T06:40:00Z")).is_none());
    }

    #[test]
    fn business_hours_keep_their_wall_clock_across_both_changes() {
        let s = schedule("0 9 * * *", "0 17 * * *", "America/New_York");
        // 09:00 EST is 14:00Z; 09:00 EDT is 13:00Z.
        assert!(s.active_window(at("2026-03-07T14:00:00Z")).is_some());
        assert!(s.active_window(at("2026-03-09T13:00:00Z")).is_some());
        assert!(s.active_window(at("2026-03-09T12:59:00Z")).is_none());
        assert!(s.active_window(at("2026-11-02T14:00:00Z")).is_some());
        assert!(s.active_window(at("2026-11-02T13:30:00Z")).is_none());
    }

    use proptest::prelude::Strategy;

    proptest::proptest! {
        // A tenant writes these fields: no expression may panic the parser or the search.
        #[test]
        fn any_cron_text_is_parsed_or_refused_without_panicking(
            start in proptest::prop_oneof![
                "[0-9*/,LW#?a-zA-Z -]{0,40}",
                proptest::collection::vec("(\\*|[0-9]{1,2}|[A-Za-z]{3})(-([0-9]{1,2}|[A-Za-z]{3}))?(/[0-9]{1,2})?(,[0-9]{1,2})?", 5)
                    .prop_map(|fields| fields.join(" ")),
            ],
            end in "[0-9*/,a-z hm-]{0,30}",
            at in 0i64..4_102_444_800,
        ) {
            let spec = Schedule {
                name: "s".into(),
                start,
                end,
                timezone: Some("Europe/London".into()),
                min_replicas: None,
                max_replicas: None,
            };
            if let Ok(s) = CompiledSchedule::new(&spec, "s") {
                let _ = s.active_window(Timestamp::from_second(at).unwrap());
            }
        }
    }

    #[test]
    fn problems_name_their_field() {
        let bad = Schedule {
            name: "s".into(),
            start: "61 * * * *".into(),
            end: "soon".into(),
            timezone: Some("Mars/Olympus".into()),
            min_replicas: None,
            max_replicas: None,
        };
        let problems = CompiledSchedule::new(&bad, "spec.schedules[2]").unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.schedules[2].start",
                "spec.schedules[2].end",
                "spec.schedules[2].timezone"
            ]
        );
    }

    #[test]
    fn the_largest_minimum_wins_with_its_maximum() {
        let spec: AutoscalerSpec = serde_json::from_value(serde_json::json!({
            "scaleTargetRef": {"kind": "PodSet", "name": "web"},
            "minReplicas": 2, "maxReplicas": 10,
        }))
        .unwrap();
        let mk = |name: &str, min: Option<i32>, max: Option<i32>| {
            CompiledSchedule::new(
                &Schedule {
                    name: name.into(),
                    start: "0 9 * * *".into(),
                    end: "8h".into(),
                    timezone: None,
                    min_replicas: min,
                    max_replicas: max,
                },
                "s",
            )
            .unwrap()
        };
        let schedules = [
            mk("day", Some(4), Some(8)),
            mk("peak", Some(12), None),
            mk("low", Some(3), Some(3)),
        ];
        let b = bounds(&spec, &schedules, at("2026-12-03T10:00:00Z"));
        assert_eq!((b.min, b.max), (12, 12), "max never below the winning min");
        assert_eq!(b.active, ["day", "peak", "low"]);
        let b = bounds(&spec, &schedules[..1], at("2026-12-03T10:00:00Z"));
        assert_eq!((b.min, b.max), (4, 8));
        let b = bounds(&spec, &schedules, at("2026-12-03T20:00:00Z"));
        assert_eq!((b.min, b.max, b.active.len()), (2, 10, 0));
    }
}
