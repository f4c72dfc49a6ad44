//! The audit export as JSON Lines: one object an event, each followed by `\n`. `details` is the event's JSON as an
//! object (a string, should a recorded one not parse), so tools read it without a second decoding.

use crate::{admin::repo::ExportRow, datetime::iso_time};

pub const CONTENT_TYPE: &str = "application/jsonl; charset=utf-8";

/// Appends `event` as one line.
pub fn write_event(out: &mut String, event: &ExportRow) {
    let details: serde_json::Value =
        serde_json::from_str(&event.details).unwrap_or(serde_json::Value::String(event.details.clone()));
    let line = serde_json::json!({
        "id": event.id,
        "at": iso_time(event.at),
        "actor_user_id": event.actor_user_id,
        "actor_email": event.actor_email,
        "subject_user_id": event.subject_user_id,
        "subject_email": event.subject_email,
        "action": event.action,
        "outcome": event.outcome,
        "provider": event.provider,
        "account_id": event.account_id,
        "resource_server": event.resource_server,
        "request_id": event.request_id,
        "details": details,
    });
    out.push_str(&line.to_string());
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_one_line_with_its_details_as_json() {
        let mut out = String::new();
        write_event(&mut out, &super::super::example("{\"method\":\"GET\"}"));
        write_event(&mut out, &super::super::example("not json\n"));
        let lines: Vec<&str> = out.split_terminator('\n').collect();
        assert_eq!(lines.len(), 2, "{out}");
        let first: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(first["id"], 7);
        assert_eq!(first["at"], iso_time(1_796_117_400_000));
        assert_eq!(first["actor_user_id"], serde_json::Value::Null);
        assert_eq!(first["subject_email"], "ada@example.org");
        assert_eq!(first["details"]["method"], "GET");
        let second: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(second["details"], "not json\n", "kept as a string");
    }
}
